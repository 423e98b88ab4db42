/**
 * What a user who can run the command could do to reset a dataset's budget, and what stops it:
 * the dataset ID is the same for the same rows in any order; the store and its WAL files are
 * owner-only; the ledger's rows are signed and chained (HMAC under a key from the keyring), so an
 * edited, deleted or forged row is refused with NEUROCLUSTER_ERR_INTEGRITY instead of resetting the
 * budget; a store deleted where the audit log records charges is refused, not started afresh.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { Keyring } from '../../src/security/keyring.js';
import { datasetId, PrivacyAccountant } from '../../src/security/privacy/accountant.js';
import { privacyAccountant } from '../../src/security/privacy/api.js';
import { toPico } from '../../src/security/privacy/mechanisms.js';
import { closeStores, openStore } from '../../src/store/db.js';
import { failure, ROOT, tempDir } from '../helpers.js';

afterEach(() => closeStores());

/** Every test's files go under one directory, removed when the file's tests are done. */
const root = tempDir();
let made = 0;
const freshDir = () => mkdtempSync(join(root, `t${made++}-`));

const pure = (epsilon: number) => ({
  kind: 'pure' as const,
  pico: toPico(epsilon),
  mechanism: 'laplace',
  purpose: 'test',
});

/** An accountant over a fresh store, with a keyring of its own. */
function fresh(epsilon = 10) {
  const dir = freshDir();
  const file = join(dir, 'home', 'neurocluster.db');
  const keyring = Keyring.open({ env: { NEUROCLUSTER_HOME: dir }, warn: () => undefined });
  const accountant = new PrivacyAccountant(openStore(file), { epsilon, delta: 1e-5 }, { keyring });
  return { file, dir, keyring, accountant };
}

/** Changes the store behind the accountant's back, as `sqlite3 neurocluster.db` would. */
function tamper(file: string, sql: string): void {
  const raw = new Database(file);
  raw.exec(sql);
  raw.close();
}

const integrity = async (f: () => unknown) => (await failure(Promise.resolve().then(f))).code;

describe('the dataset ID', () => {
  it('is the same for the same rows in any order, and differs for other rows', () => {
    const m = (rows: number[][]) => ({
      rows: rows.length,
      cols: rows[0]!.length,
      data: Float64Array.from(rows.flat()),
    });
    const rows = [
      [1, 2],
      [3, 4],
      [5, 6],
      [3, 4],
    ];
    const id = datasetId(m(rows));
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(datasetId(m([rows[2]!, rows[3]!, rows[0]!, rows[1]!]))).toBe(id);
    expect(datasetId(m([...rows].reverse()))).toBe(id);
    // A multiset: how often a row occurs counts; one changed cell is another dataset.
    expect(datasetId(m([rows[0]!, rows[1]!, rows[2]!, rows[2]!]))).not.toBe(id);
    expect(datasetId(m([rows[0]!, rows[1]!, rows[2]!, [3, 4.000001]]))).not.toBe(id);
    // Rows, not values: the same values in another shape, or swapped within a row, differ.
    expect(datasetId({ rows: 8, cols: 1, data: Float64Array.from(rows.flat()) })).not.toBe(id);
    expect(datasetId(m(rows.map(([a, b]) => [b!, a!])))).not.toBe(id);
    // The parsed values: float32 input of the same numbers is the same dataset.
    expect(datasetId({ rows: 4, cols: 2, data: Float32Array.from(rows.flat()) })).toBe(id);
  });
});

describe('the signed ledger', () => {
  it('refuses further charges, and its status, when a charge row was edited', async () => {
    const { file, accountant, keyring } = fresh();
    accountant.charge('d', pure(4));
    accountant.charge('d', pure(4));
    tamper(file, `UPDATE privacy_charges SET pico = 1 WHERE id = (SELECT MIN(id) FROM privacy_charges)`);
    expect(await integrity(() => accountant.charge('d', pure(4)))).toBe('NEUROCLUSTER_ERR_INTEGRITY');
    expect(await integrity(() => accountant.status('d'))).toBe('NEUROCLUSTER_ERR_INTEGRITY');
    // A command opening the ledger (a new accountant) verifies all of it: another dataset is
    // refused too, the ledger as a whole being in doubt.
    const next = new PrivacyAccountant(openStore(file), undefined, { keyring });
    expect(await integrity(() => next.charge('other', pure(1)))).toBe('NEUROCLUSTER_ERR_INTEGRITY');
    expect(await integrity(() => next.list())).toBe('NEUROCLUSTER_ERR_INTEGRITY');
    const e = await failure(Promise.resolve().then(() => accountant.charge('d', pure(1))));
    expect(e.message).toMatch(/privacy ledger.*charge 1 of dataset d/);
  });

  it('refuses a budget row that was edited (a larger budget)', async () => {
    const { file, accountant } = fresh(5);
    accountant.charge('d', pure(4));
    tamper(file, `UPDATE privacy_budgets SET epsilon_pico = epsilon_pico * 100`);
    expect(await integrity(() => accountant.charge('d', pure(4)))).toBe('NEUROCLUSTER_ERR_INTEGRITY');
  });

  it('refuses when the newest charge, a charge in the middle, or a whole dataset was deleted', async () => {
    for (const sql of [
      'DELETE FROM privacy_charges WHERE id = (SELECT MAX(id) FROM privacy_charges)',
      'DELETE FROM privacy_charges WHERE id = (SELECT MIN(id) FROM privacy_charges)',
      `PRAGMA foreign_keys = OFF; DELETE FROM privacy_charges WHERE dataset = 'a'; DELETE FROM privacy_budgets WHERE dataset = 'a'`,
      'DELETE FROM privacy_head',
    ]) {
      const { file, accountant } = fresh();
      accountant.charge('a', pure(3));
      accountant.charge('b', pure(1));
      accountant.charge('a', pure(3));
      tamper(file, sql);
      expect(await integrity(() => accountant.charge('a', pure(3))), sql).toBe('NEUROCLUSTER_ERR_INTEGRITY');
      closeStores();
    }
  });

  it('refuses a row written outside the accountant (unsigned, or signed by another keyring)', async () => {
    const { file, accountant } = fresh();
    accountant.charge('d', pure(1));
    tamper(
      file,
      `INSERT INTO privacy_charges (dataset, kind, pico, mechanism, purpose, at) VALUES ('d', 'pure', 1, 'laplace', 'forged', 'now')`,
    );
    expect(await integrity(() => accountant.status('d'))).toBe('NEUROCLUSTER_ERR_INTEGRITY');

    // The same rows copied into a store whose keyring did not sign them.
    const other = fresh();
    other.accountant.charge('d', pure(1));
    closeStores();
    const stranger = new PrivacyAccountant(
      openStore(other.file),
      { epsilon: 10, delta: 1e-5 },
      { keyring: Keyring.open({ env: { NEUROCLUSTER_HOME: freshDir() }, warn: () => undefined }) },
    );
    expect(await integrity(() => stranger.charge('d', pure(1)))).toBe('NEUROCLUSTER_ERR_INTEGRITY');
  });

  it('still verifies after the keyring rotates (rows name the key that signed them)', () => {
    const { accountant, keyring } = fresh(2);
    accountant.charge('d', pure(1));
    keyring.rotate();
    accountant.charge('d', pure(0.5));
    expect(accountant.status('d')).toMatchObject({ spent: 1.5, charges: 2 });
    expect(() => accountant.charge('d', pure(1))).toThrow(/past its budget/);
    expect(accountant.status('d').refusals).toBe(1);
  });
});

describe('the store file', () => {
  it('is owner-only (0600, with its -wal and -shm), in a directory of mode 0700', () => {
    const { file, accountant } = fresh();
    accountant.charge('d', pure(1));
    const mode = (f: string) => statSync(f).mode & 0o777;
    expect(mode(file)).toBe(0o600);
    expect(mode(`${file}-wal`)).toBe(0o600);
    expect(mode(`${file}-shm`)).toBe(0o600);
    expect(mode(join(file, '..'))).toBe(0o700);
    // A store left readable by an older version is made owner-only when it is opened.
    closeStores();
    chmodSync(file, 0o644);
    chmodSync(join(file, '..'), 0o755);
    const keyring = Keyring.open({ env: { NEUROCLUSTER_HOME: join(file, '..', '..') } });
    new PrivacyAccountant(openStore(file), undefined, { keyring }).charge('d', pure(1));
    expect([mode(file), mode(`${file}-wal`), mode(`${file}-shm`), mode(join(file, '..'))]).toEqual([
      0o600, 0o600, 0o600, 0o700,
    ]);
  });

  it('leaves a shared directory (sticky, as /tmp is) open to the others, the store itself owner-only', () => {
    const shared = join(tempDir(), 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    const file = join(shared, 'neurocluster.db');
    openStore(file).prepare('SELECT 1').get();
    expect(statSync(shared).mode & 0o7777).toBe(0o1777);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});

describe('a deleted store, from the command line', () => {
  it('is refused where the audit log records charges, instead of starting the budget afresh', () => {
    const home = join(freshDir(), 'home');
    const cli = (dataset: string) =>
      spawnSync(
        process.execPath,
        [
          join(ROOT, 'dist/src/cli/main.js'),
          'cluster',
          join(ROOT, 'examples/iris.csv'),
          '--k',
          '3',
          '--method',
          'kmeans',
          '--label-column',
          'species',
          '--epsilon',
          '1',
          '--bounds',
          '0:10',
          '--dataset',
          dataset,
          '--json',
        ],
        { encoding: 'utf8', env: { ...process.env, NEUROCLUSTER_HOME: home } },
      );
    expect(cli('payroll').status).toBe(0);
    for (const f of ['', '-wal', '-shm']) rmSync(join(home, `neurocluster.db${f}`), { force: true });
    const again = cli('payroll');
    expect(again.status).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(
      /^neurocluster: NEUROCLUSTER_ERR_INTEGRITY: the privacy ledger does not verify: it has no record of dataset payroll, yet the audit log records 1 charge of it/m,
    );
    // The library refuses the same; a dataset the audit log has never charged is charged as usual.
    const accountant = privacyAccountant(undefined, home);
    expect(() => accountant.charge('payroll', pure(1))).toThrow(/audit log/);
    expect(accountant.charge('fresh-dataset', pure(1)).spent).toBe(1);
  });
});
