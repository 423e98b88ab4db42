/**
 * The command line holds every file it reads to the running configuration (issue 18, items 1, 2,
 * 3 and 10): `predict` applies the configured data roots whatever the model file stored, `score
 * --labels` is held to them too, a FIFO never blocks a command, and a plain model with a recomputed
 * SHA-256 where an encrypted one stood is refused unless --allow-unauthenticated-model is given.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decryptBuffer } from '../../src/security/envelope.js';
import { Keyring } from '../../src/security/keyring.js';
import { checksumOf, MODEL_FORMAT, MODEL_VERSION } from '../../src/security/model-file.js';
import { ERROR_LINE, ROOT, runCli, tempDir } from '../helpers.js';

const dir = tempDir();
const HOME = join(dir, 'home');
const IRIS = join(ROOT, 'examples/iris.csv');

function cli(args: string[], env: Record<string, string> = {}) {
  return runCli(args, { home: HOME, env, timeout: 20_000 });
}

/** A data root holding a copy of iris, a directory outside it holding another, and a config file. */
function layout() {
  const root = join(dir, 'root');
  const outside = join(dir, 'outside');
  mkdirSync(root, { recursive: true });
  mkdirSync(outside, { recursive: true });
  copyFileSync(IRIS, join(root, 'iris.csv'));
  copyFileSync(IRIS, join(outside, 'iris.csv'));
  const config = join(dir, 'roots.json');
  writeFileSync(config, JSON.stringify({ security: { dataRoots: [root] } }));
  return { root, outside, config };
}

describe('predict and the data roots', () => {
  it('refuses a file outside the configured roots, as score does, whatever the model stored', () => {
    const { root, outside, config } = layout();
    const model = join(dir, 'fit-without-roots.model.json');
    // Fitted with no data roots: the model file stores security.dataRoots = [].
    expect(cli(['cluster', IRIS, '--k', '3', '--label-column', 'species', '--save-model', model]).code).toBe(
      0,
    );
    const inside = cli([
      'predict',
      join(root, 'iris.csv'),
      '--model',
      model,
      '--label-column',
      'species',
      '--config',
      config,
      '--json',
    ]);
    expect(inside.code).toBe(0);
    for (const args of [
      ['predict', join(outside, 'iris.csv'), '--model', model, '--label-column', 'species'],
      ['score', join(outside, 'iris.csv'), '--labels', join(root, 'iris.csv'), '--label-column', 'species'],
    ]) {
      const r = cli([...args, '--config', config, '--json']);
      expect(r.code, args[0]).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(ERROR_LINE);
      expect(r.stderr).toMatch(/NEUROCLUSTER_ERR_SECURITY_PATH: .* is outside the data roots/);
    }
  });
});

describe('score --labels', () => {
  it('is held to the data roots like the data file', () => {
    const { root, outside, config } = layout();
    const labels =
      'species\n' +
      readFileSync(IRIS, 'utf8')
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(',').at(-1))
        .join('\n');
    writeFileSync(join(root, 'labels.csv'), `${labels}\n`);
    writeFileSync(join(outside, 'labels.csv'), `${labels}\n`);
    const ok = cli([
      'score',
      join(root, 'iris.csv'),
      '--labels',
      join(root, 'labels.csv'),
      '--label-column',
      'species',
      '--config',
      config,
      '--json',
    ]);
    expect(ok.code).toBe(0);
    const r = cli([
      'score',
      join(root, 'iris.csv'),
      '--labels',
      join(outside, 'labels.csv'),
      '--label-column',
      'species',
      '--config',
      config,
      '--json',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^neurocluster: NEUROCLUSTER_ERR_SECURITY_PATH: .*labels\.csv is outside the data roots/,
    );
  });
});

describe('inputs that are not regular files', () => {
  it('are NEUROCLUSTER_ERR_DATA_READ (exit 2) at once: data, labels and model FIFOs never block', () => {
    const fifo = join(dir, 'pipe.csv');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const model = join(dir, 'any.model.json');
    expect(cli(['cluster', IRIS, '--k', '3', '--label-column', 'species', '--save-model', model]).code).toBe(
      0,
    );
    for (const args of [
      ['cluster', fifo, '--k', '3'],
      ['predict', fifo, '--model', model],
      ['predict', IRIS, '--model', fifo, '--label-column', 'species'],
      ['score', IRIS, '--labels', fifo, '--label-column', 'species'],
      ['score', '/dev/null', '--labels', IRIS],
      ['cluster', dir, '--k', '3'],
    ]) {
      const r = cli([...args, '--json']);
      expect(r.signal, `${args.join(' ')} blocked`).toBeNull();
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(ERROR_LINE);
      expect(r.stderr, args.join(' ')).toMatch(
        /NEUROCLUSTER_ERR_(DATA_READ|MODEL_FILE): .*not a regular file/,
      );
    }
  }, 120_000);

  it('never block encrypt, decrypt, model restore or --config either', () => {
    const fifo = join(dir, 'pipe2.json');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const [args, code] of [
      [['encrypt', fifo, '--out', join(dir, 'never.enc')], /DATA_READ: .*not a regular file/],
      [['decrypt', fifo], /DATA_READ: .*not a regular file/],
      [['decrypt', fifo, '--out', join(dir, 'never.csv')], /DATA_READ: .*not a regular file/],
      [['model', 'restore', fifo, '--to', join(dir, 'never.model.json')], /DATA_READ: .*not a regular file/],
      [['cluster', IRIS, '--k', '3', '--config', fifo], /CONFIG: .*not a regular file/],
    ] as const) {
      const r = cli([...args]);
      expect(r.signal, `${args.join(' ')} blocked`).toBeNull();
      expect(r.stderr, args.join(' ')).toMatch(ERROR_LINE);
      expect(r.stderr, args.join(' ')).toMatch(code);
      expect(r.code, args.join(' ')).toBe(2);
    }
  }, 120_000);
});

describe('encrypt and the data roots', () => {
  it('refuses a source outside the roots and encrypts one inside', () => {
    const { root, outside, config } = layout();
    const refused = cli([
      'encrypt',
      join(outside, 'iris.csv'),
      '--out',
      join(dir, 'out.enc'),
      '--config',
      config,
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/NEUROCLUSTER_ERR_SECURITY_PATH: .* is outside the data roots/);
    const done = cli(['encrypt', join(root, 'iris.csv'), '--out', join(dir, 'in.enc'), '--config', config]);
    expect(done.code).toBe(0);
    const plain = cli(['decrypt', join(dir, 'in.enc')]);
    expect(plain.stdout).toBe(readFileSync(IRIS, 'utf8'));
  });
});

describe('a plain model where an encrypted one stood', () => {
  it('is refused (INTEGRITY, exit 1) unless --allow-unauthenticated-model is given', () => {
    const model = join(dir, 'sealed.model.json');
    const fit = cli([
      'cluster',
      IRIS,
      '--k',
      '3',
      '--label-column',
      'species',
      '--seed',
      '4',
      '--save-model',
      model,
      '--json',
    ]);
    expect(fit.code).toBe(0);
    const keyring = Keyring.open({ env: { NEUROCLUSTER_HOME: HOME } });
    const doc = JSON.parse(decryptBuffer(readFileSync(model), keyring).toString('utf8'));
    const { centroids, d } = doc.body as { centroids: number[]; d: number };
    const swapped = {
      ...doc.body,
      centroids: [...centroids.slice(d, 2 * d), ...centroids.slice(0, d), ...centroids.slice(2 * d)],
    };
    writeFileSync(
      model,
      JSON.stringify({
        format: MODEL_FORMAT,
        version: MODEL_VERSION,
        checksum: checksumOf(swapped),
        body: swapped,
      }),
    );
    const r = cli(['predict', IRIS, '--model', model, '--label-column', 'species', '--json']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^neurocluster: NEUROCLUSTER_ERR_INTEGRITY: .*not authenticated/);
    const allowed = cli([
      'predict',
      IRIS,
      '--model',
      model,
      '--label-column',
      'species',
      '--allow-unauthenticated-model',
      '--json',
    ]);
    expect(allowed.code).toBe(0);
    // The swap is what the opt-in lets through: labels of the first two clusters exchanged.
    const before = JSON.parse(fit.stdout).labels as number[];
    const after = JSON.parse(allowed.stdout).labels as number[];
    expect(after).toEqual(before.map((l) => (l === 0 ? 1 : l === 1 ? 0 : l)));
  });
});
