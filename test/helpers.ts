/** Shared test helpers: fixtures, temporary directories, the compiled command. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { BackendRegistry } from '../src/backends/backend.js';
import { jsBackendFactory } from '../src/backends/js/js-backend.js';
import { isNeuroclusterError, type NeuroclusterError } from '../src/core/errors.js';

export const ROOT = new URL('..', import.meta.url).pathname;
export const SHARED_TS = join(ROOT, '..', 'shared', 'data', 'ts');
export const hasSharedTs = existsSync(join(SHARED_TS, 'index.json'));

/** The compiled command, as `npm run build` leaves it. */
export const CLI = join(ROOT, 'dist/src/cli/main.js');

/** An error as the CLI prints it: exactly one line on stderr with a stable code. */
export const ERROR_LINE = /^neurocluster: NEUROCLUSTER_ERR_[A-Z_]+: [^\n]+\n$/;

export interface CliOptions {
  /** NEUROCLUSTER_HOME; by default this process's. */
  home?: string;
  /** Set over this process's environment (after `home`); an undefined value removes the variable. */
  env?: Record<string, string | undefined>;
  /** Milliseconds before the command is killed; by default none. */
  timeout?: number;
  /** Written to the command's stdin. */
  input?: string;
  /** The working directory; by default the repository root. */
  cwd?: string;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  signal: NodeJS.Signals | null;
}

/** Runs `node dist/src/cli/main.js ...args` to its end. */
export function runCli(args: readonly string[], options: CliOptions = {}): CliResult {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (options.home !== undefined) env.NEUROCLUSTER_HOME = options.home;
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? ROOT,
    encoding: 'utf8',
    env,
    ...(options.timeout !== undefined && { timeout: options.timeout }),
    ...(options.input !== undefined && { input: options.input }),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
}

export interface SklearnFixture {
  irisStandardized: { first: number[][]; mean: number[]; scale: number[] };
  internal: {
    labels: string;
    space: 'raw' | 'standardized';
    silhouette: number;
    calinskiHarabasz: number;
    daviesBouldin: number;
  }[];
  labellings: Record<string, (string | number)[]>;
  external: {
    name: string;
    truth: unknown[];
    predicted: unknown[];
    ari: number;
    nmi: number;
    randIndex: number;
  }[];
  spectralRadius: { size: number; data: number[]; radius: number }[];
  irisSeeds: { seed: number; ari: number; inertia: number }[];
  kmeans: {
    name: string;
    source: string;
    k: number;
    inertia: number;
    ari?: number;
    labelColumn?: string;
    series?: boolean;
  }[];
}

export const sklearn = JSON.parse(
  readFileSync(join(ROOT, 'test/fixtures/sklearn.json'), 'utf8'),
) as SklearnFixture;

/** Relative error, for comparing to the fixtures. */
export function relErr(actual: number, expected: number): number {
  return Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-300);
}

/** The directories {@link tempDir} made in this test file. */
const madeDirs: string[] = [];
// Registered once, when the test file imports this module: a hook registered from inside a
// running test (where many tests call tempDir) would never run, and the directory would stay.
afterAll(() => {
  for (const dir of madeDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the file's tests are done (from any test or suite). */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'neurocluster-test-'));
  madeDirs.push(dir);
  return dir;
}

/** Writes files into `dir`: `file(name, content)` returns the path written. */
export function fileWriter(
  dir: string,
): (name: string, content: string | Uint8Array | ArrayBuffer) => string {
  return (name, content) => {
    const path = join(dir, name);
    writeFileSync(path, content instanceof ArrayBuffer ? new Uint8Array(content) : content);
    return path;
  };
}

/** The NeuroclusterError a promise rejects with; fails the test if it resolves or throws another. */
export async function failure(promise: Promise<unknown>): Promise<NeuroclusterError> {
  try {
    await promise;
  } catch (e) {
    if (isNeuroclusterError(e)) return e;
    throw e;
  }
  throw new Error('expected a failure');
}

/**
 * Where a backend cannot start (no WebGPU adapter), its tests are skipped, unless
 * REQUIRE_WEBGPU=1 (as in CI): there the reason it could not start fails the test.
 */
export function skipUnlessRequired(skip: (note: string) => never, why: unknown): never {
  if (process.env.REQUIRE_WEBGPU === '1') throw why;
  return skip(`backend unavailable: ${why instanceof Error ? why.message : String(why)}`);
}

/** A registry with only the JS backend, counting how many times it was started. */
export function countingJsRegistry(): { registry: BackendRegistry; started: () => number } {
  let count = 0;
  const registry = new BackendRegistry();
  registry.register({
    ...jsBackendFactory,
    create: async (context) => {
      count++;
      return jsBackendFactory.create(context);
    },
  });
  return { registry, started: () => count };
}

/** An NPY file as NumPy writes it (format 1.0, little-endian, C order). */
export function npy(shape: number[], values: number[], dtype: '<f4' | '<f8' | '<i4' = '<f8'): Uint8Array {
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header = `${header.padEnd(header.length + ((64 - (total % 64)) % 64), ' ')}\n`;
  const size = dtype === '<f8' ? 8 : 4;
  const out = new Uint8Array(10 + header.length + values.length * size);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  const view = new DataView(out.buffer);
  view.setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  values.forEach((v, i) => {
    const at = 10 + header.length + i * size;
    if (dtype === '<f8') view.setFloat64(at, v, true);
    else if (dtype === '<f4') view.setFloat32(at, v, true);
    else view.setInt32(at, v, true);
  });
  return out;
}
