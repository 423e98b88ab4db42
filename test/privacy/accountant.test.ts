/**
 * The accountant: exact sums, refusals before the budget is crossed, the budget kept across a
 * restart (the store closed and opened again), two processes spending at once, zCDP conversion.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PrivacyBudgetError } from '../../src/core/errors.js';
import {
  datasetId,
  epsilonOfRho,
  PrivacyAccountant,
  rhoForEpsilon,
} from '../../src/security/privacy/accountant.js';
import { toPico } from '../../src/security/privacy/mechanisms.js';
import { closeStores, openStore } from '../../src/store/db.js';
import { ROOT, tempDir } from '../helpers.js';

afterEach(() => closeStores());

/** The tests' stores, in one directory removed when the file's tests are done. */
const dir = tempDir();

const pure = (epsilon: number) => ({
  kind: 'pure' as const,
  pico: toPico(epsilon),
  mechanism: 'laplace',
  purpose: 'test',
});

describe('the privacy accountant', () => {
  it('adds epsilons exactly and refuses the charge that would cross the budget, counting the refusal', () => {
    const accountant = new PrivacyAccountant(openStore(join(dir, 'a.db')), {
      epsilon: 0.3,
      delta: 1e-5,
    });
    accountant.charge('d1', pure(0.1));
    accountant.charge('d1', pure(0.1));
    const full = accountant.charge('d1', pure(0.1)); // 0.1 + 0.1 + 0.1 is 0.3 here, not 0.30000000000000004
    expect(full.spent).toBe(0.3);
    expect(full.remaining).toBe(0);
    expect(() => accountant.charge('d1', { ...pure(0), pico: 1n })).toThrow(PrivacyBudgetError);
    expect(accountant.status('d1')).toMatchObject({ spent: 0.3, charges: 3, refusals: 1 });
    // Another dataset has a budget of its own.
    expect(accountant.status('d2')).toMatchObject({ epsilon: 0.3, spent: 0, remaining: 0.3, charges: 0 });
  });

  it('keeps what was spent across a restart', () => {
    const file = join(dir, 'b.db');
    new PrivacyAccountant(openStore(file), { epsilon: 1, delta: 1e-5 }).charge('d', pure(0.75));
    closeStores();
    const again = new PrivacyAccountant(openStore(file), { epsilon: 1, delta: 1e-5 });
    expect(again.status('d')).toMatchObject({ spent: 0.75, remaining: 0.25 });
    expect(() => again.charge('d', pure(0.5))).toThrow(/past its budget of 1/);
  });

  it('keeps the budget a dataset was created with when the defaults change later', () => {
    const file = join(dir, 'c.db');
    new PrivacyAccountant(openStore(file), { epsilon: 1, delta: 1e-5 }).charge('d', pure(0.5));
    const generous = new PrivacyAccountant(openStore(file), { epsilon: 100, delta: 1e-5 });
    expect(generous.status('d').epsilon).toBe(1);
    expect(() => generous.charge('d', pure(0.6))).toThrow(PrivacyBudgetError);
  });

  it('lets only one of two processes spend a budget that fits one of them', async () => {
    const file = join(dir, 'race.db');
    const script = `
      import { openStore } from '${ROOT}dist/src/store/db.js';
      import { PrivacyAccountant } from '${ROOT}dist/src/security/privacy/accountant.js';
      const a = new PrivacyAccountant(openStore(${JSON.stringify(file)}), { epsilon: 1, delta: 1e-5 });
      try { a.charge('shared', { kind: 'pure', pico: 600000000000n, mechanism: 'laplace', purpose: 'race' }); console.log('ok'); }
      catch (e) { console.log(e.code); }
    `;
    const run = () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script]);
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
        });
        child.on('error', reject);
        child.on('close', () => resolve(out.trim()));
      });
    const results = (await Promise.all([run(), run(), run()])).sort();
    expect(results).toEqual(['NEUROCLUSTER_ERR_PRIVACY_BUDGET', 'NEUROCLUSTER_ERR_PRIVACY_BUDGET', 'ok']);
    const status = new PrivacyAccountant(openStore(file)).status('shared');
    expect(status).toMatchObject({ spent: 0.6, charges: 1, refusals: 2 });
  });

  it('converts zCDP at the budget delta: epsilon(rho) = rho + 2 sqrt(rho ln(1/delta)), never above what was asked', () => {
    for (const [epsilon, delta] of [
      [0.5, 1e-5],
      [1, 1e-6],
      [5, 1e-9],
    ] as const) {
      const rho = Number(rhoForEpsilon(epsilon, delta)) / 1e12;
      expect(epsilonOfRho(rho, delta)).toBeLessThanOrEqual(epsilon);
      expect(epsilonOfRho(rho, delta)).toBeGreaterThan(epsilon - 1e-9);
    }
    const accountant = new PrivacyAccountant(openStore(join(dir, 'z.db')), { epsilon: 1, delta: 1e-5 });
    const rho = rhoForEpsilon(0.5, 1e-5);
    const s = accountant.charge('d', { kind: 'zcdp', pico: rho, mechanism: 'gaussian', purpose: 'test' });
    expect(s.spent).toBeLessThanOrEqual(0.5);
    expect(s.spent).toBeGreaterThan(0.5 - 1e-9);
    // Two halves of the rho cost less epsilon than twice one half: zCDP composes in rho.
    const again = accountant.charge('d', { kind: 'zcdp', pico: rho, mechanism: 'gaussian', purpose: 'test' });
    expect(again.spent).toBeLessThan(1);
    expect(again.spent).toBeCloseTo(epsilonOfRho((2 * Number(rho)) / 1e12, 1e-5), 9);
  });

  it('names a dataset by the content of its parsed matrix', () => {
    const a = { rows: 2, cols: 2, data: Float64Array.from([1, 2, 3, 4]) };
    expect(datasetId(a)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(datasetId(a)).toBe(datasetId({ rows: 2, cols: 2, data: Float32Array.from([1, 2, 3, 4]) }));
    expect(datasetId(a)).not.toBe(datasetId({ rows: 4, cols: 1, data: Float64Array.from([1, 2, 3, 4]) }));
    // -0 and 0 are one value: a file converted from one format to another keeps its budget.
    const zeros = (z: number) => datasetId({ rows: 2, cols: 2, data: Float64Array.from([z, 2, 3, z]) });
    expect(zeros(-0)).toBe(zeros(0));
  });
});
