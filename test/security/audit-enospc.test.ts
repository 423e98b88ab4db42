/**
 * A full disk under the audit log, simulated where no small tmpfs can be mounted (and always run:
 * it reaches each point of the append deterministically): `node:fs` is replaced for this file by
 * one whose writes to the log stop half-way with ENOSPC, whose fsync fails, or whose truncation
 * fails too. Each is NEUROCLUSTER_ERR_IO, never INTERNAL; the file is left as it was (or its torn
 * line is cut off by the next append, with a repair record); once space is back the chain verifies
 * and continues. test/security/audit-integrity.test.ts fills a real tmpfs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isNeuroclusterError } from '../../src/core/errors.js';
import { AuditLog, auditUnavailable } from '../../src/security/audit.js';
import { Keyring } from '../../src/security/keyring.js';
import { closeStores, openStore } from '../../src/store/db.js';
import { tempDir } from '../helpers.js';

const fault = vi.hoisted(() => ({ write: false, fsync: false, truncate: false }));

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const enospc = (syscall: string) =>
    Object.assign(new Error(`ENOSPC: no space left on device, ${syscall}`), {
      code: 'ENOSPC',
      errno: -28,
      syscall,
    });
  const writeSync = ((fd: number, buffer: NodeJS.ArrayBufferView | string, ...rest: unknown[]) => {
    if (fault.write && typeof buffer !== 'string') {
      // Half of it reaches the disk, then the disk is full.
      real.writeSync(fd, buffer, 0, Math.floor(buffer.byteLength / 2));
      throw enospc('write');
    }
    return (real.writeSync as (...a: unknown[]) => number)(fd, buffer, ...rest);
  }) as typeof real.writeSync;
  const fsyncSync = (fd: number) => {
    if (fault.fsync) throw enospc('fsync');
    real.fsyncSync(fd);
  };
  const ftruncateSync = (fd: number, len?: number) => {
    if (fault.truncate) throw enospc('ftruncate');
    real.ftruncateSync(fd, len);
  };
  const mocked = { ...real, writeSync, fsyncSync, ftruncateSync };
  return { ...mocked, default: mocked };
});

afterEach(() => {
  Object.assign(fault, { write: false, fsync: false, truncate: false });
  closeStores();
});

const SETTINGS = { enabled: true, retentionDays: 365, maxBytes: 64 * 1024 * 1024 };
const dir = tempDir();
let n = 0;

function log(): AuditLog {
  const d = join(dir, `log-${++n}`);
  const keyring = Keyring.open({ env: { NEUROCLUSTER_KEYRING: join(d, 'keyring.json') }, warn: () => {} });
  return new AuditLog(join(d, 'audit'), keyring, openStore(join(d, 'store.db')), SETTINGS);
}

const event = { action: 'data.read', resource: 'x.csv', outcome: 'success' } as const;

function failedAppend(audit: AuditLog): Error & { code: string } {
  try {
    audit.append(event);
  } catch (e) {
    expect(isNeuroclusterError(e), String(e)).toBe(true);
    return e as Error & { code: string };
  }
  throw new Error('the append did not fail');
}

describe('a full disk under the audit log (simulated ENOSPC)', () => {
  for (const where of ['write', 'fsync'] as const) {
    it(`an ENOSPC at the ${where} is NEUROCLUSTER_ERR_IO and leaves the file as it was; then the chain continues`, () => {
      const audit = log();
      for (let i = 0; i < 5; i++) audit.append(event);
      const before = readFileSync(audit.file);
      fault[where] = true;
      const error = failedAppend(audit);
      expect(error.code).toBe('NEUROCLUSTER_ERR_IO');
      expect(error.message).toMatch(/ENOSPC/);
      // What the CLI reports when a record cannot be written keeps the code.
      expect(auditUnavailable(error).code).toBe('NEUROCLUSTER_ERR_IO');
      expect(readFileSync(audit.file)).toEqual(before);
      fault[where] = false;
      expect(audit.append(event)?.seq).toBe(6);
      expect(audit.verify()).toMatchObject({ ok: true, records: 6, lastSeq: 6 });
    });
  }

  it('a torn line that could not be cut off at once is cut off by the next append, with a repair record', () => {
    const audit = log();
    for (let i = 0; i < 5; i++) audit.append(event);
    fault.write = true;
    fault.truncate = true;
    expect(failedAppend(audit).code).toBe('NEUROCLUSTER_ERR_IO');
    expect(readFileSync(audit.file, 'utf8').endsWith('\n')).toBe(false);
    fault.write = false;
    fault.truncate = false;
    expect(audit.append(event)?.seq).toBe(7);
    const records = readFileSync(audit.file, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records[5]).toMatchObject({ seq: 6, action: 'audit.repair' });
    expect(records[5].details.truncatedBytes).toBeGreaterThan(0);
    expect(audit.verify()).toMatchObject({ ok: true, records: 7 });
  });
});
