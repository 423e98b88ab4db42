/**
 * The shipped NumPy / scikit-learn reference (bench/reference/reference.py) computes what the
 * engine's bench workloads compute: its --check output (inputs and result at a small shape) is run
 * through the reference backend's kernels and compared. A reference that drifted from the kernels
 * would make every `bench --compare` ratio a comparison of two different things.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JsBackend } from '../../src/backends/js/js-backend.js';
import { silhouette } from '../../src/cluster/metrics.js';
import type { Matrix } from '../../src/core/matrix.js';
import { recurrentWeights } from '../../src/encoders/weights.js';
import { ROOT } from '../helpers.js';

const SCRIPT = join(ROOT, 'bench/reference/reference.py');
const hasSklearn =
  spawnSync('/usr/bin/python3', ['-c', 'import sklearn, scipy'], { stdio: 'ignore' }).status === 0;
const backend = new JsBackend();

/** What reference.py --check prints for each workload (flattened row-major arrays). */
interface EsnCheck {
  inputs: number[];
  inputWeights: number[];
  recurrent: number[];
  out: number[];
}
interface LifCheck {
  probabilities: number[];
  inputWeights: number[];
  out: number[];
}
interface KMeansCheck {
  points: number[];
  start: number[];
  centers: number[];
  iterations: number;
}
interface SilhouetteCheck {
  points: number[];
  labels: number[];
  score: number;
}

function check<T>(workload: string, args: string[]): T {
  const r = spawnSync('/usr/bin/python3', [SCRIPT, workload, ...args, '--check'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

function matrix(data: number[], rows: number, cols: number): Matrix {
  return { rows, cols, data: Float32Array.from(data) };
}

function expectClose(actual: ArrayLike<number>, expected: readonly number[], tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++)
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!) / Math.max(1, Math.abs(expected[i]!)));
  expect(worst).toBeLessThan(tolerance);
}

describe.runIf(hasSklearn)('bench/reference/reference.py against the kernels', () => {
  it.each([
    ['esn', 1],
    ['esn', 0.2],
    ['esn-seq', 1],
  ] as const)('%s at connectivity %s: the same final states', (workload, connectivity) => {
    const [n, d, r, t] = [7, 3, 24, 12];
    const sequence = workload === 'esn-seq';
    const c = check<EsnCheck>(workload, [
      '--n',
      `${n}`,
      '--d',
      `${d}`,
      '--r',
      `${r}`,
      '--t',
      `${t}`,
      '--leak',
      '0.4',
      '--connectivity',
      `${connectivity}`,
      '--seed',
      '3',
    ]);
    const w = matrix(c.recurrent, r, r);
    const recurrent = recurrentWeights(w);
    expect(recurrent.kind).toBe(connectivity < 1 ? 'csr' : 'dense');
    return backend
      .reservoirRun({
        inputs: matrix(c.inputs, n, sequence ? t * d : d),
        inputDim: d,
        steps: t,
        sequence,
        inputWeights: matrix(c.inputWeights, d, r),
        recurrent,
        leak: 0.4,
        readout: { last: true },
      })
      .then((out) => expectClose(out.data, c.out, 1e-4));
  });

  it('lif: the same spike counts for spike trains that do not depend on the generator', async () => {
    const [n, d, r, t] = [9, 4, 32, 40];
    const c = check<LifCheck>('lif', ['--n', `${n}`, '--d', `${d}`, '--r', `${r}`, '--t', `${t}`]);
    expect(new Set(c.probabilities.map((p) => (p > 0.5 ? 1 : 0))).size).toBe(2);
    const out = await backend.spikingRun({
      inputs: matrix(c.probabilities, n, d),
      inputDim: d,
      steps: t,
      sequence: false,
      encoding: 'rate',
      seed: 1,
      sampleKeys: Uint32Array.from({ length: n }, (_, i) => i),
      inputWeights: matrix(c.inputWeights, d, r),
      decay: 1 / 20,
      threshold: 1,
      reset: 0,
      refractorySteps: 0,
      traceDecay: 0,
      readout: 'counts',
      windows: 1,
    });
    expect(Array.from(out.data)).toEqual(c.out);
    expect(c.out.some((v) => v > 0)).toBe(true);
  });

  it('kmeans: the same centres after the same Lloyd iterations from the same start', async () => {
    const [n, d, k, iters] = [600, 3, 5, 4];
    const c = check<KMeansCheck>('kmeans', [
      '--n',
      `${n}`,
      '--d',
      `${d}`,
      '--k',
      `${k}`,
      '--iters',
      `${iters}`,
    ]);
    const points = matrix(c.points, n, d);
    let centers = matrix(c.start, k, d);
    const labels = new Int32Array(n).fill(-1);
    for (let i = 0; i < c.iterations; i++) {
      const step = await backend.kmeansStep(points, centers, labels);
      centers = {
        rows: k,
        cols: d,
        data: Float64Array.from(step.sums, (s, j) => s / step.counts[Math.floor(j / d)]!),
      };
    }
    expectClose(centers.data, c.centers, 1e-5);
  });

  it('silhouette: the same score', async () => {
    const c = check<SilhouetteCheck>('silhouette', ['--n', '300', '--d', '3', '--k', '4']);
    const score = await silhouette(backend, matrix(c.points, 300, 3), Int32Array.from(c.labels), 4);
    expect(score).toBeCloseTo(c.score, 6);
  });
});
