/**
 * The environment on the real command (issue 18, items 11, 12 and 14): each case spawns
 * `node dist/src/cli/main.js` with the variables set and a fresh NEUROCLUSTER_HOME.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli, tempDir } from '../helpers.js';

const dir = tempDir();
const IRIS = join(ROOT, 'examples/iris.csv');
const ERROR_LINE = /^neurocluster: NEUROCLUSTER_ERR_CONFIG: [^\n]+\n$/;

/** Every NEUROCLUSTER_* variable of this process is left out, so only the test's own count. */
function cli(args: string[], env: Record<string, string> = {}, timeout = 60_000) {
  const unset = Object.fromEntries(
    Object.keys(process.env)
      .filter((k) => k.startsWith('NEUROCLUSTER_'))
      .map((k) => [k, undefined]),
  );
  return runCli(args, { env: { ...unset, NEUROCLUSTER_HOME: join(dir, 'home'), ...env }, timeout });
}

const cluster = (...extra: string[]) => [
  'cluster',
  IRIS,
  '--k',
  '3',
  '--method',
  'kmeans',
  '--json',
  ...extra,
];

describe('every variable goes through the schema (item 11)', () => {
  it('NEUROCLUSTER_WASM_THREADS=100000 is refused at once: exit 2, one line naming the variable', () => {
    const t0 = performance.now();
    const r = cli(
      cluster('--backend', 'wasm', '--method', 'esn'),
      { NEUROCLUSTER_WASM_THREADS: '100000' },
      30_000,
    );
    expect(performance.now() - t0).toBeLessThan(20_000);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(ERROR_LINE);
    expect(r.stderr).toMatch(/NEUROCLUSTER_WASM_THREADS \(engine\.wasm\.threads\): Too big/);
  });

  it('a short alias still works: NEUROCLUSTER_WASM_THREADS=2 starts the WASM backend on two threads', () => {
    const r = cli(['health', '--json'], { NEUROCLUSTER_WASM_THREADS: '2' });
    const wasm = JSON.parse(r.stdout).checks.find((c: { name: string }) => c.name === 'backend:wasm');
    expect(wasm.message).toMatch(/\b2 worker threads/);
  });

  it('NEUROCLUSTER_METRICS must be on or off', () => {
    const r = cli(cluster(), { NEUROCLUSTER_METRICS: 'of' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(ERROR_LINE);
    expect(r.stderr).toContain('NEUROCLUSTER_METRICS: expected on or off');
  });
});

describe('names as users write them (item 14)', () => {
  it('NEUROCLUSTER_MONITORING__MEMORY_BUDGET_MB sets monitoring.memoryBudgetMB (1 MB refuses the job)', () => {
    const r = cli(cluster(), { NEUROCLUSTER_MONITORING__MEMORY_BUDGET_MB: '1' });
    expect(r.stderr).toMatch(/^neurocluster: NEUROCLUSTER_ERR_RESOURCE_EXHAUSTED: /m);
    expect(r.code).toBe(1);
  });

  it('NEUROCLUSTER_TIMEOUT sets the top-level timeout: a hanging kernel falls back within seconds', () => {
    const t0 = performance.now();
    const r = cli(['cluster', IRIS, '--k', '3', '--method', 'esn', '--backend', 'js', '--json'], {
      NEUROCLUSTER_TIMEOUT: '1s',
      NEUROCLUSTER_FAULT: 'kernel-hang',
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).fallback).toMatchObject({ reason: 'timeout' });
    expect(performance.now() - t0).toBeLessThan(20_000);
  });

  it('NEUROCLUSTER_ENGINE=x is a bad value for the engine section: exit 2 naming it', () => {
    const r = cli(cluster(), { NEUROCLUSTER_ENGINE: 'x' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(ERROR_LINE);
    expect(r.stderr).toContain('NEUROCLUSTER_ENGINE (engine): ');
  });

  it('a name that matches nothing: exit 2 under strict; one warning line under moderate', () => {
    const strict = cli(cluster(), { NEUROCLUSTER_ENGINE_SEED: '3' });
    expect(strict.code).toBe(2);
    expect(strict.stderr).toMatch(ERROR_LINE);
    expect(strict.stderr).toContain('did you mean NEUROCLUSTER_ENGINE__SEED?');
    const moderate = cli(['--config-level', 'moderate', ...cluster()], { NEUROCLUSTER_ENGINE_SEED: '3' });
    expect(moderate.code).toBe(0);
    const warnings = moderate.stderr.split('\n').filter((l) => l.includes('NEUROCLUSTER_ENGINE_SEED'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/matches no configuration key .*: ignored/);
  });
});

describe('a logging transport that cannot start is a configuration error (item 12)', () => {
  const missingFile = join(dir, 'no-such-transport.mjs');
  for (const [what, env] of [
    [
      'a package that is not installed',
      { NEUROCLUSTER_LOGGING__TRANSPORT__TARGET: 'no-such-transport-module' },
    ],
    [
      'a file that does not exist (fails in the worker)',
      { NEUROCLUSTER_LOGGING__TRANSPORT__TARGET: missingFile },
    ],
    [
      'a destination that cannot be opened (fails in the worker)',
      {
        NEUROCLUSTER_LOGGING__TRANSPORT: JSON.stringify({
          target: 'pino/file',
          options: { destination: join(dir, 'missing-dir', 'x.log') },
        }),
      },
    ],
  ] as const) {
    it(`${what}: exit 2, one line, never a crash`, () => {
      const r = cli(cluster(), env);
      expect(r.stderr).toMatch(ERROR_LINE);
      expect(r.stderr).toMatch(/logging\.transport/);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
    });
  }

  it('a transport that starts receives the lines', () => {
    const log = join(dir, 'run.log');
    writeFileSync(log, '');
    const r = cli(['--log-level', 'info', ...cluster()], {
      NEUROCLUSTER_LOGGING__TRANSPORT__TARGET: 'pino/file',
      NEUROCLUSTER_LOGGING__TRANSPORT__OPTIONS__DESTINATION: log,
    });
    expect(r.code).toBe(0);
    expect(readFileSync(log, 'utf8')).toMatch(/"level":30/);
  });
});
