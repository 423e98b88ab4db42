/**
 * The one conformance suite: kernel cases written as data (test/conformance/cases.json, made by
 * make_cases.py with NumPy), run against every backend this build registers. Adding a backend to
 * the registry adds it here; nothing in this file names a backend.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Backend,
  KERNEL_NAMES,
  type RecurrentWeights,
  type ReservoirRun,
  type SpikingRun,
} from '../../src/backends/backend.js';
import { defaultRegistry } from '../../src/backends/index.js';
import { type Matrix, readFeatures } from '../../src/core/matrix.js';
import { skipUnlessRequired } from '../helpers.js';

interface JsonMatrix {
  rows: number;
  cols: number;
  data: number[];
}

interface Case {
  kernel:
    | 'matmul'
    | 'pairwiseDistances'
    | 'kmeansAssign'
    | 'kmeansReduce'
    | 'kmeansStep'
    | 'clusterDistanceSums'
    | 'reservoirRun'
    | 'spikingRun'
    | 'columnMoments'
    | 'assembleBlocks';
  name: string;
  params: Record<string, unknown>;
  inputs: Record<string, JsonMatrix | number[] | JsonRecurrent>;
  expected: Record<string, JsonMatrix | number[] | number>;
  /** Relative tolerance (to max(1, |expected|)) for float64 backends... */
  tolerance: number;
  /** ...and for float32 ones. */
  tolerance32: number;
  /** Share of the outputs that must be within tolerance (spiking cases); 1 when absent. */
  minEqual?: number;
}

type JsonRecurrent =
  | { kind: 'dense'; matrix: JsonMatrix }
  | { kind: 'csr'; size: number; rowPtr: number[]; colIdx: number[]; values: number[] };

function toRecurrent(w: JsonRecurrent): RecurrentWeights {
  if (w.kind === 'dense') return { kind: 'dense', matrix: toMatrix(w.matrix) };
  return {
    kind: 'csr',
    size: w.size,
    rowPtr: Int32Array.from(w.rowPtr),
    colIdx: Int32Array.from(w.colIdx),
    values: Float64Array.from(w.values),
  };
}

const suite = JSON.parse(readFileSync(new URL('./cases.json', import.meta.url), 'utf8')) as { cases: Case[] };

const toMatrix = (m: JsonMatrix): Matrix => ({ rows: m.rows, cols: m.cols, data: Float64Array.from(m.data) });
const ints = (v: unknown) => Int32Array.from(v as number[]);

/** Runs one case's kernel; returns its outputs under the names of `expected`. */
async function run(backend: Backend, c: Case): Promise<Record<string, unknown>> {
  const i = c.inputs;
  switch (c.kernel) {
    case 'matmul':
      return {
        out: await backend.matmul(
          toMatrix(i.a as JsonMatrix),
          toMatrix(i.b as JsonMatrix),
          i.bias ? Float64Array.from(i.bias as number[]) : undefined,
        ),
      };
    case 'pairwiseDistances':
      return {
        out: await backend.pairwiseDistances(toMatrix(i.a as JsonMatrix), toMatrix(i.b as JsonMatrix), {
          squared: c.params.squared === true,
        }),
      };
    case 'kmeansAssign':
      return {
        ...(await backend.kmeansAssign(
          toMatrix(i.points as JsonMatrix),
          toMatrix(i.centroids as JsonMatrix),
        )),
      };
    case 'kmeansReduce':
      return {
        ...(await backend.kmeansReduce(
          toMatrix(i.points as JsonMatrix),
          ints(i.labels),
          c.params.k as number,
        )),
      };
    case 'kmeansStep':
      return {
        ...(await backend.kmeansStep(
          toMatrix(i.points as JsonMatrix),
          toMatrix(i.centroids as JsonMatrix),
          ints(i.labels),
        )),
      };
    case 'clusterDistanceSums': {
      const p = c.params as { k: number; rowStart: number; rowEnd: number };
      return {
        out: await backend.clusterDistanceSums(
          toMatrix(i.points as JsonMatrix),
          ints(i.labels),
          p.k,
          p.rowStart,
          p.rowEnd,
        ),
      };
    }
    case 'reservoirRun': {
      const run: ReservoirRun = {
        ...(c.params as Omit<ReservoirRun, 'inputs' | 'inputWeights' | 'bias' | 'recurrent'>),
        inputs: toMatrix(i.inputs as JsonMatrix),
        inputWeights: toMatrix(i.inputWeights as JsonMatrix),
        bias: Float64Array.from(i.bias as number[]),
        recurrent: toRecurrent(i.recurrent as JsonRecurrent),
      };
      // A kept output comes back through the device matrix's own read.
      const out = c.params.keep
        ? await readFeatures(await backend.reservoirRun({ ...run, keep: true }))
        : await backend.reservoirRun(run);
      return { out };
    }
    case 'spikingRun': {
      const run: SpikingRun = {
        ...(c.params as Omit<SpikingRun, 'inputs' | 'inputWeights' | 'bias' | 'recurrent' | 'sampleKeys'>),
        inputs: toMatrix(i.inputs as JsonMatrix),
        inputWeights: toMatrix(i.inputWeights as JsonMatrix),
        bias: Float64Array.from(i.bias as number[]),
        sampleKeys: Uint32Array.from(i.sampleKeys as number[]),
        ...(i.recurrent ? { recurrent: toRecurrent(i.recurrent as JsonRecurrent) } : {}),
      };
      const out = c.params.keep
        ? await readFeatures(await backend.spikingRun({ ...run, keep: true }))
        : await backend.spikingRun(run);
      return { out };
    }
    case 'columnMoments':
      return {
        ...(await backend.columnMoments(toMatrix(i.m as JsonMatrix), i.order ? ints(i.order) : undefined)),
      };
    case 'assembleBlocks': {
      const specs = c.params.blocks as { keep: number[]; means: number[]; scale: number }[];
      const blocks = specs.map((spec, b) => ({ ...spec, features: toMatrix(i[`block${b}`] as JsonMatrix) }));
      return { out: await backend.assembleBlocks(blocks, i.order ? ints(i.order) : undefined) };
    }
  }
}

/** Integer outputs must match exactly; real ones to the case's relative tolerance. */
const EXACT = new Set(['labels', 'counts', 'changed']);

function compare(
  name: string,
  actual: unknown,
  expected: JsonMatrix | number[] | number,
  tol: number,
  minEqual = 1,
): void {
  if (typeof expected === 'number') {
    expect(actual, name).toBeTypeOf('number');
    if (EXACT.has(name)) expect(actual, name).toBe(expected);
    else
      expect(Math.abs((actual as number) - expected), name).toBeLessThanOrEqual(
        tol * Math.max(1, Math.abs(expected)),
      );
    return;
  }
  let values: ArrayLike<number>;
  let want: number[];
  if (Array.isArray(expected)) {
    values = actual as ArrayLike<number>;
    want = expected;
  } else {
    const m = actual as Matrix;
    expect([m.rows, m.cols], `${name} shape`).toEqual([expected.rows, expected.cols]);
    values = m.data;
    want = expected.data;
  }
  expect(values.length, `${name} length`).toBe(want.length);
  if (EXACT.has(name)) {
    expect(Array.from(values), name).toEqual(want);
    return;
  }
  const allowed = Math.floor((1 - minEqual) * want.length);
  const off: string[] = [];
  for (let j = 0; j < want.length; j++) {
    const err = Math.abs(values[j]! - want[j]!);
    if (!(err <= tol * Math.max(1, Math.abs(want[j]!)))) off.push(`[${j}]: ${values[j]} vs ${want[j]}`);
  }
  if (off.length > allowed) {
    expect.fail(
      `${name}: ${off.length} of ${want.length} values off (tolerance ${tol}, ${allowed} allowed): ${off.slice(0, 5).join(', ')}`,
    );
  }
}

describe.each(defaultRegistry.registered())('kernel conformance on the %s backend', (name) => {
  let backend: Backend | undefined;
  let unavailable: unknown;
  beforeAll(async () => {
    backend = await defaultRegistry.get(name).catch((error: unknown) => {
      unavailable = error;
      return undefined;
    });
  });
  afterAll(() => defaultRegistry.disposeAll());

  it('has cases for every kernel of the contract', () => {
    const kernels = new Set(suite.cases.map((c) => c.kernel));
    expect([...kernels].sort()).toEqual([...KERNEL_NAMES].sort());
  });

  it('refuses a row order that lists a row outside the matrix, before reading through it', async (ctx) => {
    if (!backend) return skipUnlessRequired(ctx.skip, unavailable);
    const m: Matrix = { rows: 3, cols: 2, data: Float64Array.from([1, 2, 3, 4, 5, 6]) };
    const bad = Int32Array.from([0, 3, 1]);
    await expect(backend.columnMoments(m, bad)).rejects.toThrow(/order\[1\] = 3 outside \[0, 3\)/);
    const block = { features: m, keep: [0], means: [0], scale: 1 };
    await expect(backend.assembleBlocks([block], bad)).rejects.toThrow(/order\[1\] = 3/);
    await expect(backend.assembleBlocks([block], Int32Array.from([0, 1]))).rejects.toThrow(
      /an order of 2 rows/,
    );
  });

  it.for(suite.cases.map((c) => [`${c.kernel} ${c.name}`, c] as const))('%s', async ([, c], ctx) => {
    if (!backend) return skipUnlessRequired(ctx.skip, unavailable);
    const actual = await run(backend, c);
    const tol = backend.precision === 'float32' ? c.tolerance32 : c.tolerance;
    for (const [key, expected] of Object.entries(c.expected)) {
      compare(key, actual[key], expected as JsonMatrix | number[] | number, tol, c.minEqual);
    }
  });
});
