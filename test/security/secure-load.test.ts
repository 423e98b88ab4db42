/**
 * Secure loading: data roots (opt-in; symbolic links judged by where they point), size, row and
 * column limits, an expected schema, an audit record either way; and CSV cells that would run as
 * spreadsheet formulas neutralized.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { csvCell } from '../../src/cli/output.js';
import { resolveConfig } from '../../src/config/load.js';
import { AuditLog } from '../../src/security/audit.js';
import { Keyring } from '../../src/security/keyring.js';
import { checkDataPath, loadWithinLimits, SecureDataProcessor } from '../../src/security/secure-load.js';
import { closeStores, openStore } from '../../src/store/db.js';
import { failure, tempDir } from '../helpers.js';

afterEach(() => closeStores());

function layout() {
  const dir = tempDir();
  const root = join(dir, 'data');
  const outside = join(dir, 'elsewhere');
  mkdirSync(root);
  mkdirSync(outside);
  const csv = 'a,b\n1,2\n3,4\n5,6\n';
  writeFileSync(join(root, 'in.csv'), csv);
  writeFileSync(join(outside, 'out.csv'), csv);
  // A link inside the root that points outside it, and one outside that points in.
  symlinkSync(join(outside, 'out.csv'), join(root, 'link-out.csv'));
  symlinkSync(join(root, 'in.csv'), join(outside, 'link-in.csv'));
  return { dir, root, outside };
}

describe('data roots', () => {
  it('let any readable file through when none are configured', () => {
    const { outside } = layout();
    expect(checkDataPath(join(outside, 'out.csv'), [])).toBe(join(outside, 'out.csv'));
  });

  it('refuse paths outside them, symlink targets included, with NEUROCLUSTER_ERR_SECURITY_PATH', () => {
    const { root, outside } = layout();
    expect(checkDataPath(join(root, 'in.csv'), [root])).toBe(join(root, 'in.csv'));
    expect(checkDataPath(join(outside, 'link-in.csv'), [root])).toBe(join(root, 'in.csv'));
    for (const path of [
      join(outside, 'out.csv'),
      join(root, 'link-out.csv'),
      join(root, '..', 'elsewhere', 'out.csv'),
    ]) {
      expect(() => checkDataPath(path, [root]), path).toThrow(
        expect.objectContaining({ code: 'NEUROCLUSTER_ERR_SECURITY_PATH' }),
      );
    }
    expect(() => checkDataPath(join(root, 'link-out.csv'), [root])).toThrow(/resolves to/);
    // A name that starts with two dots is still inside.
    writeFileSync(join(root, '..inside.csv'), 'a\n1\n');
    expect(checkDataPath(join(root, '..inside.csv'), [root])).toBe(join(root, '..inside.csv'));
  });
});

describe('limits', () => {
  it('refuse a file over the byte limit before parsing it, and too many rows or columns after', async () => {
    const { root } = layout();
    const data = { ...resolveConfig().data };
    const limits = { dataRoots: [], maxFileBytes: 1 << 20, maxRows: 100, maxColumns: 100 };
    expect((await loadWithinLimits(join(root, 'in.csv'), data, limits)).n).toBe(3);
    expect(
      (await failure(loadWithinLimits(join(root, 'in.csv'), data, { ...limits, maxFileBytes: 5 }))).message,
    ).toMatch(/over security.maxFileBytes/);
    expect(
      (await failure(loadWithinLimits(join(root, 'in.csv'), data, { ...limits, maxRows: 2 }))).message,
    ).toMatch(/3 rows x 2 columns is over the limits/);
    expect(
      (await failure(loadWithinLimits(join(root, 'in.csv'), data, { ...limits, maxColumns: 1 }))).code,
    ).toBe('NEUROCLUSTER_ERR_DATA_SHAPE');
  });

  it('never go below 10 million rows in the configuration', () => {
    expect(() => resolveConfig({ security: { maxRows: 1000 } })).toThrow(/maxRows/);
    expect(resolveConfig().security.maxRows).toBeGreaterThanOrEqual(10_000_000);
  });
});

describe('SecureDataProcessor.secureLoadData', () => {
  it('checks the roots and the expected columns, and records who loaded what, refusals included', async () => {
    const { dir, root, outside } = layout();
    const keyring = Keyring.open({ env: { NEUROCLUSTER_KEYRING: join(dir, 'k.json') }, warn: () => {} });
    const audit = new AuditLog(join(dir, 'audit'), keyring, openStore(join(dir, 's.db')), {
      enabled: true,
      retentionDays: 365,
      maxBytes: 1e9,
    });
    const config = resolveConfig({ security: { dataRoots: [root] } });
    const processor = new SecureDataProcessor(config, audit);
    const ds = await processor.secureLoadData(join(root, 'in.csv'), {
      userId: 'alice',
      expectColumns: ['a', 'b'],
    });
    expect(ds.n).toBe(3);
    expect(
      (await failure(processor.secureLoadData(join(outside, 'out.csv'), { userId: 'mallory' }))).code,
    ).toBe('NEUROCLUSTER_ERR_SECURITY_PATH');
    expect(
      (await failure(processor.secureLoadData(join(root, 'in.csv'), { userId: 'bob', expectColumns: ['c'] })))
        .message,
    ).toMatch(/missing expected column\(s\): c/);
    const { readFileSync } = await import('node:fs');
    const records = readFileSync(audit.file, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records.map((r) => [r.actor, r.action, r.outcome])).toEqual([
      ['alice', 'data.read', 'success'],
      ['mallory', 'data.read', 'denied'],
      ['bob', 'data.read', 'failure'],
    ]);
    expect(records[1].risk).toBe(40);
    expect(audit.verify().ok).toBe(true);
  });
});

describe('CSV cells the engine writes', () => {
  it('neutralize anything a spreadsheet would run as a formula, and leave plain numbers alone', () => {
    for (const [cell, out] of [
      ['=SUM(A1:A9)', "'=SUM(A1:A9)"],
      ['+cmd', "'+cmd"],
      ['-1+2', "'-1+2"],
      ['@risky', "'@risky"],
      ['\t1', "'\t1"],
      ['\r=1', `"'\r=1"`],
      ['-Infinity', "'-Infinity"],
      ['-0x10', "'-0x10"],
      ['-1.5e3', '-1.5e3'],
      ['+42', '+42'],
      ['plain', 'plain'],
      ['a,b', '"a,b"'],
      ['=1,"x"', `"'=1,""x"""`],
    ] as const) {
      expect(csvCell(cell), JSON.stringify(cell)).toBe(out);
    }
  });
});
