/**
 * The command-line contract, checked on the real compiled command in a child process: stdout
 * holds exactly one JSON line with --json, errors are one line on stderr with a stable code,
 * exit status 0 / 2 / 1, and no partial output file is left behind.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isEncrypted } from '../../src/security/envelope.js';
import { Keyring } from '../../src/security/keyring.js';
import { CLI, ERROR_LINE, ROOT, relErr, runCli, skipUnlessRequired, sklearn, tempDir } from '../helpers.js';

const dir = tempDir();
const IRIS = join(ROOT, 'examples/iris.csv');
const EMPLOYEES = join(ROOT, 'examples/employees-synthetic.csv');
const hasReference =
  existsSync(join(ROOT, '../shared/reference/reference.py')) &&
  spawnSync('/usr/bin/python3', ['-c', 'import sklearn'], { stdio: 'ignore' }).status === 0;

function cli(args: string[], env: Record<string, string> = {}) {
  return runCli(args, { home: join(dir, 'home'), env });
}

function file(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** The records of the audit log of a NEUROCLUSTER_HOME, parsed. */
function auditRecords(home: string) {
  return readFileSync(join(home, 'audit', 'audit.jsonl'), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
}

describe('neurocluster cluster', () => {
  it('prints exactly one JSON line on stdout with --json, with the contract fields', () => {
    const r = cli([
      'cluster',
      IRIS,
      '--k',
      '3',
      '--method',
      'kmeans',
      '--seed',
      '1',
      '--label-column',
      'species',
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toHaveLength(2);
    expect(r.stdout.endsWith('\n')).toBe(true);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out)).toEqual(
      expect.arrayContaining([
        'labels',
        'k',
        'method',
        'backend',
        'fallbackUsed',
        'quality',
        'inputQuality',
        'external',
        'timings',
        'seed',
      ]),
    );
    expect(out.labels).toHaveLength(150);
    expect(out).toMatchObject({ k: 3, method: 'kmeans', backend: 'js', fallbackUsed: false, seed: 1 });
    expect(Object.keys(out.quality).sort()).toEqual([
      'calinskiHarabasz',
      'daviesBouldin',
      'inertia',
      'silhouette',
    ]);
    expect(out.external.ari).toBeCloseTo(0.6201, 3);
    const iris = sklearn.kmeans.find((c) => c.name === 'iris')!;
    expect(relErr(out.quality.inertia, iris.inertia)).toBeLessThan(0.02);
  });

  it('gives the same labels for the same seed in separate processes', () => {
    const a = JSON.parse(cli(['cluster', EMPLOYEES, '--k', '4', '--seed', '9', '--json']).stdout);
    const b = JSON.parse(cli(['cluster', EMPLOYEES, '--k', '4', '--seed', '9', '--json']).stdout);
    expect(a.labels).toEqual(b.labels);
  });

  it('writes the result JSON, labels CSV with ids, SVG plot and model file', () => {
    const out = join(dir, 'emp.json');
    const labels = join(dir, 'emp.labels.csv');
    const plot = join(dir, 'emp.svg');
    const model = join(dir, 'emp.model.json');
    const args = ['cluster', EMPLOYEES, '--k', '4', '--id-column', 'employee_id', '--out', out];
    const r = cli([...args, '--labels-out', labels, '--plot', plot, '--save-model', model, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(JSON.parse(r.stdout));
    const lines = readFileSync(labels, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('id,label');
    expect(lines).toHaveLength(401);
    expect(lines[1]).toMatch(/^E0001,[0-3]$/);
    const svg = readFileSync(plot, 'utf8');
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg.match(/<circle /g)!.length).toBe(400 + 4);
    expect(svg).toContain('PC1');
    // Encrypted at rest (security.encryptModels, on by default).
    expect(isEncrypted(readFileSync(model))).toBe(true);
    expect(JSON.parse(r.stdout).ids[0]).toBe('E0001');
  });

  it('prints a summary table without --json', () => {
    const r = cli([
      'cluster',
      IRIS,
      '--k',
      '3',
      '--method',
      'kmeans',
      '--seed',
      '1',
      '--label-column',
      'species',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/silhouette\s+0\.4599/);
    expect(r.stdout).toMatch(/ARI\s+0\.620/);
    expect(r.stderr).toBe('');
  });

  it('reads the configuration file, and flags override it', () => {
    const config = file('c.yaml', 'kmeans:\n  nClusters: 2\n  nInit: 1\nengine:\n  seed: 5\n');
    const fromFile = JSON.parse(cli(['cluster', IRIS, '--config', config, '--json']).stdout);
    expect(fromFile).toMatchObject({ k: 2, seed: 5 });
    const flagged = JSON.parse(cli(['cluster', IRIS, '--config', config, '--k', '4', '--json']).stdout);
    expect(flagged).toMatchObject({ k: 4, seed: 5 });
  });

  it('reads $NEUROCLUSTER_HOME/config.yaml when no --config is given', () => {
    const home = join(dir, 'home-with-config');
    mkdirSync(home, { recursive: true });
    file('home-with-config/config.yaml', 'kmeans:\n  nClusters: 5\n');
    const r = cli(['cluster', IRIS, '--json'], { NEUROCLUSTER_HOME: home });
    expect(JSON.parse(r.stdout).k).toBe(5);
  });

  it('keeps the config file standardize setting unless --no-standardize is given', () => {
    const config = file(
      'nostd.json',
      JSON.stringify({ data: { standardize: false }, kmeans: { nClusters: 3 } }),
    );
    const raw = JSON.parse(cli(['cluster', IRIS, '--config', config, '--json']).stdout);
    const std = JSON.parse(cli(['cluster', IRIS, '--k', '3', '--json']).stdout);
    const flag = JSON.parse(cli(['cluster', IRIS, '--k', '3', '--no-standardize', '--json']).stdout);
    expect(raw.quality.inertia).not.toBeCloseTo(std.quality.inertia, 3);
    expect(flag.quality.inertia).toBeCloseTo(raw.quality.inertia, 9);
  });

  it('reports dropped rows under --nan-policy drop-rows', () => {
    const path = file('nan.csv', 'a,b\n1,2\n2,NaN\n3,1\n8,9\n9,8\n');
    const out = JSON.parse(cli(['cluster', path, '--k', '2', '--nan-policy', 'drop-rows', '--json']).stdout);
    expect(out.droppedRows).toEqual([1]);
    expect(out.labels).toHaveLength(4);
  });
});

describe('bad input: one line on stderr, exit 2, nothing on stdout, no output file', () => {
  const cases: [string, string | Uint8Array, string[], RegExp][] = [
    ['an empty file', '', [], /NEUROCLUSTER_ERR_DATA_FORMAT: the file is empty/],
    ['a header only', 'a,b\n', [], /NEUROCLUSTER_ERR_DATA_FORMAT: no data rows/],
    ['ragged rows', 'a,b\n1,2\n3\n', [], /NEUROCLUSTER_ERR_DATA_FORMAT: ragged row.*\(.*bad\.csv:3\)/],
    ['unbalanced quotes', 'a,b\n1,"2\n3,4\n', [], /NEUROCLUSTER_ERR_DATA_FORMAT: unbalanced quotes/],
    ['binary bytes', new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x0a]), [], /binary data/],
    ['non-UTF-8 bytes', new Uint8Array([0x61, 0x0a, 0xff, 0xfe, 0x0a]), [], /not valid UTF-8/],
    [
      'a non-numeric cell',
      'a,b\n1,2\n3,x\n4,5\n',
      [],
      /NEUROCLUSTER_ERR_DATA_VALUE: non-numeric value "x" .*\(.*bad\.csv:3:b\)$/m,
    ],
    [
      'a NaN cell',
      'a,b\n1,2\n3,NaN\n4,5\n',
      [],
      /NEUROCLUSTER_ERR_DATA_VALUE: missing or NaN value .*bad\.csv:3:b/,
    ],
    ['an Inf cell', 'a,b\n1,2\n3,-inf\n4,5\n', [], /NEUROCLUSTER_ERR_DATA_VALUE: infinite value/],
    ['k < 1', 'a,b\n1,2\n3,4\n', ['--k', '0'], /NEUROCLUSTER_ERR_CONFIG: .*kmeans\.nClusters/],
    [
      'k > rows',
      'a,b\n1,2\n3,4\n',
      ['--k', '3'],
      /NEUROCLUSTER_ERR_INVALID_ARGUMENT: k = 3 is larger than the number of rows \(2\)/,
    ],
    ['fewer than 2 rows', 'a,b\n1,2\n', ['--k', '1'], /NEUROCLUSTER_ERR_DATA_SHAPE: at least 2 rows/],
    [
      'a series length that does not divide',
      'a,b,c\n1,2,3\n4,5,6\n',
      ['--k', '2', '--series-length', '2'],
      /NEUROCLUSTER_ERR_DATA_SHAPE: series length 2 does not divide/,
    ],
    [
      'a non-integer k',
      'a,b\n1,2\n3,4\n',
      ['--k', 'abc'],
      /NEUROCLUSTER_ERR_USAGE: .*"abc" is not an integer/,
    ],
    [
      'an unknown option',
      'a,b\n1,2\n3,4\n',
      ['--colour', 'red'],
      /NEUROCLUSTER_ERR_USAGE: unknown option '--colour'/,
    ],
    [
      'a bad backend name',
      'a,b\n1,2\n3,4\n',
      ['--backend', 'cuda'],
      /NEUROCLUSTER_ERR_USAGE: .*cuda.*Allowed choices/,
    ],
    [
      '--k without a value',
      'a,b\n1,2\n3,4\n',
      ['--k'],
      /NEUROCLUSTER_ERR_USAGE: option '--k <n>' argument '--out' is invalid/,
    ],
  ];
  it.each(cases)('%s', (_t, content, flags, expected) => {
    const input = file('bad.csv', content);
    const out = join(dir, 'never.json');
    const r = cli(['cluster', input, ...(flags.length ? flags : ['--k', '2']), '--out', out, '--json']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(ERROR_LINE);
    expect(r.stderr).toMatch(expected);
    expect(existsSync(out)).toBe(false);
  });

  it('no k at all', () => {
    const r = cli(['cluster', IRIS]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^neurocluster: NEUROCLUSTER_ERR_INVALID_ARGUMENT: the number of clusters is required/,
    );
  });

  it('malformed JSON', () => {
    const r = cli(['cluster', file('bad.json', '[[1, 2], [3'), '--k', '2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^neurocluster: NEUROCLUSTER_ERR_DATA_FORMAT: malformed JSON/);
  });

  it('an invalid configuration file names the key', () => {
    const config = file('bad-config.json', JSON.stringify({ kmeans: { nInit: -1 }, colour: 1 }));
    const r = cli(['cluster', IRIS, '--k', '3', '--config', config]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(ERROR_LINE);
    expect(r.stderr).toMatch(/NEUROCLUSTER_ERR_CONFIG: .*kmeans\.nInit: .*colour/);
  });

  it('shows the stack only under --verbose', () => {
    const input = file('bad.csv', 'a,b\n1,2\n3,x\n');
    expect(cli(['cluster', input, '--k', '2']).stderr).not.toMatch(/\n\s+at /);
    expect(cli(['cluster', input, '--k', '2', '--verbose']).stderr).toMatch(/\n\s+at /);
  });
});

describe('backend selection', () => {
  it('an explicit backend that cannot start fails with BACKEND_UNAVAILABLE and exit 1', () => {
    // No Vulkan driver: the WebGPU adapter request finds nothing.
    const r = cli(
      ['cluster', IRIS, '--k', '3', '--label-column', 'species', '--backend', 'webgpu', '--json'],
      { VK_ICD_FILENAMES: join(dir, 'no-such-driver.json') },
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    // (The Vulkan loader may print its own warnings first: native code, not ours.)
    expect(r.stderr).toMatch(
      /^neurocluster: NEUROCLUSTER_ERR_BACKEND_UNAVAILABLE: backend "webgpu" failed to start: no WebGPU adapter/m,
    );
  });

  it('--gpu-adapter picks the adapter by part of its name, in any case; an unknown name lists those there', (ctx) => {
    const probe = cli(['cluster', IRIS, '--k', '3', '--method', 'kmeans', '--backend', 'webgpu', '--json']);
    if (probe.code !== 0) skipUnlessRequired(ctx.skip, new Error(probe.stderr));
    const adapter = cli([
      'cluster',
      IRIS,
      '--k',
      '3',
      '--backend',
      'webgpu',
      '--gpu-adapter',
      'swiftSHADER',
      '--json',
    ]);
    expect(JSON.parse(adapter.stdout).backend).toBe('webgpu');
    const unknown = cli(['cluster', IRIS, '--k', '3', '--backend', 'webgpu', '--gpu-adapter', 'no-such-gpu']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no WebGPU adapter named like "no-such-gpu" \(adapters here: SwiftShader/);
  });

  it('auto names the backend that ran', () => {
    expect(JSON.parse(cli(['cluster', IRIS, '--k', '3', '--backend', 'auto', '--json']).stdout).backend).toBe(
      'js',
    );
  });
});

describe('neurocluster predict', () => {
  const model = join(dir, 'iris.model.json');

  it('labels new rows with a saved model exactly as cluster labelled them', () => {
    const fit = cli([
      'cluster',
      IRIS,
      '--k',
      '3',
      '--label-column',
      'species',
      '--save-model',
      model,
      '--json',
    ]);
    const labelsOut = join(dir, 'predicted.csv');
    const r = cli([
      'predict',
      IRIS,
      '--model',
      model,
      '--label-column',
      'species',
      '--labels-out',
      labelsOut,
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toHaveLength(2);
    expect(JSON.parse(r.stdout)).toEqual({ labels: JSON.parse(fit.stdout).labels, k: 3 });
    expect(readFileSync(labelsOut, 'utf8').split('\n')).toHaveLength(152);
  });

  it.each([
    [
      'a truncated model',
      (t: string) => t.slice(0, 100),
      /NEUROCLUSTER_ERR_MODEL_FILE: model file is truncated/,
    ],
    [
      'a model from a newer version',
      (t: string) => t.replace('"version":1', '"version":2'),
      /NEUROCLUSTER_ERR_MODEL_VERSION: /,
    ],
  ])('refuses %s with exit 2', (_t, damage, expected) => {
    // A plain model file, to damage its JSON (encrypted ones are checked below).
    cli(['cluster', IRIS, '--k', '3', '--label-column', 'species', '--save-model', model], {
      NEUROCLUSTER_SECURITY__ENCRYPT_MODELS: 'false',
    });
    const damaged = file('damaged.model.json', damage(readFileSync(model, 'utf8')));
    const r = cli(['predict', IRIS, '--model', damaged, '--json']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(ERROR_LINE);
    expect(r.stderr).toMatch(expected);
  });

  it('refuses an encrypted model with one byte changed, as tampering (exit 1)', () => {
    const sealed = join(dir, 'sealed.model.json');
    cli(['cluster', IRIS, '--k', '3', '--label-column', 'species', '--save-model', sealed]);
    const bytes = readFileSync(sealed);
    bytes[bytes.length - 100]! ^= 0x40;
    const r = cli(['predict', IRIS, '--model', file('tampered.model.json', bytes), '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^neurocluster: NEUROCLUSTER_ERR_INTEGRITY: encrypted file: chunk \d+ does not authenticate/m,
    );
  });

  it('keys samples by the same id column as cluster did, and warns when it is missing', () => {
    const empModel = join(dir, 'emp-hybrid.model.json');
    const fit = cli([
      'cluster',
      EMPLOYEES,
      '--k',
      '4',
      '--id-column',
      'employee_id',
      '--save-model',
      empModel,
      '--json',
    ]);
    const same = cli(['predict', EMPLOYEES, '--model', empModel, '--id-column', 'employee_id', '--json']);
    expect(JSON.parse(same.stdout).labels).toEqual(JSON.parse(fit.stdout).labels);
    expect(same.stderr).toBe('');
    const without = cli(['predict', EMPLOYEES, '--model', empModel, '--json']);
    expect(without.code).toBe(0);
    expect(without.stderr).toMatch(/keyed its samples by an id column/);
  });

  it('refuses data of the wrong width with exit 2', () => {
    cli(['cluster', IRIS, '--k', '3', '--label-column', 'species', '--save-model', model]);
    const r = cli(['predict', file('narrow.csv', 'a,b,c\n1,2,3\n'), '--model', model]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^neurocluster: NEUROCLUSTER_ERR_DATA_SHAPE: data has 3 feature columns; the model was fitted on 4/,
    );
  });
});

describe('neurocluster score', () => {
  it('scores given labels on the features as read, equal to scikit-learn', () => {
    const labels = file('species.csv', `species\n${sklearn.labellings.species!.join('\n')}\n`);
    const r = cli(['score', IRIS, '--labels', labels, '--label-column', 'species', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    const expected = sklearn.internal.find((c) => c.labels === 'species' && c.space === 'raw')!;
    expect(relErr(out.silhouette, expected.silhouette)).toBeLessThan(1e-6);
    expect(relErr(out.calinskiHarabasz, expected.calinskiHarabasz)).toBeLessThan(1e-6);
    expect(relErr(out.daviesBouldin, expected.daviesBouldin)).toBeLessThan(1e-6);
    expect(out.external.ari).toBe(1);
  });

  it('accepts one label per line without a header, and the labels-out of cluster', () => {
    const bare = file('bare.txt', `${sklearn.labellings.kmeans3!.join('\n')}\n`);
    expect(cli(['score', IRIS, '--labels', bare, '--label-column', 'species', '--json']).code).toBe(0);
    const labelsOut = join(dir, 'iris.labels.csv');
    cli(['cluster', IRIS, '--k', '3', '--label-column', 'species', '--labels-out', labelsOut]);
    const r = cli([
      'score',
      IRIS,
      '--labels',
      labelsOut,
      '--label-column',
      'species',
      '--sample-size',
      '100',
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ n: 150, k: 3, sampleSize: 100 });
  });

  it('refuses a labels file of the wrong length', () => {
    const short = file('short.txt', '0\n1\n');
    const r = cli(['score', IRIS, '--labels', short, '--label-column', 'species']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/NEUROCLUSTER_ERR_DATA_SHAPE: labels file has 2 labels for 150 data rows/);
  });
});

describe('neurocluster bench', () => {
  it('prints one JSON line with the reference fields', () => {
    const r = cli(['bench', 'kmeans', '--n', '3000', '--k', '8', '--reps', '1', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      workload: 'kmeans',
      impl: 'neurocluster',
      // auto: the bench has no small-problem rule, so the best CPU backend here.
      backend: 'wasm',
      n: 3000,
      d: 4,
      k: 8,
      iters: 20,
    });
    expect(out.seconds).toBeGreaterThan(0);
    expect(out.gflops).toBeGreaterThan(0);
    // WASM: one thread beside all of them, and the SIMD roofline measured in the same run.
    expect(Object.keys(out.threads)).toContain('1');
    // No kernel outruns the peak of the machine's SIMD units (a little noise allowed).
    expect(out.roofline.share).toBeGreaterThan(0);
    expect(out.roofline.share).toBeLessThan(1.2);
  });

  it.each([
    ['esn', { r: 32, t: 10, connectivity: 0.1 }],
    ['esn-seq', { r: 32, t: 10, connectivity: 1 }],
    ['lif', { r: 32, t: 10 }],
  ] as const)('times the %s workload of reference.py', (workload, shape) => {
    const args = Object.entries(shape).flatMap(([key, v]) => [`--${key}`, String(v)]);
    const r = cli(['bench', workload, '--n', '200', '--reps', '1', ...args, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ workload, n: 200, d: 4, ...shape });
    expect(out.gflops).toBeGreaterThan(0);
  });

  it('refuses a workload it does not have, with exit 2', () => {
    const r = cli(['bench', 'pca']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /NEUROCLUSTER_ERR_USAGE: .*Allowed choices are esn, esn-seq, lif, kmeans, silhouette/,
    );
  });

  it.runIf(hasReference)('--compare runs the scikit-learn reference and reports the ratio', () => {
    const r = cli(['bench', 'silhouette', '--n', '1500', '--reps', '1', '--compare', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.reference.impl).toBe('numpy/sklearn');
    expect(out.ratio).toBeCloseTo(out.seconds / out.reference.seconds, 2);
  });
});

describe('resilience from the command line', () => {
  const home = join(dir, 'resilience-home');
  const env = { NEUROCLUSTER_HOME: home };

  it('answers a hanging kernel within a few seconds of --timeout 3s, with CPU K-means', () => {
    const t0 = performance.now();
    const r = cli(
      ['cluster', IRIS, '--k', '3', '--method', 'esn', '--backend', 'js', '--timeout', '3s', '--json'],
      {
        ...env,
        NEUROCLUSTER_FAULT: 'kernel-hang',
      },
    );
    const seconds = (performance.now() - t0) / 1000;
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      fallbackUsed: true,
      fallback: { reason: 'timeout', code: 'NEUROCLUSTER_ERR_TIMEOUT' },
    });
    expect(out.labels).toHaveLength(150);
    expect(seconds).toBeGreaterThan(3);
    expect(seconds).toBeLessThan(8);
  });

  it('--no-fallback surfaces the failure: one error line, exit 1', () => {
    const r = cli(
      ['cluster', IRIS, '--k', '3', '--method', 'esn', '--backend', 'js', '--no-fallback', '--json'],
      {
        ...env,
        NEUROCLUSTER_FAULT: 'oom',
      },
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^neurocluster: NEUROCLUSTER_ERR_OUT_OF_MEMORY: injected fault oom in js\.reservoirRun$/m,
    );
  });

  it('health shows an open breaker; breakers reset closes it', () => {
    const config = file(
      'breaker.json',
      JSON.stringify({ circuitBreaker: { failureThreshold: 1 }, retry: { maxRetries: 0 } }),
    );
    const failing = cli(
      ['cluster', IRIS, '--k', '3', '--method', 'esn', '--backend', 'js', '--config', config, '--json'],
      {
        ...env,
        NEUROCLUSTER_FAULT: 'kernel-throw',
      },
    );
    expect(JSON.parse(failing.stdout).fallback.reason).toBe('kernel');
    // Another process finds the breaker open and does not send the work to js.
    const blocked = cli(
      ['cluster', IRIS, '--k', '3', '--method', 'esn', '--backend', 'js', '--config', config, '--json'],
      env,
    );
    expect(JSON.parse(blocked.stdout).fallback.reason).toBe('circuit-open');
    const health = JSON.parse(cli(['health', '--json', '--config', config], env).stdout);
    // Open breaker: a warning (the fallback still answers), not unready.
    expect(health.status).toBe('warn');
    const checks = Object.fromEntries(health.checks.map((c: { name: string }) => [c.name, c]));
    expect(checks['backend:js']).toMatchObject({
      status: 'pass',
      message: 'CPU (plain TypeScript, one thread)',
    });
    expect(checks.process.status).toBe('pass');
    expect(checks.storage).toMatchObject({ status: 'pass', durationMs: expect.any(Number) });
    expect(Object.keys(checks).find((k) => k.startsWith('breaker:js|'))).toBeDefined();
    expect(health.breakers).toEqual([
      expect.objectContaining({ key: expect.stringMatching(/^js\|/), state: 'open' }),
    ]);
    expect(cli(['breakers', 'reset'], env).stdout).toBe('closed 1 circuit breaker\n');
    expect(JSON.parse(cli(['health', '--json'], env).stdout).breakers).toEqual([]);
    const healed = cli(
      ['cluster', IRIS, '--k', '3', '--method', 'esn', '--backend', 'js', '--config', config, '--json'],
      env,
    );
    expect(JSON.parse(healed.stdout).fallbackUsed).toBe(false);
  });
});

describe('neurocluster config', () => {
  it('schema prints the JSON Schema of the document', () => {
    const r = cli(['config', 'schema']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout);
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.properties.circuitBreaker.properties.failureThreshold).toMatchObject({
      default: 5,
      minimum: 1,
    });
  });

  it('validate prints every problem as <path>: <message> and exits 2 on an error (strict by default)', () => {
    const bad = file(
      'bad-config.yaml',
      'circuit_breaker:\n  failure_threshold: 3\nkmeans:\n  nInit: 0\n  colour: red\n',
    );
    const strict = cli(['config', 'validate', bad]);
    expect(strict.code).toBe(2);
    expect(strict.stdout.split('\n').filter(Boolean)).toEqual([
      'circuit_breaker: deprecated alias of circuitBreaker; write circuitBreaker (warning)',
      'circuit_breaker.failure_threshold: deprecated alias of circuitBreaker.failureThreshold; write circuitBreaker.failureThreshold (warning)',
      'kmeans.nInit: Too small: expected number to be >=1',
      'kmeans: Unrecognized key: "colour"',
    ]);
    const moderate = cli(['config', 'validate', bad, '--level', 'moderate', '--json']);
    expect(moderate.code).toBe(0);
    expect(JSON.parse(moderate.stdout)).toMatchObject({ valid: true, level: 'moderate' });
    expect(cli(['config', 'validate', join(ROOT, 'examples/config.yaml')]).code).toBe(0);
  });

  it('takes NEUROCLUSTER_<SECTION>__<KEY> over the file and flags over both', () => {
    const config = file('k4.json', JSON.stringify({ kmeans: { nClusters: 2 } }));
    const run = (args: string[], env: Record<string, string>) =>
      JSON.parse(
        cli(['cluster', IRIS, '--method', 'kmeans', '--config', config, '--json', ...args], env).stdout,
      ).k;
    expect(run([], {})).toBe(2);
    expect(run([], { NEUROCLUSTER_KMEANS__N_CLUSTERS: '4' })).toBe(4);
    expect(run(['--k', '3'], { NEUROCLUSTER_KMEANS__N_CLUSTERS: '4' })).toBe(3);
    const bad = cli(['cluster', IRIS, '--k', '3', '--json'], { NEUROCLUSTER_RETRY__MAX_RETRIES: '99' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /NEUROCLUSTER_ERR_CONFIG: invalid configuration: NEUROCLUSTER_RETRY__MAX_RETRIES \(retry\.maxRetries\): Too big/,
    );
    // --config-level moderate clamps it instead, with a warning in the log.
    const clamped = cli(
      ['cluster', IRIS, '--k', '3', '--method', 'kmeans', '--json', '--config-level', 'moderate'],
      {
        NEUROCLUSTER_RETRY__MAX_RETRIES: '99',
      },
    );
    expect(clamped.code).toBe(0);
    expect(clamped.stderr).toMatch(
      /configuration: NEUROCLUSTER_RETRY__MAX_RETRIES \(retry\.maxRetries\): .*99 clamped to 10/,
    );
  });
});

describe('quality gates from the command line', () => {
  it('warn mode: failed gates in the JSON, exit 0; fail mode: one error line, nothing on stdout, exit 1', () => {
    const args = ['cluster', IRIS, '--k', '3', '--method', 'kmeans', '--label-column', 'species', '--json'];
    const warn = cli([
      ...args,
      '--config',
      file('gate-warn.json', JSON.stringify({ qualityGates: { minSilhouette: 0.9 } })),
    ]);
    expect(warn.code).toBe(0);
    expect(JSON.parse(warn.stdout).qualityGates).toEqual([
      { gate: 'silhouette', value: expect.any(Number), threshold: 0.9 },
    ]);
    const failed = cli([
      ...args,
      '--out',
      join(dir, 'gate-fail.json'),
      '--config',
      file('gate-fail-config.json', JSON.stringify({ qualityGates: { mode: 'fail', minSilhouette: 0.9 } })),
    ]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toBe('');
    expect(failed.stderr).toMatch(
      /^neurocluster: NEUROCLUSTER_ERR_QUALITY_GATE: quality gates failed: silhouette 0\.\d+ < 0\.9$/m,
    );
    expect(existsSync(join(dir, 'gate-fail.json'))).toBe(false);
  });
});

describe('help and version', () => {
  it('exit 0', () => {
    expect(cli(['--help']).code).toBe(0);
    const v = cli(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('cluster --help lists flags with descriptions and defaults from the schema', () => {
    const help = cli(['cluster', '--help']).stdout;
    expect(help).toMatch(/--n-init <n>\s+k-means\+\+ restarts; the lowest inertia is kept\s+\(default: 10\)/);
    expect(help).toMatch(/--nan-policy <policy>.*\(choices: "error",\s+"drop-rows",\s+"impute-mean"\)/s);
    expect(help).toMatch(/--no-standardize\s+turn off: z-score tabular columns/);
  });
});

describe('neurocluster cluster --epsilon and privacy status', () => {
  const home = { NEUROCLUSTER_HOME: join(dir, 'privacy-home') };
  const clusterDp = (epsilon: string) =>
    cli(
      [
        'cluster',
        IRIS,
        '--k',
        '3',
        '--method',
        'kmeans',
        '--label-column',
        'species',
        '--epsilon',
        epsilon,
        '--bounds',
        '0:10',
        '--dataset',
        'iris-cli',
        '--json',
      ],
      { ...home, NEUROCLUSTER_PRIVACY__BUDGET__EPSILON: '3' },
    );

  it('charges the dataset, keeps the budget across processes, and refuses an overspend with exit 1', () => {
    const first = clusterDp('2');
    expect(first.code).toBe(0);
    const out = JSON.parse(first.stdout);
    expect(out.privacy).toMatchObject({
      dataset: 'iris-cli',
      epsilon: 2,
      spent: 2,
      remaining: 1,
      mechanism: 'laplace',
    });
    expect(out.anonymity.minClusterSize).toBe(5);
    const status = cli(['privacy', 'status', '--dataset', 'iris-cli', '--json'], home);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      dataset: 'iris-cli',
      epsilon: 3,
      spent: 2,
      remaining: 1,
    });
    const over = clusterDp('1.5');
    expect(over.code).toBe(1);
    expect(over.stdout).toBe('');
    expect(over.stderr).toMatch(
      /^neurocluster: NEUROCLUSTER_ERR_PRIVACY_BUDGET: dataset iris-cli: epsilon 1\.5/m,
    );
    const all = JSON.parse(cli(['privacy', 'status', '--json'], home).stdout);
    expect(all.datasets).toEqual([expect.objectContaining({ dataset: 'iris-cli', spent: 2, refusals: 1 })]);
  });
});

describe('the audit log and the keyring, from the command line', () => {
  const home = join(dir, 'audit-home');
  const env = { NEUROCLUSTER_HOME: home };

  it('records data reads, model writes and key rotations; audit verify exits 0, then 1 naming the edited record', () => {
    const model = join(dir, 'audited.model.json');
    expect(
      cli(
        [
          'cluster',
          IRIS,
          '--k',
          '3',
          '--method',
          'kmeans',
          '--label-column',
          'species',
          '--save-model',
          model,
          '--json',
        ],
        env,
      ).code,
    ).toBe(0);
    expect(cli(['cluster', join(dir, 'missing.csv'), '--k', '3', '--json'], env).code).toBe(2);
    const rotate = cli(['keys', 'rotate', '--dir', dir, '--json'], env);
    expect(rotate.code).toBe(0);
    const { from, to, rewrapped } = JSON.parse(rotate.stdout);
    expect(from).not.toBe(to);
    // The model saved above (encrypted by default) was re-wrapped, and still predicts.
    expect(rewrapped).toContain(model);
    expect(cli(['predict', IRIS, '--model', model, '--label-column', 'species', '--json'], env).code).toBe(0);
    const file = join(home, 'audit', 'audit.jsonl');
    const records = auditRecords(home);
    expect(records.map((r) => [r.action, r.outcome])).toEqual([
      ['data.read', 'success'],
      ['model.write', 'success'],
      ['data.read', 'failure'],
      ['keys.rotate', 'success'],
      ['model.read', 'success'],
      ['data.read', 'success'],
    ]);
    expect(records[2].details.code).toBe('NEUROCLUSTER_ERR_DATA_READ');
    const ok = cli(['audit', 'verify', '--json'], env);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, records: 6 });
    const text = readFileSync(file, 'utf8').replace(`"resource":"${model}"`, '"resource":"/elsewhere"');
    writeFileSync(file, text);
    const broken = cli(['audit', 'verify'], env);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(
      /audit log broken at .*audit\.jsonl:2 \(record 2\): its HMAC does not match/,
    );
  });
});

describe('keys retire and score, audited', () => {
  it('retires a key that is not current, refuses the current one, and audits score reads', () => {
    const env = { NEUROCLUSTER_HOME: join(dir, 'retire-home') };
    expect(cli(['keys', 'rotate', '--json'], env).code).toBe(0);
    const { keys } = JSON.parse(cli(['keys', 'list', '--json'], env).stdout);
    const old = keys.find((k: { current: boolean }) => !k.current).id;
    const current = keys.find((k: { current: boolean }) => k.current).id;
    expect(cli(['keys', 'retire', old, '--json'], env).code).toBe(0);
    const refused = cli(['keys', 'retire', current], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/NEUROCLUSTER_ERR_SECURITY: key .* is current: rotate first/);
    const labels = file(
      'score-labels.csv',
      `label\n${'0\n'.repeat(50)}${'1\n'.repeat(50)}${'2\n'.repeat(50)}`,
    );
    expect(cli(['score', IRIS, '--labels', labels, '--label-column', 'species', '--json'], env).code).toBe(0);
    const actions = auditRecords(join(dir, 'retire-home')).map((r) => [r.action, r.outcome]);
    expect(actions).toEqual([
      ['keys.rotate', 'success'],
      ['keys.retire', 'success'],
      ['keys.retire', 'denied'],
      ['data.read', 'success'],
    ]);
  });
});

describe('encrypted results and files, from the command line', () => {
  const home = join(dir, 'results-home');
  const env = { NEUROCLUSTER_HOME: home };
  const out = join(dir, 'encrypted-results');
  mkdirSync(out, { recursive: true });
  const at = (name: string) => join(realpathSync(out), name);

  it('writes result, labels and plot encrypted and owner-only; decrypt, score and rotate read them', () => {
    const args = ['cluster', IRIS, '--k', '3', '--method', 'kmeans', '--label-column', 'species'];
    const plain = cli([...args, '--json'], env);
    expect(plain.code).toBe(0);
    const r = cli(
      [
        ...args,
        '--encrypt-results',
        '--out',
        at('result.json'),
        '--labels-out',
        at('labels.csv'),
        '--plot',
        at('plot.svg'),
        '--save-model',
        at('model.json'),
        '--json',
      ],
      env,
    );
    expect(r.code).toBe(0);
    for (const name of ['result.json', 'labels.csv', 'plot.svg', 'model.json']) {
      expect(isEncrypted(readFileSync(at(name)))).toBe(true);
      expect(statSync(at(name)).mode & 0o077).toBe(0);
    }
    // decrypt gives back exactly what the run printed; score reads the encrypted labels.
    const decrypted = cli(['decrypt', at('result.json')], env);
    expect(decrypted.code).toBe(0);
    expect(JSON.parse(decrypted.stdout).labels).toEqual(JSON.parse(plain.stdout).labels);
    expect(cli(['decrypt', at('labels.csv'), '--out', at('labels.plain.csv')], env).code).toBe(0);
    expect(readFileSync(at('labels.plain.csv'), 'utf8')).toMatch(/^label\n[012]\n/);
    const score = cli(
      ['score', IRIS, '--labels', at('labels.csv'), '--label-column', 'species', '--json'],
      env,
    );
    expect(score.code).toBe(0);
    // Every one of them is recorded: rotation re-wraps them without being told where they are.
    const listed = JSON.parse(cli(['keys', 'list', '--json'], env).stdout).keys;
    expect(listed).toEqual([expect.objectContaining({ current: true, files: 4 })]);
    const rotate = JSON.parse(cli(['keys', 'rotate', '--json'], env).stdout);
    expect(rotate.rewrapped.sort()).toEqual(
      ['labels.csv', 'model.json', 'plot.svg', 'result.json'].map(at).sort(),
    );
    expect(cli(['keys', 'retire', rotate.from, '--json'], env).code).toBe(0);
    expect(JSON.parse(cli(['decrypt', at('result.json')], env).stdout).k).toBe(3);
    const records = auditRecords(home);
    const writes = records.filter((x) => x.action === 'result.write');
    expect(writes.map((x) => [x.resource, x.details.encrypted])).toEqual([
      [at('result.json'), true],
      [at('labels.csv'), true],
      [at('plot.svg'), true],
    ]);
    expect(records.filter((x) => x.action === 'file.decrypt').map((x) => x.outcome)).toEqual([
      'success',
      'success',
      'success',
    ]);
  });

  it('clusters an encrypted data file as the plain one; refuses to retire a key a file needs unless forced', () => {
    const enc = at('iris.csv.enc');
    expect(cli(['encrypt', IRIS, '--out', enc], env).code).toBe(0);
    expect(isEncrypted(readFileSync(enc))).toBe(true);
    const args = ['--k', '3', '--method', 'kmeans', '--label-column', 'species', '--json'];
    const fromPlain = JSON.parse(cli(['cluster', IRIS, ...args], env).stdout);
    const fromEncrypted = JSON.parse(cli(['cluster', enc, ...args], env).stdout);
    expect(fromEncrypted.labels).toEqual(fromPlain.labels);
    // A new current key made behind the engine's back (no re-wrap): the file still needs the old one.
    const keyring = Keyring.open({ env, warn: () => {} });
    const old = keyring.current().id;
    keyring.rotate();
    const refused = cli(['keys', 'retire', old], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`key ${old} still wraps`);
    expect(refused.stderr).toContain(enc);
    expect(cli(['keys', 'retire', old, '--force'], env).code).toBe(0);
    const lost = cli(['decrypt', enc], env);
    expect(lost.code).toBe(1);
    expect(lost.stdout).toBe('');
    expect(lost.stderr).toMatch(/NEUROCLUSTER_ERR_SECURITY: .*retired/);
  });

  it('decrypt refuses a plain file (exit 2) and a changed byte (exit 1), printing nothing; encrypt keeps to the data roots', () => {
    expect(cli(['decrypt', IRIS], env).code).toBe(2);
    expect(cli(['decrypt', at('result.json'), '--json'], env).stderr).toMatch(/--json .*give --out/);
    const outside = cli(['encrypt', IRIS, '--out', at('outside.enc')], {
      ...env,
      NEUROCLUSTER_SECURITY__DATA_ROOTS: JSON.stringify([out]),
    });
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/NEUROCLUSTER_ERR_SECURITY_PATH: .*iris\.csv is outside the data roots/);
    expect(existsSync(at('outside.enc'))).toBe(false);
    const enc = at('tampered.enc');
    expect(cli(['encrypt', IRIS, '--out', enc], env).code).toBe(0);
    const bytes = readFileSync(enc);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 40) ^ 1, bytes.length - 40);
    writeFileSync(enc, bytes);
    const r = cli(['decrypt', enc], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/NEUROCLUSTER_ERR_INTEGRITY: encrypted file: chunk \d+ does not authenticate/);
  });
});

describe('the keyring shared by processes running at once', () => {
  /** The CLI as a child process that runs alongside others. */
  function cliAsync(args: string[], env: Record<string, string>) {
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
      const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => {
        stdout += d;
      });
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.on('close', (code) => done({ code, stdout, stderr }));
    });
  }

  it('four rotations at once on a fresh home: one keyring, every new key kept, the audit chain intact', async () => {
    const env = { NEUROCLUSTER_HOME: join(dir, 'concurrent-home') };
    const runs = await Promise.all([1, 2, 3, 4].map(() => cliAsync(['keys', 'rotate', '--json'], env)));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const rotations = runs.map((r) => JSON.parse(r.stdout) as { from: string; to: string });
    // Only one process created the keyring (and warned); all of them started from its key or a later one.
    expect(runs.filter((r) => r.stderr.includes('created a new keyring'))).toHaveLength(1);
    const { keys } = JSON.parse(cli(['keys', 'list', '--json'], env).stdout) as { keys: { id: string }[] };
    expect(keys).toHaveLength(5);
    const ids = keys.map((k) => k.id);
    for (const { from, to } of rotations) expect(ids).toEqual(expect.arrayContaining([from, to]));
    const verify = cli(['audit', 'verify', '--json'], env);
    expect(verify.code, verify.stdout).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, records: 4 });
  });
});

describe('data roots, from the command line', () => {
  it('refuses a file outside security.dataRoots with exit 2, and audits the denial and the anomaly', () => {
    const home = join(dir, 'roots-home');
    const env = {
      NEUROCLUSTER_HOME: home,
      NEUROCLUSTER_SECURITY__DATA_ROOTS: JSON.stringify([join(dir, 'nowhere')]),
    };
    const r = cli(['cluster', IRIS, '--k', '3', '--json'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/NEUROCLUSTER_ERR_SECURITY_PATH: .*iris\.csv is outside the data roots/);
    const records = auditRecords(home);
    expect(records.at(-2)).toMatchObject({ action: 'data.read', outcome: 'denied', risk: 40 });
    // The anomaly rule outside-roots saw it.
    expect(records.at(-1)).toMatchObject({ action: 'security.anomaly', resource: 'outside-roots', risk: 70 });
  });
});

describe('model backup, restore and export, from the command line', () => {
  it('backs a model up, restores it checked, exports it for age, and audits each', () => {
    const home = join(dir, 'backup-home');
    const env = { NEUROCLUSTER_HOME: home };
    const model = join(dir, 'to-back-up.model.json');
    expect(
      cli(['cluster', IRIS, '--k', '3', '--label-column', 'species', '--save-model', model], env).code,
    ).toBe(0);
    const backupDir = join(dir, 'backups');
    mkdirSync(backupDir, { recursive: true });
    const b = cli(['model', 'backup', backupDir, '--model', model, '--json'], env);
    expect(b.code).toBe(0);
    const { backup } = JSON.parse(b.stdout);
    const restored = join(dir, 'restored-cli.model.json');
    const r = cli(['model', 'restore', backup, '--to', restored, '--json'], env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).manifest.source).toBe(model);
    expect(cli(['predict', IRIS, '--model', restored, '--label-column', 'species', '--json'], env).code).toBe(
      0,
    );
    const bad = cli(['model', 'export', model, '--recipient', 'nope', '--out', join(dir, 'x.age')], env);
    expect(bad.code).toBe(2);
    const actions = auditRecords(home).map((x) => [x.action, x.outcome]);
    expect(actions).toEqual(
      expect.arrayContaining([
        ['model.backup', 'success'],
        ['model.restore', 'success'],
        ['model.export', 'failure'],
      ]),
    );
  });
});
