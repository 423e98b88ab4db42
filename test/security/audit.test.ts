/**
 * The audit log: a signed hash chain with its head in the store. Every kind of tampering is
 * detected and named (edit, reorder, delete, truncate, drop the newest); keys rotate and retire
 * without breaking old records; retention prunes with checkpoints; two processes append at once.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog, type AuditLog as AuditLogType, riskOf } from '../../src/security/audit.js';
import { Keyring } from '../../src/security/keyring.js';
import { closeStores, openStore } from '../../src/store/db.js';
import { ROOT, tempDir } from '../helpers.js';

afterEach(() => closeStores());

const SETTINGS = { enabled: true, retentionDays: 365, maxBytes: 64 * 1024 * 1024 };

function log(settings = SETTINGS, now?: () => Date): { audit: AuditLogType; dir: string; keyring: Keyring } {
  const dir = tempDir();
  const keyring = Keyring.open({ env: { NEUROCLUSTER_KEYRING: join(dir, 'keyring.json') }, warn: () => {} });
  const audit = new AuditLog(join(dir, 'audit'), keyring, openStore(join(dir, 'store.db')), settings, now);
  return { audit, dir, keyring };
}

function fill(audit: AuditLogType, n: number): void {
  for (let i = 0; i < n; i++) {
    audit.append({
      action: 'data.read',
      resource: `file-${i}.csv`,
      outcome: i % 3 === 2 ? 'failure' : 'success',
      actor: 'alice',
    });
  }
}

const lines = (file: string) => readFileSync(file, 'utf8').trimEnd().split('\n');

describe('the audit log', () => {
  it('chains signed records and verifies them with the head', () => {
    const { audit } = log();
    fill(audit, 5);
    const records = lines(audit.file).map((l) => JSON.parse(l));
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(records[0]).toMatchObject({ actor: 'alice', action: 'data.read', outcome: 'success', risk: 10 });
    expect(records[2].risk).toBe(riskOf('data.read', 'failure'));
    expect(records[1].prev).toMatch(/^[0-9a-f]{64}$/);
    expect(audit.verify()).toEqual({ ok: true, records: 5, files: [audit.file], lastSeq: 5 });
  });

  const tampered: [string, (ls: string[]) => string[], RegExp, number][] = [
    [
      'an edited field',
      (ls) => ls.map((l, i) => (i === 2 ? l.replace('"alice"', '"mallory"') : l)),
      /HMAC/,
      3,
    ],
    [
      'two records swapped',
      (ls) => [ls[0]!, ls[2]!, ls[1]!, ...ls.slice(3)],
      /sequence number 3 follows 1/,
      2,
    ],
    ['a record deleted', (ls) => ls.filter((_, i) => i !== 3), /sequence number 5 follows 3/, 4],
    ['a half-written line', (ls) => [...ls.slice(0, 4), ls[4]!.slice(0, 40)], /not a JSON record/, 5],
    ['the newest records cut off', (ls) => ls.slice(0, 3), /head is record 5, the file ends at 3/, 0],
  ];
  for (const [what, change, reason, line] of tampered) {
    it(`detects ${what}, naming the first bad record`, () => {
      const { audit } = log();
      fill(audit, 5);
      writeFileSync(audit.file, `${change(lines(audit.file)).join('\n')}\n`);
      const verdict = audit.verify();
      expect(verdict.ok).toBe(false);
      if (verdict.ok) return;
      expect(verdict.reason).toMatch(reason);
      expect(verdict.line).toBe(line);
    });
  }

  it('detects a forged record appended with a key that is not in the keyring', () => {
    const { audit } = log();
    fill(audit, 2);
    const last = JSON.parse(lines(audit.file).at(-1)!);
    appendFileSync(audit.file, `${JSON.stringify({ ...last, seq: 3, keyId: 'k-forged' })}\n`);
    const verdict = audit.verify();
    expect(verdict.ok).toBe(false);
  });

  it('keeps old records verifiable after a key rotation and after the old key is retired', () => {
    const { audit, keyring } = log();
    fill(audit, 3);
    const old = keyring.current().id;
    keyring.rotate();
    fill(audit, 2);
    keyring.retire(old);
    const keyIds = lines(audit.file).map((l) => JSON.parse(l).keyId);
    expect(new Set(keyIds).size).toBe(2);
    expect(audit.verify().ok).toBe(true);
  });

  it('rotates past maxBytes and prunes old files with a signed checkpoint; what remains verifies', () => {
    let clock = new Date('2026-01-01T00:00:00Z');
    const { audit, dir } = log({ enabled: true, retentionDays: 30, maxBytes: 2000 }, () => clock);
    fill(audit, 20); // several rotations at ~400 bytes a record
    const rotated = readdirSync(join(dir, 'audit')).filter((f) => f.startsWith('audit-'));
    expect(rotated.length).toBeGreaterThan(2);
    expect(audit.verify().ok).toBe(true);
    // Age the two oldest files past retention; the next append prunes them.
    const [a, b] = rotated.sort();
    for (const f of [a!, b!])
      utimesSync(join(dir, 'audit', f), new Date('2025-01-01'), new Date('2025-01-01'));
    clock = new Date('2026-03-01T00:00:00Z');
    fill(audit, 1);
    const left = readdirSync(join(dir, 'audit'));
    expect(left).not.toContain(a);
    expect(left).not.toContain(b);
    const all = readdirSync(join(dir, 'audit'))
      .sort()
      .flatMap((f) => lines(join(dir, 'audit', f)).map((l) => JSON.parse(l)));
    expect(all.filter((r) => r.action === 'audit.checkpoint')).toHaveLength(2);
    expect(audit.verify().ok).toBe(true);
    // Deleting a file without a checkpoint is not pruning: detected.
    const oldest = readdirSync(join(dir, 'audit'))
      .filter((f) => f.startsWith('audit-'))
      .sort()[0]!;
    rmSync(join(dir, 'audit', oldest));
    const verdict = audit.verify();
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) expect(verdict.reason).toMatch(/no checkpoint vouches/);
  });

  it('stays one chain when two processes append at once', async () => {
    const dir = tempDir();
    const script = (who: string) => `
      import { AuditLog } from '${ROOT}dist/src/security/audit.js';
      import { Keyring } from '${ROOT}dist/src/security/keyring.js';
      import { openStore } from '${ROOT}dist/src/store/db.js';
      const keyring = Keyring.open({ env: { NEUROCLUSTER_KEYRING: ${JSON.stringify(join(dir, 'keyring.json'))} }, warn: () => {} });
      const log = new AuditLog(${JSON.stringify(join(dir, 'audit'))}, keyring, openStore(${JSON.stringify(join(dir, 'store.db'))}), { enabled: true, retentionDays: 365, maxBytes: 1e9 });
      for (let i = 0; i < 25; i++) log.append({ action: 'data.read', resource: '${who}-' + i, outcome: 'success', actor: '${who}' });
    `;
    // The keyring exists before the race (creating it is not what is tested).
    Keyring.open({ env: { NEUROCLUSTER_KEYRING: join(dir, 'keyring.json') }, warn: () => {} });
    const run = (who: string) =>
      new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script(who)], {
          stdio: 'inherit',
        });
        child.on('error', reject);
        child.on('close', (code) => resolve(code ?? -1));
      });
    expect(await Promise.all([run('a'), run('b')])).toEqual([0, 0]);
    const keyring = Keyring.open({ env: { NEUROCLUSTER_KEYRING: join(dir, 'keyring.json') } });
    const audit = new AuditLog(join(dir, 'audit'), keyring, openStore(join(dir, 'store.db')), SETTINGS);
    expect(audit.verify()).toMatchObject({ ok: true, records: 50, lastSeq: 50 });
  });

  it('reads back its last records from the end of the file (how a new process primes its anomaly rules)', () => {
    const { audit } = log();
    fill(audit, 30);
    expect(audit.tail(3).map((r) => r.seq)).toEqual([28, 29, 30]);
    expect(audit.tail(100).map((r) => r.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it('writes nothing when it is off', () => {
    const { audit } = log({ ...SETTINGS, enabled: false });
    expect(audit.append({ action: 'data.read', resource: 'x', outcome: 'success' })).toBeUndefined();
    expect(audit.verify()).toMatchObject({ ok: true, records: 0 });
  });
});
