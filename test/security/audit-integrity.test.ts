/**
 * The audit log against tampering and faults (issue 18, items 4 and 5).
 *
 * The head check applies to the home's own log however it is named (`--log` by absolute or
 * relative path, through a symbolic link to the home): a dropped newest record, an older copy of
 * the file, an emptied or removed log, a deleted store (with or without the tail) all fail. The
 * head is keyed by the home's real path, so a home reached through a link keeps its chain.
 *
 * The append is one recoverable step: the state a kill between the line and the head's commit
 * leaves ("head 25, file ends at 26") is completed, a torn last line is cut off, each repair with
 * its own record; a kill at each point of the append that repairs (simulated in this process) and
 * SIGKILLs at random points of concurrent appends leave a chain that verifies and continues; a
 * full disk (a small tmpfs, where this process may mount one) is NEUROCLUSTER_ERR_IO, and once
 * space is back the chain verifies and continues.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  copyFileSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isNeuroclusterError } from '../../src/core/errors.js';
import { AuditLog } from '../../src/security/audit.js';
import type { AuditRecord } from '../../src/security/audit-record.js';
import { Keyring } from '../../src/security/keyring.js';
import { closeStores, openStore, storeFile } from '../../src/store/db.js';
import { ROOT, runCli, tempDir } from '../helpers.js';

afterEach(() => closeStores());

const dir = tempDir();
const SETTINGS = { enabled: true, retentionDays: 365, maxBytes: 64 * 1024 * 1024 };
let homes = 0;

/** The audit log of a NEUROCLUSTER_HOME, as the CLI opens it (its keyring, its store). */
function open(home: string): AuditLog {
  const keyring = Keyring.open({ env: { NEUROCLUSTER_HOME: home }, warn: () => {} });
  return new AuditLog(join(home, 'audit'), keyring, openStore(storeFile(home)), SETTINGS);
}

function fill(log: AuditLog, n: number): void {
  for (let i = 0; i < n; i++)
    log.append({ action: 'data.read', resource: `file-${i}.csv`, outcome: 'success', actor: 'alice' });
}

/** A fresh home whose log has `n` records; its store closed. */
function home(n: number): string {
  const h = join(dir, `home-${++homes}`);
  fill(open(h), n);
  closeStores();
  return h;
}

const logFile = (h: string) => join(h, 'audit', 'audit.jsonl');
const lines = (file: string) => readFileSync(file, 'utf8').trimEnd().split('\n');
const records = (file: string) => lines(file).map((l) => JSON.parse(l) as AuditRecord);

function removeStore(h: string): void {
  closeStores();
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${storeFile(h)}${suffix}`, { force: true });
}

/** `neurocluster audit verify --json [args]` with NEUROCLUSTER_HOME=`homeEnv`. */
function verify(homeEnv: string, args: string[] = [], cwd = ROOT) {
  const r = runCli(['audit', 'verify', '--json', ...args], { home: homeEnv, cwd });
  if (!r.stdout) throw new Error(`audit verify wrote nothing (exit ${r.code}): ${r.stderr}`);
  return {
    code: r.code,
    verdict: JSON.parse(r.stdout) as { ok: boolean; reason?: string; records: number },
  };
}

describe('audit verify --log <the home log>: the head check applies', () => {
  it('passes an intact log named by absolute path, relative path and through a symlinked home', () => {
    const h = home(5);
    const link = `${h}-link`;
    symlinkSync(h, link);
    expect(verify(h, ['--log', logFile(h)])).toMatchObject({ code: 0, verdict: { ok: true, records: 5 } });
    expect(verify(h, ['--log', 'audit/audit.jsonl'], h)).toMatchObject({ code: 0, verdict: { ok: true } });
    expect(verify(link, ['--log', logFile(h)])).toMatchObject({ code: 0, verdict: { ok: true } });
  });

  it('fails when the newest record is dropped (absolute path)', () => {
    const h = home(5);
    writeFileSync(logFile(h), `${lines(logFile(h)).slice(0, 4).join('\n')}\n`);
    const r = verify(h, ['--log', logFile(h)]);
    expect(r.code).toBe(1);
    expect(r.verdict?.reason).toMatch(/head is record 5, the file ends at 4/);
  });

  it('fails on an older copy of the file (relative path)', () => {
    const h = home(3);
    copyFileSync(logFile(h), join(dir, `old-${homes}.jsonl`));
    fill(open(h), 2);
    closeStores();
    copyFileSync(join(dir, `old-${homes}.jsonl`), logFile(h));
    const r = verify(h, ['--log', 'audit/audit.jsonl'], h);
    expect(r.code).toBe(1);
    expect(r.verdict?.reason).toMatch(/head is record 5, the file ends at 3/);
  });

  it('fails on an emptied log named through a symbolic link to the home', () => {
    const h = home(5);
    const link = `${h}-link`;
    symlinkSync(h, link);
    writeFileSync(logFile(h), '');
    const r = verify(h, ['--log', join(link, 'audit', 'audit.jsonl')]);
    expect(r.code).toBe(1);
    expect(r.verdict?.reason).toMatch(/head is record 5, the file ends at nothing/);
  });

  it('fails on a removed log', () => {
    const h = home(5);
    rmSync(logFile(h));
    for (const args of [['--log', logFile(h)], []]) {
      const r = verify(h, args);
      expect(r.code).toBe(1);
      expect(r.verdict?.reason).toMatch(/head is record 5, the file ends at nothing/);
    }
  });

  it('fails when the store is deleted, alone or with the tail, and stays failed after later appends', () => {
    const alone = home(5);
    removeStore(alone);
    expect(verify(alone, ['--log', logFile(alone)]).code).toBe(1);
    const withTail = home(5);
    writeFileSync(logFile(withTail), `${lines(logFile(withTail)).slice(0, 3).join('\n')}\n`);
    removeStore(withTail);
    const r = verify(withTail);
    expect(r.code).toBe(1);
    expect(r.verdict?.reason).toMatch(/head .*missing/);
    // Commands go on and chain onto what is left, but the loss of the head stays on record.
    fill(open(withTail), 2);
    closeStores();
    expect(verify(withTail).code).toBe(1);
    expect(verify(withTail, ['--log', logFile(withTail)]).code).toBe(1);
  });

  it('checks a file that is not the home log alone (a copy elsewhere)', () => {
    const h = home(4);
    const copy = join(dir, `copy-${homes}`, 'audit.jsonl');
    mkdirSync(join(dir, `copy-${homes}`));
    copyFileSync(logFile(h), copy);
    expect(verify(h, ['--log', copy])).toMatchObject({ code: 0, verdict: { ok: true, records: 4 } });
  });

  it('keys the head by the real path: a home reached through a symbolic link keeps its chain', () => {
    const h = home(3);
    const link = `${h}-link`;
    symlinkSync(h, link);
    const next = open(link).append({ action: 'data.read', resource: 'x', outcome: 'success' });
    expect(next?.seq).toBe(4);
    expect(open(link).verify()).toMatchObject({ ok: true, records: 4 });
    closeStores();
    expect(open(h).verify()).toMatchObject({ ok: true, records: 4 });
    expect(verify(h).code).toBe(0);
  });
});

describe('the append and the head are one recoverable step', () => {
  const head = (h: string) =>
    openStore(storeFile(h)).prepare('SELECT * FROM audit_head').get() as Record<string, unknown>;
  /** The head as `saved` had it: what a kill between lines written and their head's commit leaves. */
  const putBack = (h: string, saved: Record<string, unknown>) =>
    openStore(storeFile(h))
      .prepare('UPDATE audit_head SET seq = ?, hash = ?, key_id = ?, hmac = ?, at = ? WHERE log = ?')
      .run(saved.seq, saved.hash, saved.key_id, saved.hmac, saved.at, saved.log);

  it('completes a line whose head was not committed ("head 25, file ends at 26"), with a repair record', () => {
    const h = home(25);
    const saved = head(h);
    fill(open(h), 1);
    // What a kill between the line and the head's commit leaves: the head one record behind.
    putBack(h, saved);
    closeStores();
    const next = open(h).append({ action: 'data.read', resource: 'next.csv', outcome: 'success' });
    expect(next?.seq).toBe(28);
    const all = records(logFile(h));
    expect(all.map((r) => r.seq)).toEqual(Array.from({ length: 28 }, (_, i) => i + 1));
    expect(all[26]).toMatchObject({ action: 'audit.repair', details: { completed: [26] } });
    expect(open(h).verify()).toMatchObject({ ok: true, records: 28, lastSeq: 28 });
  });

  it('writes a group commit as one chain, and completes a whole group whose head was not committed', () => {
    const h = home(5);
    const saved = head(h);
    const group = open(h).appendAll(
      ['a', 'b', 'c'].map((r, i) => ({
        action: 'job.submit',
        resource: r,
        outcome: 'success' as const,
        correlationId: `c-${i}`,
      })),
    );
    // Chained, each with its own correlation ID, the first counting the group (and signing it).
    expect(group.map((r) => [r.seq, r.correlationId, r.batch])).toEqual([
      [6, 'c-0', 3],
      [7, 'c-1', undefined],
      [8, 'c-2', undefined],
    ]);
    expect(open(h).verify()).toMatchObject({ ok: true, records: 8 });
    // What a kill between the group's fsync and its head's commit leaves: three records past it.
    putBack(h, saved);
    closeStores();
    const next = open(h).append({ action: 'data.read', resource: 'next.csv', outcome: 'success' });
    expect(next?.seq).toBe(10);
    const all = records(logFile(h));
    expect(all[8]).toMatchObject({ action: 'audit.repair', details: { completed: [6, 7, 8] } });
    expect(open(h).verify()).toMatchObject({ ok: true, records: 10, lastSeq: 10 });
  });

  it('refuses more records past the head than a group counts: a rolled-back store, not a kill', () => {
    const h = home(5);
    const saved = head(h);
    const log = open(h);
    log.appendAll([
      { action: 'data.read', resource: 'a', outcome: 'success' },
      { action: 'data.read', resource: 'b', outcome: 'success' },
    ]);
    log.append({ action: 'data.read', resource: 'c', outcome: 'success' });
    putBack(h, saved);
    closeStores();
    let error: unknown;
    try {
      open(h).append({ action: 'data.read', resource: 'next.csv', outcome: 'success' });
    } catch (e) {
      error = e;
    }
    expect(isNeuroclusterError(error) && error.code).toBe('NEUROCLUSTER_ERR_INTEGRITY');
    expect((error as Error).message).toMatch(/3 records past the head .* the 2 of one group commit at most/);
  });

  it('cuts off a torn last line (a write cut short), with a repair record', () => {
    const h = home(5);
    const torn = '{"seq":6,"at":"2026-12-03T20:00:00.000Z","actor":"al';
    appendFileSync(logFile(h), torn);
    const next = open(h).append({ action: 'data.read', resource: 'next.csv', outcome: 'success' });
    expect(next?.seq).toBe(7);
    const all = records(logFile(h));
    expect(all[5]).toMatchObject({
      seq: 6,
      action: 'audit.repair',
      details: { truncatedBytes: torn.length },
    });
    expect(open(h).verify()).toMatchObject({ ok: true, records: 7 });
  });

  it('verify repairs before it judges: a kill leaves no false alarm', () => {
    const h = home(3);
    appendFileSync(logFile(h), '{"seq":4,"at":"20');
    expect(verify(h)).toMatchObject({ code: 0, verdict: { ok: true, records: 4 } });
  });

  it('does not adopt a line that does not chain from the head (an edited or forged line stays evidence)', () => {
    const h = home(3);
    const last = JSON.parse(lines(logFile(h)).at(-1)!);
    appendFileSync(logFile(h), `${JSON.stringify({ ...last, seq: 4, resource: 'forged' })}\n`);
    const verdict = open(h).verify();
    expect(verdict.ok).toBe(false);
  });

  it('refuses a store rolled back to an older copy: more than one record past its head is not a kill', () => {
    const h = home(5);
    closeStores();
    const backup = join(dir, `rolled-back-${homes}.db`);
    copyFileSync(storeFile(h), backup);
    fill(open(h), 3);
    closeStores();
    copyFileSync(backup, storeFile(h));
    for (const suffix of ['-wal', '-shm']) rmSync(`${storeFile(h)}${suffix}`, { force: true });
    const error = (() => {
      try {
        open(h).append({ action: 'data.read', resource: 'next.csv', outcome: 'success' });
      } catch (e) {
        return e;
      }
    })();
    expect(isNeuroclusterError(error) && error.code).toBe('NEUROCLUSTER_ERR_INTEGRITY');
    closeStores();
    // Nothing was adopted or appended, and verify says so.
    expect(lines(logFile(h))).toHaveLength(8);
    const r = verify(h);
    expect(r.code).toBe(1);
    expect(r.verdict.ok).toBe(false);
  });

  /**
   * A kill simulated in this process: the `n`-th point of interest of an append throws, each clock
   * reading (taken before a line is made) and each write of the head (made after its line is written
   * and fsynced) being one. The throw rolls the store's transaction back and leaves the file as it
   * is: what a SIGKILL at that point leaves.
   */
  class Killed extends Error {}
  function appendKilledAt(h: string, n: number, settings = SETTINGS): void {
    let points = 0;
    const point = () => {
      if (++points === n) throw new Killed(`killed at point ${n}`);
    };
    const db = openStore(storeFile(h));
    const killing = new Proxy(db, {
      get(target, name) {
        if (name === 'prepare') {
          return (sql: string) => {
            const statement = target.prepare(sql);
            if (!sql.includes('INSERT INTO audit_head')) return statement;
            return new Proxy(statement, {
              get(s, key) {
                if (key === 'run')
                  return (...args: unknown[]) => {
                    point();
                    return s.run(...args);
                  };
                const value = Reflect.get(s, key);
                return typeof value === 'function' ? value.bind(s) : value;
              },
            });
          };
        }
        const value = Reflect.get(target, name);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const keyring = Keyring.open({ env: { NEUROCLUSTER_HOME: h }, warn: () => {} });
    const clock = () => {
      point();
      return new Date();
    };
    const log = new AuditLog(join(h, 'audit'), keyring, killing, settings, clock);
    try {
      log.append({ action: 'data.read', resource: `killed-at-${n}.csv`, outcome: 'success' });
    } catch (error) {
      if (!(error instanceof Killed)) throw error;
    }
  }

  it('survives a kill at every point of the append that repairs a kill, and of the one after it', () => {
    // A repairing append has 7 points (adopt: clock, head; repair record: clock, head; the record
    // asked for: clock, head; retention's clock). Before each repair step was a transaction of its
    // own, a kill after the repair record left two lines past the head, refused as a rollback.
    let states = 0;
    for (let first = 1; first <= 7; first++) {
      for (let second = 0; second <= 6; second++) {
        const h = home(5);
        // A kill between the line and the head's commit: head 5, the file ends at 6.
        appendKilledAt(h, 2);
        expect(lines(logFile(h))).toHaveLength(6);
        // The append that repairs it is killed at one of its points, then maybe the next one too.
        appendKilledAt(h, first);
        if (second > 0) appendKilledAt(h, second);
        closeStores();
        const log = open(h);
        const verdict = log.verify();
        expect(verdict, `killed at ${first}, then at ${second}`).toMatchObject({ ok: true });
        if (!verdict.ok) return;
        expect(verdict.records).toBe(verdict.lastSeq);
        // The line the first kill left was adopted, and a repair record says so.
        const all = records(logFile(h));
        const completed = all.flatMap((r) =>
          r.action === 'audit.repair' ? ((r.details.completed as number[] | undefined) ?? []) : [],
        );
        expect(completed, `killed at ${first}, then at ${second}`).toContain(6);
        expect(log.append({ action: 'data.read', resource: 'after', outcome: 'success' })?.seq).toBe(
          verdict.lastSeq + 1,
        );
        expect(log.verify()).toMatchObject({ ok: true, lastSeq: verdict.lastSeq + 1 });
        closeStores();
        states++;
      }
    }
    expect(states).toBe(49);
  });

  it('survives a kill at every point of an append that prunes two rotated files (a checkpoint a transaction)', () => {
    const settings = { enabled: true, retentionDays: 30, maxBytes: 2000 };
    const withSettings = (h: string) =>
      new AuditLog(
        join(h, 'audit'),
        Keyring.open({ env: { NEUROCLUSTER_HOME: h }, warn: () => {} }),
        openStore(storeFile(h)),
        settings,
      );
    const rotatedIn = (h: string) =>
      readdirSync(join(h, 'audit'))
        .filter((f) => f.startsWith('audit-'))
        .sort();
    // The append's points: its clock and head, retention's clock, then each checkpoint's.
    for (let point = 1; point <= 8; point++) {
      const h = join(dir, `home-${++homes}`);
      fill(withSettings(h), 20); // several rotations at ~400 bytes a record
      const rotated = rotatedIn(h);
      expect(rotated.length).toBeGreaterThan(2);
      const aged = new Date(Date.now() - 40 * 86_400_000);
      for (const f of rotated.slice(0, 2)) utimesSync(join(h, 'audit', f), aged, aged);
      appendKilledAt(h, point, settings);
      closeStores();
      const log = withSettings(h);
      const verdict = log.verify();
      expect(verdict, `killed at ${point}`).toMatchObject({ ok: true });
      if (!verdict.ok) return;
      // The next append prunes what the kill left unpruned; the chain goes on from the checkpoints.
      expect(log.append({ action: 'data.read', resource: 'after', outcome: 'success' })?.seq).toBe(
        verdict.lastSeq + 1,
      );
      expect(rotatedIn(h)).not.toContain(rotated[0]);
      expect(rotatedIn(h)).not.toContain(rotated[1]);
      expect(log.verify(), `killed at ${point}`).toMatchObject({ ok: true });
      closeStores();
    }
  });

  it('stays one intact chain through 60 SIGKILLs at random points of an append, with another process appending meanwhile', async () => {
    const h = join(dir, `killed-${++homes}`);
    Keyring.open({ env: { NEUROCLUSTER_HOME: h }, warn: () => {} }); // the keyring exists before
    const script = `
      import { AuditLog } from '${ROOT}dist/src/security/audit.js';
      import { Keyring } from '${ROOT}dist/src/security/keyring.js';
      import { openStore, storeFile } from '${ROOT}dist/src/store/db.js';
      const home = ${JSON.stringify(h)};
      const log = new AuditLog(home + '/audit', Keyring.open({ env: { NEUROCLUSTER_HOME: home } }),
        openStore(storeFile(home)), { enabled: true, retentionDays: 365, maxBytes: 1e9 });
      const pause = Number(process.argv[1]);
      const nap = new Int32Array(new SharedArrayBuffer(4));
      for (let i = 0; i < 100000; i++) {
        log.append({ action: 'data.read', resource: 'r-' + i, outcome: 'success', actor: 'p' + process.pid });
        if (i === 0) process.stdout.write('ready');
        if (pause > 0) Atomics.wait(nap, 0, 0, pause);
      }
    `;
    const children: ChildProcess[] = [];
    // A writer in a tight loop would hold the lock nearly always (no CLI command does): the steady
    // one pauses between appends, so that the victims get the lock too.
    const start = (pause = 0) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, String(pause)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      return child;
    };
    const ended = (c: ChildProcess) =>
      new Promise<void>((resolve) =>
        c.exitCode !== null || c.signalCode !== null ? resolve() : c.on('exit', () => resolve()),
      );
    const ready = (c: ChildProcess) =>
      new Promise<void>((resolve) => {
        c.stdout!.once('data', () => resolve());
        c.on('exit', () => resolve());
      });
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // One writer appends throughout; another is started, let append a random while, and killed.
    try {
      const steady = start(20);
      await ready(steady);
      for (let kill = 0; kill < 60; kill++) {
        const victim = start();
        await ready(victim);
        await sleep(Math.random() * 40);
        victim.kill('SIGKILL');
        await ended(victim);
        // Killed, not failed on its own (a lock it could not get, a broken chain).
        expect(victim.signalCode).toBe('SIGKILL');
      }
      steady.kill('SIGKILL');
      await ended(steady);
      expect(steady.signalCode).toBe('SIGKILL');
    } finally {
      for (const c of children) c.kill('SIGKILL');
      await Promise.all(children.map(ended));
    }
    const log = open(h);
    const verdict = log.verify();
    expect(verdict).toMatchObject({ ok: true });
    if (!verdict.ok) return;
    expect(verdict.records).toBe(verdict.lastSeq);
    expect(verdict.records).toBeGreaterThan(60);
    expect(log.append({ action: 'data.read', resource: 'after', outcome: 'success' })?.seq).toBe(
      verdict.lastSeq + 1,
    );
    expect(log.verify()).toMatchObject({ ok: true, lastSeq: verdict.lastSeq + 1 });
    const repairs = records(logFile(h)).filter((r) => r.action === 'audit.repair');
    console.log(
      `audit kill test: ${verdict.lastSeq} records, ${repairs.length} repairs (${repairs.filter((r) => r.details.completed).length} completed, ${repairs.filter((r) => r.details.truncatedBytes).length} torn lines cut)`,
    );
  }, 300_000);
});

/** Mounts a tmpfs of `size` on `at`; false where this process may not (not root, a sandbox). */
function mountTmpfs(at: string, size: string): boolean {
  if (process.platform !== 'linux') return false;
  return (
    spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', at], { stdio: 'ignore' })
      .status === 0
  );
}
const unmount = (at: string) => spawnSync('umount', [at], { stdio: 'ignore' });
const canMount = (() => {
  const probe = join(dir, 'probe-mount');
  mkdirSync(probe);
  const ok = mountTmpfs(probe, '64k');
  if (ok) unmount(probe);
  rmdirSync(probe);
  return ok;
})();

/** Writes `file` until the disk is full. */
function fillDisk(file: string): void {
  const fd = openSync(file, 'a');
  try {
    for (const chunk of [65536, 4096, 512, 1]) {
      const bytes = Buffer.alloc(chunk, 0x61);
      for (;;) {
        try {
          if (writeSync(fd, bytes) < chunk) break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

describe('a full disk (a small tmpfs)', () => {
  it.skipIf(!canMount)(
    'is NEUROCLUSTER_ERR_IO at every free-space level, and the chain verifies and continues once space is back',
    () => {
      const mnt = join(dir, 'full-disk');
      mkdirSync(mnt);
      expect(mountTmpfs(mnt, '512k')).toBe(true);
      const failures: string[] = [];
      try {
        const log = open(mnt);
        fill(log, 10);
        const filler = join(mnt, 'filler');
        for (let level = 0; level < 13; level++) {
          fillDisk(filler);
          // Free a little: 0 to 24 KiB, in steps smaller than a page.
          truncateSync(filler, Math.max(0, statSync(filler).size - level * 2048));
          let error: unknown;
          for (let i = 0; i < 1000 && error === undefined; i++) {
            try {
              fill(log, 1);
            } catch (e) {
              error = e;
            }
          }
          expect(isNeuroclusterError(error), String(error)).toBe(true);
          expect((error as { code: string }).code).toBe('NEUROCLUSTER_ERR_IO');
          failures.push((error as Error).message);
          rmSync(filler);
          const verdict = log.verify();
          expect(verdict, `level ${level}`).toMatchObject({ ok: true });
          if (!verdict.ok) return;
          expect(verdict.records).toBe(verdict.lastSeq);
          expect(log.append({ action: 'data.read', resource: 'after', outcome: 'success' })?.seq).toBe(
            verdict.lastSeq + 1,
          );
        }
        expect(open(mnt).verify()).toMatchObject({ ok: true });
      } finally {
        closeStores();
        unmount(mnt);
        rmdirSync(mnt);
      }
      const sqlite = failures.filter((m) => /SQLITE|database/i.test(m)).length;
      console.log(
        `audit full-disk test: 13 levels, ${sqlite} failed in the store, ${13 - sqlite} in the file`,
      );
    },
  );
});
