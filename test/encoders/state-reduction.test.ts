/**
 * The ESN's reduced states (`encoders.esn.stateComponents`) and its reservoir model space
 * (`modelSpaceTarget: "state"`): the readout is the ridge regression of the next reduced state on
 * the current one, the PCA is fitted on the training series whatever their order, and a saved
 * model encodes new series with the PCA it was fitted with.
 */
import { join } from 'node:path';
import { Matrix as MlMatrix, solve } from 'ml-matrix';
import { describe, expect, it } from 'vitest';
import { JsBackend } from '../../src/backends/js/js-backend.js';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { settleEncoders } from '../../src/config/auto.js';
import { resolveConfig } from '../../src/config/load.js';
import type { ConfigOverrides } from '../../src/config/schema.js';
import { type Matrix, readFeatures } from '../../src/core/matrix.js';
import { Random } from '../../src/core/random.js';
import { sampleKeys } from '../../src/encoders/drive.js';
import { createEsn, fitEsnStates, runEsn as runEsnKept } from '../../src/encoders/esn.js';
import { featureWidths } from '../../src/encoders/pipeline.js';
import { fitPca } from '../../src/linalg/pca.js';
import { createLogger } from '../../src/observability/logger.js';
import { tempDir } from '../helpers.js';

const dir = tempDir();
const logger = createLogger({ level: 'silent' });
const backend = new JsBackend();
const runEsn = async (...args: Parameters<typeof runEsnKept>) => readFeatures(await runEsnKept(...args));
const STEPS = 30;
const UNITS = 40;

/** 30 noisy series of three shapes (sine, ramp, step). */
function makeSeries(): number[][] {
  const rng = new Random(5);
  return Array.from({ length: 30 }, (_, i) =>
    Array.from({ length: STEPS }, (_, t) => {
      const kind = i % 3;
      const base = kind === 0 ? Math.sin(t / 3) : kind === 1 ? t / 15 - 1 : t < 15 ? -1 : 1;
      return base + 0.2 * rng.normal();
    }),
  );
}

const rows = makeSeries();
const points: Matrix = { rows: rows.length, cols: STEPS, data: Float64Array.from(rows.flat()) };
const input = { points, series: { length: STEPS, dims: 1 }, sampleKeys: sampleKeys(points) };
const identity = Int32Array.from(rows.keys());

const reduced = (target: 'input' | 'state', bidirectional = false): ConfigOverrides => ({
  data: { seriesLength: STEPS },
  encoders: { esn: { units: UNITS, stateComponents: 6, modelSpaceTarget: target, bidirectional } },
});

describe('the ESN reduced states and reservoir model space', () => {
  const params = { ...resolveConfig().encoders.esn, units: UNITS, bidirectional: false, stateComponents: 6 };

  it('reads a readout of the reduced states that predicts the next reduced state, as ridge regression', async () => {
    const esn = await fitEsnStates(
      backend,
      createEsn({ ...params, modelSpaceTarget: 'state' }, 1, 3),
      input,
      identity,
    );
    const pca = esn.statePca!;
    expect(pca.nComponents).toBe(6);
    const features = await runEsn(backend, esn, input);
    expect([features.rows, features.cols]).toEqual([30, 7 * 6]);
    // The same series' states, projected here by hand, and the ridge solution of the normal equations.
    const states = await backend.reservoirRun({
      inputs: points,
      inputDim: 1,
      steps: STEPS,
      sequence: true,
      ...esn,
      leak: params.leak,
      readout: { times: Array.from({ length: STEPS }, (_, t) => t) },
    });
    const series = 4;
    const z = Array.from({ length: STEPS }, (_, t) =>
      Array.from({ length: 6 }, (_, c) => {
        let v = 0;
        for (let j = 0; j < UNITS; j++) {
          const x = states.data[series * states.cols + t * UNITS + j]!;
          v += (x - pca.mean[j]!) * pca.components[c * UNITS + j]!;
        }
        return v;
      }),
    );
    const design = new MlMatrix(z.slice(params.washout, STEPS - 1).map((r) => [1, ...r]));
    const next = new MlMatrix(z.slice(params.washout + 1));
    const gram = design.transpose().mmul(design).add(MlMatrix.eye(7).mul(params.ridge));
    const w = solve(gram, design.transpose().mmul(next));
    const got = features.data.subarray(series * 42, (series + 1) * 42);
    for (let a = 0; a < 7; a++)
      for (let q = 0; q < 6; q++) expect(got[a * 6 + q]).toBeCloseTo(w.get(a, q), 9);
  });

  it('fits the PCA on 256 series taken along the canonical order, thinned, whatever the row order', async () => {
    // 300 series of 80 steps read both ways: 300 x 75 x 2 states, more than the 32,768 kept.
    const rng = new Random(8);
    const long = Array.from({ length: 300 }, () => Array.from({ length: 80 }, () => rng.normal()));
    const at = (rows: number[][]): Matrix => ({ rows: 300, cols: 80, data: Float64Array.from(rows.flat()) });
    const esn = createEsn({ ...params, bidirectional: true }, 1, 3);
    const of = (m: Matrix) => ({ points: m, series: { length: 80, dims: 1 }, sampleKeys: sampleKeys(m) });
    const order = Int32Array.from(new Random(2).sample(300, 300));
    const a = (await fitEsnStates(backend, esn, of(at(long)), order)).statePca!;
    // The same series in another row order, with the order that names the same series.
    const from = Array.from(new Random(4).sample(300, 300));
    const where = new Int32Array(300);
    from.forEach((src, pos) => {
      where[src] = pos;
    });
    const moved = Int32Array.from(order, (src) => where[src]!);
    const b = (await fitEsnStates(backend, esn, of(at(from.map((i) => long[i]!))), moved)).statePca!;
    expect(Array.from(b.components)).toEqual(Array.from(a.components));
    // Another order picks other series: the PCA is fitted on the sample, not on every series.
    const c = (await fitEsnStates(backend, esn, of(at(long)), Int32Array.from(order).reverse())).statePca!;
    expect(Array.from(c.mean)).not.toEqual(Array.from(a.mean));
  });

  it('fits the PCA on each series to its own end when lengths differ', async () => {
    const lengths = Int32Array.from({ length: 30 }, (_, i) => 12 + (i % 19));
    const padded = Float64Array.from(points.data);
    for (let i = 0; i < 30; i++) padded.fill(0, i * STEPS + lengths[i]!, (i + 1) * STEPS);
    const values: Matrix = { rows: 30, cols: STEPS, data: padded };
    const esn = createEsn(params, 1, 3);
    const fitted = await fitEsnStates(backend, esn, { ...input, padded: { values, lengths } }, identity);
    // The states each series reaches alone, from the washout to its own end, by hand.
    const kept: number[][] = [];
    for (let i = 0; i < 30; i++) {
      const alone = Array.from(padded.subarray(i * STEPS, i * STEPS + lengths[i]!));
      const states = await backend.reservoirRun({
        inputs: { rows: 1, cols: alone.length, data: Float64Array.from(alone) },
        inputDim: 1,
        steps: alone.length,
        sequence: true,
        ...esn,
        leak: params.leak,
        readout: { times: Array.from({ length: alone.length }, (_, t) => t) },
      });
      for (let t = params.washout; t < alone.length; t++)
        kept.push(Array.from(states.data.subarray(t * UNITS, (t + 1) * UNITS)));
    }
    const reference = await fitPca(
      backend,
      { rows: kept.length, cols: UNITS, data: Float64Array.from(kept.flat()) },
      6,
    );
    const got = fitted.statePca!;
    for (let j = 0; j < UNITS; j++) expect(got.mean[j]).toBeCloseTo(reference.mean[j]!, 10);
    for (let i = 0; i < 6 * UNITS; i++) expect(got.components[i]).toBeCloseTo(reference.components[i]!, 6);
  });

  it('refuses more components than the reservoir has units', () => {
    expect(() => resolveConfig({ encoders: { esn: { units: 20, stateComponents: 30 } } })).toThrow(
      /encoders.esn.stateComponents: is more than encoders.esn.units \(20\)/,
    );
  });

  it('refuses to encode with a state PCA that was never fitted', async () => {
    await expect(runEsn(backend, createEsn(params, 1, 3), input)).rejects.toThrow(/not fitted/);
  });

  it.each([
    ['input', false],
    ['state', true],
  ] as const)('the widths the planner expects are the widths made (target %s)', async (target, both) => {
    // The ESN's features alone: without the input block the planner counts too.
    const config = resolveConfig(reduced(target, both), { encoders: { esn: { includeInput: false } } });
    const esn = await fitEsnStates(backend, createEsn(config.encoders.esn, 1, 3), input, identity);
    const features = await runEsn(backend, esn, input);
    const encoders = settleEncoders(config.encoders, 'esn', true, false);
    expect(featureWidths('esn', encoders, 1, STEPS, true).raw).toBe(features.cols);
  });

  it.each(['input', 'state'] as const)(
    'target %s: shuffled rows give the same labels, and a saved model predicts them',
    async (target) => {
      const make = () =>
        new NeuromorphicClusterer({
          method: 'hybrid',
          nClusters: 3,
          seed: 2,
          logger,
          config: reduced(target, true),
        });
      const fitted = make();
      const a = await fitted.fit(rows);
      const from = Array.from(new Random(9).sample(rows.length, rows.length));
      const b = await make().fit(from.map((i) => rows[i]!));
      expect(Array.from(b.labels)).toEqual(from.map((src) => a.labels[src]));
      const path = join(dir, `reduced-${target}.model.json`);
      await fitted.save(path);
      const loaded = await NeuromorphicClusterer.load(path, { logger });
      expect(Array.from(await loaded.predict(rows))).toEqual(Array.from(a.labels));
    },
  );
});
