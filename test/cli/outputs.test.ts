/**
 * The CLI's outputs against the engine's own files, a full disk and kill -9 (issue 18, items 6 to
 * 8), on the real compiled command:
 * - every kind of output aimed at the home's keys/, audit/ or store (directly, through `..` or a
 *   symbolic link) is refused with NEUROCLUSTER_ERR_SECURITY_PATH and those files keep their bytes,
 *   before any privacy budget is charged;
 * - on a full home (a small tmpfs, where this process may mount one), at every free-space level a
 *   run either succeeds with its output audited or fails with NEUROCLUSTER_ERR_IO and writes
 *   nothing (`decrypt --out` too), and no temporary stays; a private run there is refused before it charges the budget;
 * - temporaries of processes killed mid-write are removed by the next command, a live process's
 *   are kept.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_LINE, ROOT, runCli, tempDir } from '../helpers.js';
import { fillDisk, mountTmpfs } from '../store/tmpfs.js';

const dir = tempDir();
const IRIS = join(ROOT, 'examples/iris.csv');

/** The environment of a command on `home`: its keyring is the home's. */
function envOf(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NEUROCLUSTER_HOME: home };
  delete env.NEUROCLUSTER_KEYRING;
  delete env.NEUROCLUSTER_KEYRING_JSON;
  return env;
}

function cli(home: string, args: string[]) {
  return runCli(args, {
    home,
    env: { NEUROCLUSTER_KEYRING: undefined, NEUROCLUSTER_KEYRING_JSON: undefined },
  });
}

/** Every file under `root` (recursively) with its bytes, to compare before and after. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out[p] = readFileSync(p).toString('base64');
    }
  };
  walk(root);
  return out;
}

/** Temporaries (`*.tmp`) anywhere under `root`. */
function temporariesUnder(root: string): string[] {
  return Object.keys(snapshot(root)).filter((p) => p.endsWith('.tmp'));
}

const KMEANS = ['--k', '3', '--method', 'kmeans', '--seed', '1', '--label-column', 'species'];

describe("outputs refused on the engine's own files", () => {
  const home = join(dir, 'home');
  const work = join(dir, 'work');
  const model = join(work, 'model.json');
  const encrypted = join(work, 'iris.enc');
  let backup = '';
  let recipient = '';
  beforeAll(async () => {
    mkdirSync(work, { recursive: true });
    // A home with its keyring, audit log and store, a model, an encrypted file and a backup.
    expect(cli(home, ['cluster', IRIS, ...KMEANS, '--save-model', model]).code).toBe(0);
    expect(cli(home, ['encrypt', IRIS, '--out', encrypted]).code).toBe(0);
    const b = cli(home, ['--json', 'model', 'backup', work, '--model', model]);
    expect(b.code).toBe(0);
    backup = JSON.parse(b.stdout).backup;
    recipient = await identityToRecipient(await generateIdentity());
    symlinkSync(join(home, 'keys'), join(work, 'keys-link'));
  });

  const keyring = () => join(home, 'keys', 'keyring.json');
  const auditLog = () => join(home, 'audit', 'audit.jsonl');
  const store = () => join(home, 'neurocluster.db');
  const cases: [string, () => string[]][] = [
    ['cluster --out the keyring', () => ['cluster', IRIS, ...KMEANS, '--out', keyring()]],
    ['cluster --labels-out the audit log', () => ['cluster', IRIS, ...KMEANS, '--labels-out', auditLog()]],
    ['cluster --plot the store', () => ['cluster', IRIS, ...KMEANS, '--plot', store()]],
    ['cluster --save-model its WAL', () => ['cluster', IRIS, ...KMEANS, '--save-model', `${store()}-wal`]],
    [
      'cluster --out through ..',
      () => ['cluster', IRIS, ...KMEANS, '--out', join(home, 'state', '..', 'keys', 'keyring.json')],
    ],
    [
      'cluster --out through a symbolic link',
      () => ['cluster', IRIS, ...KMEANS, '--out', join(work, 'keys-link', 'keyring.json')],
    ],
    ['predict --labels-out into keys/', () => ['predict', IRIS, '--model', model, '--labels-out', keyring()]],
    ['encrypt --out the keyring', () => ['encrypt', IRIS, '--out', keyring()]],
    ['decrypt --out the audit log', () => ['decrypt', encrypted, '--out', auditLog()]],
    ['model backup into keys/', () => ['model', 'backup', join(home, 'keys'), '--model', model]],
    ['model restore --to the keyring', () => ['model', 'restore', backup, '--to', keyring()]],
    [
      'model export --out into audit/',
      () => ['model', 'export', model, '--recipient', recipient, '--out', join(home, 'audit', 'm.age')],
    ],
  ];

  it.each(cases)('%s: NEUROCLUSTER_ERR_SECURITY_PATH, exit 2, nothing changed', (_what, args) => {
    const before = snapshot(join(home, 'keys'));
    const log = readFileSync(auditLog(), 'utf8');
    const r = cli(home, args());
    expect(r.stderr).toMatch(ERROR_LINE);
    expect(r.stderr).toContain('NEUROCLUSTER_ERR_SECURITY_PATH');
    expect(r.code).toBe(2);
    expect(snapshot(join(home, 'keys'))).toEqual(before);
    // The audit log only grew (the refusal's own record), it was not replaced.
    expect(readFileSync(auditLog(), 'utf8').startsWith(log)).toBe(true);
    expect(existsSync(join(home, 'audit', 'm.age'))).toBe(false);
    expect(temporariesUnder(home)).toEqual([]);
  });

  it('--metrics-out onto the keyring: refused with a warning, the keyring kept', () => {
    const before = readFileSync(keyring(), 'utf8');
    const r = cli(home, ['--metrics-out', keyring(), 'privacy', 'status']);
    expect(r.stderr).toContain('could not write');
    expect(r.stderr).toContain("one of the engine's own files");
    expect(readFileSync(keyring(), 'utf8')).toBe(before);
  });

  it('a refused output is refused before the fit: no privacy budget is charged', () => {
    const r = cli(home, [
      'cluster',
      IRIS,
      ...KMEANS,
      '--epsilon',
      '1',
      '--bounds',
      '0:10',
      '--dataset',
      'refused',
      '--out',
      keyring(),
    ]);
    expect(r.code).toBe(2);
    const status = cli(home, ['--json', 'privacy', 'status', '--dataset', 'refused']);
    expect(JSON.parse(status.stdout).spent ?? 0).toBe(0);
  });

  it('the audit log still verifies', () => {
    const r = cli(home, ['audit', 'verify']);
    expect(r.stdout).toContain('intact');
    expect(r.code).toBe(0);
  });
});

describe('temporaries of killed processes', () => {
  const home = join(dir, 'home-kill');
  const out = join(dir, 'out-kill');
  let sleeper: ChildProcess;
  beforeAll(() => {
    mkdirSync(out, { recursive: true });
    sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  });
  afterAll(() => {
    sleeper.kill('SIGKILL');
  });

  /** Backdated past the grace that protects a temporary being written by another PID namespace. */
  const age = (path: string) => {
    const t = Date.now() / 1000 - 3600;
    utimesSync(path, t, t);
  };

  /** A child that writes `target` through the engine's streaming writer, and is killed mid-write. */
  async function killedMidWrite(target: string): Promise<{ pid: number; temporary: string }> {
    const script = `
      import { writeStreamAtomic } from ${JSON.stringify(join(ROOT, 'dist/src/core/atomic.js'))};
      import { engineFilesOf } from ${JSON.stringify(join(ROOT, 'dist/src/config/home.js'))};
      await writeStreamAtomic(${JSON.stringify(target)}, engineFilesOf(), async (file) => {
        await file.write(Buffer.alloc(1 << 20, 7));
        process.stdout.write('writing\\n');
        await new Promise(() => setInterval(() => {}, 1000));
      });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: envOf(home),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const dirOf = join(target, '..');
    const temporary = readdirSync(dirOf).find((f) => f.includes(`.${child.pid}.`))!;
    expect(temporary).toMatch(/^\..+\.\d+\.[0-9a-f]{12}\.tmp$/);
    return { pid: child.pid!, temporary: join(dirOf, temporary) };
  }

  it("the next command removes those in the home's directories; a live process's stay", async () => {
    mkdirSync(join(home, 'state'), { recursive: true });
    const killed = await killedMidWrite(join(home, 'state', 'big.bin'));
    expect(readFileSync(killed.temporary).length).toBe(1 << 20);
    age(killed.temporary);
    const live = join(home, 'state', `.other.bin.${sleeper.pid}.0123456789ab.tmp`);
    writeFileSync(live, 'in progress');
    age(live);
    // What versions before this one left: `<name>.<pid>.tmp`, empty (a full disk).
    const legacy = join(home, 'state', 'baselines.json.999999999.tmp');
    writeFileSync(legacy, '');
    age(legacy);

    const r = cli(home, ['keys', 'list']);
    expect(r.code).toBe(0);
    expect(existsSync(killed.temporary)).toBe(false);
    expect(existsSync(legacy)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });

  it('next to an output: an output written again removes its killed temporary ("ids" of --labels-out)', async () => {
    const labels = join(out, 'labels.csv');
    const killed = await killedMidWrite(labels);
    age(killed.temporary);
    const r = cli(home, ['cluster', IRIS, ...KMEANS, '--labels-out', labels]);
    expect(r.code).toBe(0);
    expect(readdirSync(out)).toEqual(['labels.csv']);
  });

  it('next to an encrypted file: keys rotate removes the re-wrap a killed rotation left', async () => {
    const enc = join(out, 'iris.enc');
    expect(cli(home, ['encrypt', IRIS, '--out', enc]).code).toBe(0);
    const killed = await killedMidWrite(enc);
    age(killed.temporary);
    const r = cli(home, ['keys', 'rotate']);
    expect(r.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['iris.enc', 'labels.csv']);
  });
});

describe.skipIf(!mountTmpfs.available)('a full home (a small tmpfs)', () => {
  const mount = join(dir, 'full');
  const home = join(mount, 'home');
  const out = join(dir, 'out-full');
  beforeAll(() => {
    mountTmpfs(mount, '4m');
    mkdirSync(out, { recursive: true });
    // The home made while there is room: keyring, store, audit log; and an encrypted file.
    expect(cli(home, ['cluster', IRIS, ...KMEANS]).code).toBe(0);
    expect(cli(home, ['encrypt', IRIS, '--out', join(dir, 'iris-full.enc')]).code).toBe(0);
  });
  afterAll(() => mountTmpfs.unmount(mount));

  it('at every free-space level: exit 0 with the output audited, or NEUROCLUSTER_ERR_IO with nothing written', () => {
    const outcomes: string[] = [];
    for (const kib of [0, 4, 8, 12, 16, 24, 32, 48, 64, 96]) {
      const fill = fillDisk(mount);
      try {
        // Free `kib` KiB again: what the run has to work with.
        if (kib > 0) {
          const path = join(mount, '.fill');
          const bytes = readFileSync(path);
          writeFileSync(path, bytes.subarray(0, Math.max(0, bytes.length - kib * 1024)));
        }
        const result = join(out, `r-${kib}.json`);
        const plain = join(out, `d-${kib}.csv`);
        const d = cli(home, ['decrypt', join(dir, 'iris-full.enc'), '--out', plain]);
        expect(
          d.code === 0 ? existsSync(plain) : !existsSync(plain) && d.stderr.includes('NEUROCLUSTER_ERR_IO'),
        ).toBe(true);
        const r = cli(home, ['cluster', IRIS, ...KMEANS, '--out', result]);
        if (r.code === 0) {
          outcomes.push(`${kib}: ok`);
          expect(existsSync(result)).toBe(true);
        } else {
          outcomes.push(`${kib}: ${r.stderr.match(/NEUROCLUSTER_ERR_[A-Z_]+/)?.[0]}`);
          // The error is the last line; the state writes that failed before it are warnings.
          expect(`${r.stderr.trimEnd().split('\n').at(-1)}\n`).toMatch(ERROR_LINE);
          expect(r.stderr).toContain('NEUROCLUSTER_ERR_IO');
          expect(r.code).toBe(1);
          // Not written: its audit record could not be.
          expect(existsSync(result)).toBe(false);
        }
        expect(temporariesUnder(out)).toEqual([]);
        expect(temporariesUnder(home)).toEqual([]);
      } finally {
        fill.release();
      }
    }
    // Every output there has its record in the audit log.
    const log = readFileSync(join(home, 'audit', 'audit.jsonl'), 'utf8');
    for (const f of readdirSync(out)) expect(log).toContain(join(out, f));
    // Some level failed (the test reached a full disk) and some succeeded.
    expect(outcomes.some((o) => o.endsWith('NEUROCLUSTER_ERR_IO'))).toBe(true);
    expect(outcomes.some((o) => o.endsWith('ok'))).toBe(true);
  });

  it('a private run on a home without room is refused before it charges the budget; with room it is charged', () => {
    const dp = ['--epsilon', '0.5', '--bounds', '0:10', '--dataset', 'full'];
    const spent = () =>
      JSON.parse(cli(home, ['--json', 'privacy', 'status', '--dataset', 'full']).stdout).spent;
    for (const kib of [0, 64, 512]) {
      const fill = fillDisk(mount);
      try {
        const path = join(mount, '.fill');
        const bytes = readFileSync(path);
        writeFileSync(path, bytes.subarray(0, Math.max(0, bytes.length - kib * 1024)));
        const result = join(out, `dp-${kib}.json`);
        const r = cli(home, ['cluster', IRIS, ...KMEANS, ...dp, '--out', result]);
        expect(r.stderr).toContain('NEUROCLUSTER_ERR_IO');
        expect(r.code).toBe(1);
        expect(existsSync(result)).toBe(false);
      } finally {
        fill.release();
      }
      expect(spent()).toBe(0);
    }
    expect(cli(home, ['cluster', IRIS, ...KMEANS, ...dp, '--out', join(out, 'dp.json')]).code).toBe(0);
    expect(spent()).toBeCloseTo(0.5, 9);
  });
});
