/**
 * Atomic writes under faults (issue 18, items 6 to 8), in process: a full disk is
 * NEUROCLUSTER_ERR_IO and leaves no temporary; temporaries name their process and those of dead
 * processes are removed; outputs never land on the engine's own files, however the path is
 * spelled; staged writes appear only on commit; an engine state that cannot be written is a
 * warning, never a fallback.
 *
 * The full disk is a real one where this process may mount a small tmpfs (root), and an injected
 * ENOSPC otherwise (and always, besides).
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { engineFilesOf } from '../../src/config/home.js';
import {
  assertNotEngineFile,
  removeStaleTemporaries,
  STALE_TEMPORARY_MS,
  StagedWrites,
  writeFileAtomic,
  writeStateFileSync,
  writeStreamAtomic,
} from '../../src/core/atomic.js';
import { toNeuroclusterError } from '../../src/core/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { BreakerBook } from '../../src/resilience/breakers.js';
import { failure, ROOT, tempDir } from '../helpers.js';
import { fillDisk, mountTmpfs } from './tmpfs.js';

const dir = tempDir();
const IRIS = join(ROOT, 'examples/iris.csv');

/** A pid no process has: one that just exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

/** A temporary of `name` in `dir` as process `pid` names it, `ageMs` old. */
function leaveTemporary(where: string, name: string, pid: number, ageMs: number): string {
  const path = join(where, `.${name}.${pid}.0123456789ab.tmp`);
  writeFileSync(path, 'x'.repeat(1000));
  const t = (Date.now() - ageMs) / 1000;
  utimesSync(path, t, t);
  return path;
}

const temporaries = (where: string) => readdirSync(where).filter((f) => f.endsWith('.tmp'));

/** A logger that collects the warnings. */
function warnings() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'warn', destination: sink }) };
}

describe('temporaries', () => {
  it('name the process that writes them, and go when the write is done', async () => {
    const out = join(dir, 'named');
    mkdirSync(out);
    let seen: string[] = [];
    await writeStreamAtomic(join(out, 'r.json'), engineFilesOf(), async (file) => {
      await file.write('{}');
      seen = temporaries(out);
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(new RegExp(`^\\.r\\.json\\.${process.pid}\\.[0-9a-f]{12}\\.tmp$`));
    expect(temporaries(out)).toEqual([]);
  });

  it('a write that fails with ENOSPC (injected) is NEUROCLUSTER_ERR_IO and removes its temporary', async () => {
    const out = join(dir, 'injected');
    mkdirSync(out);
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const e = await failure(
      writeStreamAtomic(join(out, 'r.json'), engineFilesOf(), async (file) => {
        await file.write('partial');
        throw enospc;
      }),
    );
    expect(e.code).toBe('NEUROCLUSTER_ERR_IO');
    expect(e.exitCode).toBe(1);
    expect(e.message).toMatch(/the disk is full/);
    expect(readdirSync(out)).toEqual([]);
  });

  it('of dead processes are removed; a live process, a recent one and this process in flight keep theirs', () => {
    const where = join(dir, 'stale');
    mkdirSync(where);
    const old = STALE_TEMPORARY_MS + 60_000;
    const dead = leaveTemporary(where, 'ids.csv', deadPid(), old);
    const live = leaveTemporary(where, 'ids.csv', process.ppid, old);
    const recent = leaveTemporary(where, 'ids.csv', deadPid(), 1000);
    const other = leaveTemporary(where, 'other.csv', deadPid(), old);
    // Only the temporaries of the named target go.
    expect(removeStaleTemporaries(where, 'ids.csv')).toEqual([dead]);
    expect([existsSync(live), existsSync(recent), existsSync(other)]).toEqual([true, true, true]);
    expect(removeStaleTemporaries(where)).toEqual([other]);
  });

  it('an output written again removes the temporaries an earlier, killed write of it left', async () => {
    const where = join(dir, 'again');
    mkdirSync(where);
    const dead = leaveTemporary(where, 'labels.csv', deadPid(), STALE_TEMPORARY_MS + 1000);
    await writeFileAtomic(join(where, 'labels.csv'), 'label\n0\n', { engine: engineFilesOf() });
    expect(existsSync(dead)).toBe(false);
    expect(readdirSync(where)).toEqual(['labels.csv']);
  });

  it('a state file that cannot be written leaves no temporary and throws what the disk said', () => {
    const where = join(dir, 'state-fail');
    mkdirSync(where);
    // A directory where the file should be: the rename fails after the temporary is written.
    mkdirSync(join(where, 'breakers.json'));
    expect(() => writeStateFileSync(join(where, 'breakers.json'), '{}')).toThrow();
    expect(temporaries(where)).toEqual([]);
  });
});

describe('a full disk is NEUROCLUSTER_ERR_IO', () => {
  it.each([
    ['ENOSPC', 'the disk is full'],
    ['EDQUOT', 'the disk quota is exceeded'],
    ['EROFS', 'the file system is read-only'],
    ['SQLITE_FULL', 'the disk is full'],
    ['SQLITE_IOERR_WRITE', 'the store could not be written'],
  ])('%s', (code, says) => {
    const e = toNeuroclusterError(Object.assign(new Error(`${code}: something`), { code }));
    expect(e.code).toBe('NEUROCLUSTER_ERR_IO');
    expect(e.exitCode).toBe(1);
    expect(e.message).toContain(says);
  });

  it('SQLite messages without their code', () => {
    expect(toNeuroclusterError(new Error('disk I/O error')).code).toBe('NEUROCLUSTER_ERR_IO');
    expect(toNeuroclusterError(new Error('database or disk is full')).code).toBe('NEUROCLUSTER_ERR_IO');
    expect(toNeuroclusterError(new Error('something else')).code).toBe('NEUROCLUSTER_ERR_INTERNAL');
  });
});

describe('staged writes', () => {
  it('appear only on commit; a discard leaves the target as it was and no temporary', async () => {
    const where = join(dir, 'staged');
    mkdirSync(where);
    const target = join(where, 'r.json');
    writeFileSync(target, 'before');
    const kept = new StagedWrites();
    await kept.run(() => writeFileAtomic(target, 'after', { engine: engineFilesOf() }));
    expect(readFileSync(target, 'utf8')).toBe('before');
    await kept.commit();
    expect(readFileSync(target, 'utf8')).toBe('after');

    const dropped = new StagedWrites();
    await dropped.run(async () => {
      await writeFileAtomic(target, 'never', { engine: engineFilesOf() });
      await writeStreamAtomic(
        join(where, 'm.bin'),
        engineFilesOf(),
        async (f) => void (await f.write('never')),
      );
    });
    expect(temporaries(where)).toHaveLength(2);
    await dropped.discard();
    expect(readFileSync(target, 'utf8')).toBe('after');
    expect(readdirSync(where).sort()).toEqual(['r.json']);
  });
});

describe("outputs never land on the engine's own files", () => {
  const home = join(dir, 'home');
  const env = { NEUROCLUSTER_HOME: home };
  beforeAll(() => {
    mkdirSync(join(home, 'keys'), { recursive: true });
    mkdirSync(join(home, 'audit'));
    mkdirSync(join(home, 'models'));
    writeFileSync(join(home, 'keys', 'keyring.json'), '{}');
    writeFileSync(join(home, 'neurocluster.db'), '');
    symlinkSync(join(home, 'keys'), join(dir, 'to-keys'));
    symlinkSync(join(home, 'keys', 'keyring.json'), join(dir, 'to-keyring'));
    symlinkSync(home, join(dir, 'home-link'));
  });
  const refused = (path: string, e: NodeJS.ProcessEnv = env) => {
    try {
      assertNotEngineFile(path, engineFilesOf(e));
      return undefined;
    } catch (error) {
      return (error as { code: string }).code;
    }
  };

  it.each([
    ['the keyring', () => join(home, 'keys', 'keyring.json')],
    ['a new file in keys/', () => join(home, 'keys', 'new.json')],
    ['keys/ itself', () => join(home, 'keys')],
    ['the audit log', () => join(home, 'audit', 'audit.jsonl')],
    ['the store', () => join(home, 'neurocluster.db')],
    ['its WAL', () => join(home, 'neurocluster.db-wal')],
    ['its shared memory', () => join(home, 'neurocluster.db-shm')],
    ['through ..', () => join(home, 'models', '..', 'keys', 'keyring.json')],
    ['through a link to keys/', () => join(dir, 'to-keys', 'keyring.json')],
    ['a link to the keyring', () => join(dir, 'to-keyring')],
    ['through a link to the home', () => join(dir, 'home-link', 'audit', 'audit.jsonl')],
  ])('refuses %s', (_what, path) => {
    expect(refused(path())).toBe('NEUROCLUSTER_ERR_SECURITY_PATH');
  });

  it('refuses when the home is named through a link and the target by its real path', () => {
    expect(refused(join(home, 'keys', 'keyring.json'), { NEUROCLUSTER_HOME: join(dir, 'home-link') })).toBe(
      'NEUROCLUSTER_ERR_SECURITY_PATH',
    );
  });

  it('refuses a keyring named by NEUROCLUSTER_KEYRING, wherever it is', () => {
    const keyring = join(dir, 'elsewhere-keyring.json');
    expect(refused(keyring, { ...env, NEUROCLUSTER_KEYRING: keyring })).toBe(
      'NEUROCLUSTER_ERR_SECURITY_PATH',
    );
  });

  it('takes anything else: the home itself, models/, a hard link is replaced, not written through', async () => {
    expect(refused(join(home, 'models', 'm.json'))).toBeUndefined();
    expect(refused(join(home, 'result.json'))).toBeUndefined();
    expect(refused(join(dir, 'keys-not-really', 'x'))).toBeUndefined();
    // A hard link to the keyring cannot be told by path; the rename replaces the link, and the
    // keyring keeps its bytes.
    linkSync(join(home, 'keys', 'keyring.json'), join(dir, 'hard'));
    await writeFileAtomic(join(dir, 'hard'), 'output', { engine: engineFilesOf(env) });
    expect(readFileSync(join(home, 'keys', 'keyring.json'), 'utf8')).toBe('{}');
  });

  it('the writers check it themselves', async () => {
    const engine = engineFilesOf(env);
    const e = await failure(writeFileAtomic(join(dir, 'to-keys', 'keyring.json'), 'x', { engine }));
    expect(e.code).toBe('NEUROCLUSTER_ERR_SECURITY_PATH');
    const s = await failure(writeStreamAtomic(join(home, 'audit', 'audit.jsonl'), engine, async () => {}));
    expect(s.code).toBe('NEUROCLUSTER_ERR_SECURITY_PATH');
    expect(readFileSync(join(home, 'keys', 'keyring.json'), 'utf8')).toBe('{}');
    expect(temporaries(join(home, 'keys'))).toEqual([]);
  });
});

describe('engine state that cannot be written never decides the answer', () => {
  const saved = process.env.NEUROCLUSTER_HOME;
  afterEach(() => {
    process.env.NEUROCLUSTER_HOME = saved;
    vi.restoreAllMocks();
  });

  it('breakers.json failing with ENOSPC (injected): a warning, no fallback', async () => {
    process.env.NEUROCLUSTER_HOME = join(dir, 'home-injected');
    vi.spyOn(BreakerBook.prototype, 'save').mockImplementation(() => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    });
    const { lines, logger } = warnings();
    const clusterer = new NeuromorphicClusterer({
      config: { engine: { method: 'esn', backend: 'js', seed: 1 }, kmeans: { nClusters: 3 } },
      logger,
    });
    const result = await clusterer.fit(IRIS);
    expect(result.fallback).toBeUndefined();
    expect(result.method).toBe('esn');
    expect(lines.some((l) => l.includes('circuit breaker state could not be saved'))).toBe(true);
  });
});

describe.skipIf(!mountTmpfs.available)('on a full tmpfs', () => {
  const mount = join(dir, 'tmpfs');
  const saved = process.env.NEUROCLUSTER_HOME;
  beforeAll(() => mountTmpfs(mount, '512k'));
  afterAll(() => {
    process.env.NEUROCLUSTER_HOME = saved;
    mountTmpfs.unmount(mount);
  });

  it('an output is NEUROCLUSTER_ERR_IO "the disk is full", and no temporary stays', async () => {
    const out = join(mount, 'out');
    mkdirSync(out);
    const fill = fillDisk(mount);
    try {
      const e = await failure(
        writeFileAtomic(join(out, 'r.json'), 'x'.repeat(64 * 1024), { engine: engineFilesOf() }),
      );
      expect(e.code).toBe('NEUROCLUSTER_ERR_IO');
      expect(e.message).toMatch(/the disk is full/);
      expect(readdirSync(out)).toEqual([]);
    } finally {
      fill.release();
    }
  });

  it('a home with no room: the fit answers from the neuromorphic path, the state writes warn, no temporaries', async () => {
    const home = join(mount, 'home');
    mkdirSync(join(home, 'state'), { recursive: true });
    process.env.NEUROCLUSTER_HOME = home;
    const fill = fillDisk(mount);
    try {
      const { lines, logger } = warnings();
      const clusterer = new NeuromorphicClusterer({
        config: { engine: { method: 'esn', backend: 'js', seed: 1 }, kmeans: { nClusters: 3 } },
        logger,
      });
      const result = await clusterer.fit(IRIS);
      expect(result.fallback).toBeUndefined();
      expect(lines.some((l) => l.includes('circuit breaker state could not be saved'))).toBe(true);
      expect(lines.some((l) => l.includes('performance baseline could not be updated'))).toBe(true);
      expect(readdirSync(join(home, 'state'))).toEqual([]);
    } finally {
      fill.release();
    }
  });
});
