/** Shared test helpers: fixtures, temporary directories. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { BackendRegistry } from '../src/backends/backend.js';
import { jsBackendFactory } from '../src/backends/js/js-backend.js';
import { isNeuroclusterError, type NeuroclusterError } from '../src/resilience/errors.js';

export const ROOT = new URL('..', import.meta.url).pathname;
export const SHARED_TS = join(ROOT, '..', 'shared', 'data', 'ts');
export const hasSharedTs = existsSync(join(SHARED_TS, 'index.json'));

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

/** A fresh temporary directory, removed when the file's tests are done. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'neurocluster-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
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
