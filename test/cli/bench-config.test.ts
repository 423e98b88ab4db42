/**
 * `bench`, `config` and the resilience flags (deadline, fallback, health, breakers) on the real
 * compiled command.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { benchRows } from '../../src/cli/commands/bench.js';
import { ROOT } from '../helpers.js';
import { cliScratch, hasReference, IRIS } from './scratch.js';

const { dir, cli, file } = cliScratch();

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

describe('the bench table', () => {
  it('shows a result with its reference and ratio as rows', () => {
    const rows = benchRows({
      workload: 'kmeans',
      impl: 'neurocluster',
      backend: 'wasm',
      n: 1000,
      d: 4,
      k: 16,
      iters: 20,
      seconds: 0.0123456,
      gflops: 2.5,
      reps: 3,
      threads: { '1': 0.02, '2': 0.0123456 },
      reference: { impl: 'numpy', seconds: 0.01, gflops: 3 },
      ratio: 1.23456,
    });
    expect(rows).toEqual([
      ['backend', 'wasm'],
      ['shape', 'n 1000, d 4, k 16, iters 20'],
      ['seconds', '0.01235 (best of 3)'],
      ['GFLOP/s', '2.500'],
      ['threads', '1: 0.02000 s, 2: 0.01235 s'],
      ['reference', '0.01000 s (numpy)'],
      ['ratio', '1.23 (ours over the reference; below 1 is faster)'],
    ]);
  });
});
