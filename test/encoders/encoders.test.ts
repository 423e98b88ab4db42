/**
 * Properties of the neuromorphic encoders: row order does not matter (bit for bit), a saved model
 * predicts what fit labelled, every encoder responds to its main dynamic parameter, and sequences
 * drive the reservoirs step by step.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JsBackend } from '../../src/backends/js/js-backend.js';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { resolveConfig } from '../../src/config/load.js';
import type { ConfigOverrides, EncoderMethod } from '../../src/config/schema.js';
import { type Matrix, readFeatures } from '../../src/core/matrix.js';
import { Random } from '../../src/core/random.js';
import { datasetFromRows, loadDataset } from '../../src/data/load.js';
import { inSampleChunks, sliceRows } from '../../src/encoders/chunks.js';
import { sampleKeys } from '../../src/encoders/drive.js';
import { createEsn, runEsn as runEsnKept } from '../../src/encoders/esn.js';
import { modelSpace } from '../../src/encoders/model-space.js';
import { createLsm, createSnn, runSpiking as runSpikingKept } from '../../src/encoders/spiking.js';
import { createLogger } from '../../src/observability/logger.js';
import { failure, ROOT, tempDir } from '../helpers.js';

const dir = tempDir();
const logger = createLogger({ level: 'silent' });
const backend = new JsBackend();
/** The encoders' features on the host (a CPU backend never keeps them on a device anyway). */
const runEsn = async (...args: Parameters<typeof runEsnKept>) => readFeatures(await runEsnKept(...args));
const runSpiking = async (...args: Parameters<typeof runSpikingKept>) =>
  readFeatures(await runSpikingKept(...args));
const METHODS: EncoderMethod[] = ['esn', 'snn', 'lsm', 'hybrid'];

/** 36 labelled series of length 24 (sines, ramps, steps), as rows of [label, t0..t23]. */
function makeSeries(seed: number): { rows: number[][]; truth: number[] } {
  const rng = new Random(seed);
  const rows: number[][] = [];
  const truth: number[] = [];
  for (let i = 0; i < 36; i++) {
    const kind = i % 3;
    truth.push(kind);
    rows.push(
      Array.from({ length: 24 }, (_, t) => {
        const base = kind === 0 ? Math.sin(t / 2) : kind === 1 ? t / 12 - 1 : t < 12 ? -1 : 1;
        return base + 0.2 * rng.normal();
      }),
    );
  }
  return { rows, truth };
}

const iris = await loadDataset(`${ROOT}/examples/iris.csv`, { labelColumn: 'species', nanPolicy: 'error' });
const irisRows = Array.from({ length: iris.n }, (_, i) => Array.from(iris.values.subarray(i * 4, i * 4 + 4)));
const series = makeSeries(3).rows;

function shuffled<T>(rows: T[], seed: number): { rows: T[]; from: number[] } {
  const from = Array.from(new Random(seed).sample(rows.length, rows.length));
  return { rows: from.map((i) => rows[i]!), from };
}

function rowOf(m: Matrix, i: number): number[] {
  return Array.from(m.data.subarray(i * m.cols, (i + 1) * m.cols));
}

function clusterer(method: EncoderMethod | 'kmeans', k: number, config: ConfigOverrides = {}) {
  return new NeuromorphicClusterer({ method, nClusters: k, seed: 7, logger, config });
}

describe.each([
  ['tabular (iris)', irisRows, 3, {}],
  ['time series', series, 3, { data: { seriesLength: 24 } }],
] as const)('on %s', (_name, rows, k, config) => {
  it.each(METHODS)('%s: shuffling the rows permutes features and labels bit for bit', async (method) => {
    const a = await clusterer(method, k, config).fit(rows as number[][]);
    const { rows: mixed, from } = shuffled(rows as number[][], 11);
    const b = await clusterer(method, k, config).fit(mixed);
    expect(b.features.cols).toBe(a.features.cols);
    from.forEach((src, pos) => {
      expect(rowOf(b.features, pos)).toEqual(rowOf(a.features, src));
      expect(b.labels[pos]).toBe(a.labels[src]);
    });
  });

  it.each(METHODS)('%s: load(save(model)).predict(X) returns the labels of fit', async (method) => {
    const fitted = clusterer(method, k, config);
    const result = await fitted.fit(rows as number[][]);
    const path = join(dir, `${method}.model.json`);
    await fitted.save(path);
    const loaded = await NeuromorphicClusterer.load(path, { logger });
    expect(Array.from(await loaded.predict(rows as number[][]))).toEqual(Array.from(result.labels));
  });
});

describe('encoders respond to their dynamics (none is a disguised random projection)', () => {
  const config = resolveConfig();
  const data = datasetFromRows(irisRows, { nanPolicy: 'error' });
  const points: Matrix = { rows: data.n, cols: 4, data: data.values };
  const input = { points, sampleKeys: sampleKeys(points) };

  /** Relative Frobenius distance between two feature matrices. */
  function change(a: Matrix, b: Matrix): number {
    let diff = 0;
    let norm = 0;
    for (let i = 0; i < a.data.length; i++) {
      diff += (a.data[i]! - b.data[i]!) ** 2;
      norm += a.data[i]! ** 2;
    }
    return Math.sqrt(diff / norm);
  }

  // For a static input the leak sets the transient the mean state sees (the fixed point itself does
  // not depend on it); for a sequence it sets the reservoir's memory.
  it.each([
    ['leak', { leak: 0.05 }],
    ['spectral radius', { spectralRadius: 0.3 }],
  ] as const)('esn: %s', async (_t, changed) => {
    const base = await runEsn(backend, createEsn(config.encoders.esn, 4, 1), input);
    const other = await runEsn(backend, createEsn({ ...config.encoders.esn, ...changed }, 4, 1), input);
    expect(change(base, other)).toBeGreaterThan(0.05);
  });

  it.each([
    ['snn', 'threshold', { threshold: 2 }],
    ['snn', 'membrane time constant', { tauMembrane: 5 }],
    ['lsm', 'threshold', { threshold: 2 }],
    ['lsm', 'membrane time constant', { tauMembrane: 3 }],
  ] as const)('%s: %s', async (kind, _t, changed) => {
    const make = (p: object) =>
      kind === 'snn'
        ? createSnn({ ...config.encoders.snn, ...p }, 4, 1, 42)
        : createLsm({ ...config.encoders.lsm, ...p }, 4, 1, 42);
    const base = await runSpiking(backend, make({}), input);
    const other = await runSpiking(backend, make(changed), input);
    expect(change(base, other)).toBeGreaterThan(0.05);
  });

  it("the liquid's recurrence matters: without it the features change", async () => {
    const lsm = createLsm(config.encoders.lsm, 4, 1, 42);
    const base = await runSpiking(backend, lsm, input);
    const cut = await runSpiking(backend, { ...lsm, recurrent: undefined }, input);
    expect(change(base, cut)).toBeGreaterThan(0.05);
  });
});

describe('sequences drive the reservoirs step by step', () => {
  const data = datasetFromRows(series, { nanPolicy: 'error', seriesLength: 24 });
  const points: Matrix = { rows: data.n, cols: 24, data: data.values };
  const input = { points, series: { length: 24, dims: 1 }, sampleKeys: sampleKeys(points) };
  const config = resolveConfig();

  it('the model-space readout gives (units + 1) x dims coefficients per series, each direction', async () => {
    const forward = createEsn({ ...config.encoders.esn, bidirectional: false }, 1, 1);
    const features = await runEsn(backend, forward, input);
    expect([features.rows, features.cols]).toEqual([36, 101]);
    const both = await runEsn(backend, createEsn(config.encoders.esn, 1, 1), input);
    expect([both.rows, both.cols]).toEqual([36, 202]);
  });

  it('bidirectional: the forward features, then those of each series read from its end', async () => {
    const esn = createEsn({ ...config.encoders.esn, bidirectional: false }, 1, 1);
    const both = await runEsn(backend, { ...esn, params: { ...esn.params, bidirectional: true } }, input);
    const forward = await runEsn(backend, esn, input);
    const backward = await runEsn(backend, esn, {
      ...input,
      points: { ...points, data: Float64Array.from(series.flatMap((r) => [...r].reverse())) },
    });
    expect([both.rows, both.cols]).toEqual([36, 202]);
    for (let r = 0; r < 36; r++) {
      expect(Array.from(both.data.subarray(r * 202, r * 202 + 101))).toEqual(Array.from(rowOf(forward, r)));
      expect(Array.from(both.data.subarray(r * 202 + 101, (r + 1) * 202))).toEqual(
        Array.from(rowOf(backward, r)),
      );
    }
  });

  it('the leak sets the memory of a sequence-driven reservoir', async () => {
    const slow = await runEsn(backend, createEsn({ ...config.encoders.esn, leak: 0.1 }, 1, 1), input);
    const fast = await runEsn(backend, createEsn({ ...config.encoders.esn, leak: 0.9 }, 1, 1), input);
    expect(rowOf(slow, 0)).not.toEqual(rowOf(fast, 0));
  });

  it('the model space is the same computed in chunks of samples (bounded memory) or at once', async () => {
    const esn = createEsn(config.encoders.esn, 1, 1);
    const all = Array.from({ length: 24 }, (_, t) => t);
    const drive = { inputs: points, inputDim: 1, steps: 24, sequence: true };
    const run = (inputs: Matrix) =>
      backend.reservoirRun({ ...drive, inputs, ...esn, leak: 0.3, readout: { times: all } });
    const whole = modelSpace(await run(points), 100, drive, 5, 1);
    const calls: number[] = [];
    const options = { bytesPerSample: 24 * 100 * 8, budgetBytes: 24 * 100 * 8 * 10 };
    const chunked = await inSampleChunks(36, options, async (start, end) => {
      calls.push(end - start);
      const part = { ...drive, inputs: sliceRows(points, start, end) };
      return modelSpace(await run(part.inputs), 100, part, 5, 1);
    });
    expect(calls).toEqual([10, 10, 10, 6]);
    expect(Array.from(chunked.data)).toEqual(Array.from(whole.data));
  });

  it('a cancelled operation stops between chunks of samples', async () => {
    const controller = new AbortController();
    const calls: number[] = [];
    const run = inSampleChunks(
      36,
      { bytesPerSample: 8, budgetBytes: 80, signal: controller.signal },
      async (s, e) => {
        calls.push(s);
        if (s === 10) controller.abort();
        return sliceRows(points, s, e);
      },
    );
    await expect(run).rejects.toThrow(/aborted/);
    expect(calls).toEqual([0, 10]);
  });

  it('reversing every series in time changes its features', async () => {
    const esn = createEsn(config.encoders.esn, 1, 1);
    const reversed = {
      ...input,
      points: { ...points, data: Float64Array.from(series.flatMap((r) => [...r].reverse())) },
    };
    const a = await runEsn(backend, esn, input);
    const b = await runEsn(backend, esn, reversed);
    expect(rowOf(a, 0)).not.toEqual(rowOf(b, 0));
  });

  it('the model space separates the three kinds of series', async () => {
    const { rows, truth } = makeSeries(5);
    const result = await clusterer('esn', 3, { data: { seriesLength: 24 } }).fit(rows);
    const { externalQuality } = await import('../../src/cluster/metrics.js');
    expect(externalQuality(truth, result.labels).ari).toBeGreaterThan(0.8);
  });

  it('refuses with a clear error when the encoders produce nothing that varies', async () => {
    // Series of length 1 z-normalize to zeros: no encoder can tell them apart.
    const e = await failure(clusterer('hybrid', 2, { data: { seriesLength: 1 } }).fit([[1], [2], [3]]));
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_SHAPE');
    expect(e.message).toMatch(/no feature that varies/);
  });

  it('refuses the model-space readout for a static input', async () => {
    const e = await failure(
      clusterer('esn', 3, { encoders: { esn: { readout: 'model-space' } } }).fit(irisRows),
    );
    expect(e.code).toBe('NEUROCLUSTER_ERR_INVALID_ARGUMENT');
  });
});
