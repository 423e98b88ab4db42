/**
 * The `cluster` command on the real compiled command in a child process: stdout holds exactly one
 * JSON line with --json, errors are one line on stderr with a stable code, exit status 0 / 2 / 1,
 * no partial output file is left behind; backend selection, quality gates, help and version.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isEncrypted } from '../../src/security/envelope.js';
import { ERROR_LINE, ROOT, relErr, skipUnlessRequired, sklearn } from '../helpers.js';
import { cliScratch, EMPLOYEES, IRIS } from './scratch.js';

const { dir, cli, file } = cliScratch();

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

  it('takes -k for --k, and names the flag the user typed in a bad value', () => {
    const short = JSON.parse(cli(['cluster', IRIS, '-k', '2', '--method', 'kmeans', '--json']).stdout);
    expect(short).toMatchObject({ k: 2 });
    const r = cli(['cluster', IRIS, '--k', '0', '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /NEUROCLUSTER_ERR_CONFIG: invalid configuration: --k \(kmeans\.nClusters\): Too small/,
    );
    // The encoders' main sizes have flags of their own, each named in its error.
    const sizes = cli([
      'cluster',
      IRIS,
      '-k',
      '3',
      '--units',
      '0',
      '--snn-neurons',
      '0',
      '--lsm-neurons',
      '7',
      '--components',
      '0',
    ]);
    expect(sizes.code).toBe(2);
    for (const [flag, path] of [
      ['--units', 'encoders.esn.units'],
      ['--snn-neurons', 'encoders.snn.neurons'],
      ['--lsm-neurons', 'encoders.lsm.neurons'],
      ['--components', 'encoders.hybrid.components'],
    ]) {
      expect(sizes.stderr).toContain(`${flag} (${path}): Too small`);
    }
    // A value a config file gave is named by its key, as before.
    const config = file('bad-k.yaml', 'kmeans:\n  nClusters: 0\n');
    expect(cli(['cluster', IRIS, '--config', config]).stderr).toMatch(
      /configuration: kmeans\.nClusters: Too small/,
    );
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
      /NEUROCLUSTER_ERR_USAGE: option '-k, --k <n>' argument '--out' is invalid/,
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
    // K-means on WebGPU: the adapter chosen is what is checked, not the fit.
    const onGpu = (...flags: string[]) =>
      cli(['cluster', IRIS, '--k', '3', '--method', 'kmeans', '--backend', 'webgpu', ...flags]);
    const probe = onGpu('--json');
    if (probe.code !== 0) skipUnlessRequired(ctx.skip, new Error(probe.stderr));
    const adapter = onGpu('--gpu-adapter', 'swiftSHADER', '--json');
    expect(JSON.parse(adapter.stdout).backend).toBe('webgpu');
    const unknown = onGpu('--gpu-adapter', 'no-such-gpu');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no WebGPU adapter named like "no-such-gpu" \(adapters here: SwiftShader/);
  });

  it('auto names the backend that ran', () => {
    expect(JSON.parse(cli(['cluster', IRIS, '--k', '3', '--backend', 'auto', '--json']).stdout).backend).toBe(
      'js',
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
