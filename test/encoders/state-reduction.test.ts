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
import { resolveConfig } from '../../src/config/load.js';
import type { ConfigOverrides } from '../../src/config/schema.js';
import { type Matrix, readFeatures } from '../../src/core/matrix.js';
import { Random } from '../../src/core/random.js';
import { sampleKeys } from '../../src/encoders/drive.js';
import { createEsn, fitEsnStates, runEsn as runEsnKept } from '../../src/encoders/esn.js';
import { featureWidths } from '../../src/encoders/pipeline.js';
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
    expect(featureWidths('esn', config.encoders, 1, STEPS, true).raw).toBe(features.cols);
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
