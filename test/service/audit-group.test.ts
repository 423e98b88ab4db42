/**
 * The service's audit records as group commits: the records asked for in one turn of the event
 * loop are one write (the first counting the group), each request's promise settles once its
 * record is on disk, and a failed write fails every request of its group.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/security/audit.js';
import { Keyring } from '../../src/security/keyring.js';
import { AuditGroup } from '../../src/service/audit-group.js';
import { openStore } from '../../src/store/db.js';
import { tempDir } from '../helpers.js';

const SETTINGS = { enabled: true, retentionDays: 365, maxBytes: 64 * 1024 * 1024 };

function log(): { audit: AuditLog; dir: string } {
  const dir = tempDir();
  const keyring = Keyring.open({ env: { NEUROCLUSTER_KEYRING: join(dir, 'keyring.json') }, warn: () => {} });
  return {
    audit: new AuditLog(join(dir, 'audit'), keyring, openStore(join(dir, 'store.db')), SETTINGS),
    dir,
  };
}

const submit = (i: number) => ({ action: 'job.submit', resource: `job-${i}`, outcome: 'success' as const });

describe('audit records as group commits', () => {
  it('writes the records of one turn together, each under its own correlation ID, and the next turn apart', async () => {
    const { audit } = log();
    const group = new AuditGroup(audit);
    let written = 0;
    const first = [0, 1, 2, 3, 4].map((i) => group.append(submit(i), `c-${i}`).then(() => written++));
    // Nothing is on disk, or settled, before the turn ends.
    expect(audit.tail(10)).toEqual([]);
    await Promise.all(first);
    expect(written).toBe(5);
    await group.append(submit(5), 'c-5');
    const records = audit.tail(10);
    expect(records.map((r) => [r.seq, r.resource, r.correlationId, r.batch])).toEqual([
      [1, 'job-0', 'c-0', 5],
      [2, 'job-1', 'c-1', undefined],
      [3, 'job-2', 'c-2', undefined],
      [4, 'job-3', 'c-3', undefined],
      [5, 'job-4', 'c-4', undefined],
      [6, 'job-5', 'c-5', undefined],
    ]);
    expect(audit.verify()).toMatchObject({ ok: true, records: 6 });
  });

  it('fails every request of a group whose write failed, and writes the next group', async () => {
    const { audit, dir } = log();
    const group = new AuditGroup(audit);
    await group.append(submit(0), 'c-0');
    // A directory where the log's file is: no write reaches it, not even root's.
    const file = join(dir, 'audit', 'audit.jsonl');
    const kept = readFileSync(file);
    rmSync(file);
    mkdirSync(file);
    try {
      const failed = await Promise.allSettled([
        group.append(submit(1), 'c-1'),
        group.append(submit(2), 'c-2'),
      ]);
      expect(failed.map((f) => f.status)).toEqual(['rejected', 'rejected']);
    } finally {
      rmSync(file, { recursive: true });
      writeFileSync(file, kept, { mode: 0o600 });
    }
    await group.append(submit(3), 'c-3');
    expect(audit.verify()).toMatchObject({ ok: true });
    expect(audit.tail(10).at(-1)).toMatchObject({ resource: 'job-3', correlationId: 'c-3' });
  });

  it('drains: once drain settles, every record asked for before it is on disk', async () => {
    const { audit } = log();
    const group = new AuditGroup(audit);
    // A listener's fire-and-forget record (a job's end during a shutdown), then the drain.
    void group.append(submit(0), 'c-0');
    void group.append(submit(1), 'c-1');
    expect(audit.tail(10)).toEqual([]);
    await group.drain();
    expect(audit.tail(10).map((r) => r.resource)).toEqual(['job-0', 'job-1']);
    await group.drain();
  });

  it('settles at once without a log (auditing off)', async () => {
    await expect(new AuditGroup(undefined).append(submit(0), 'c-0')).resolves.toBeUndefined();
  });
});
