/**
 * The benchmark workloads of `../shared/reference/reference.py`, made and run the same way: data
 * made first (float32, as the reference), then only the work the reference times is timed.
 */
import type { Backend, Matrix } from '../src/backends/backend.js';
import { kmeans } from '../src/cluster/kmeans.js';
import { silhouette } from '../src/cluster/metrics.js';
import { Random } from '../src/random.js';

export interface WorkloadShape {
  readonly n: number;
  readonly d: number;
  readonly k: number;
  readonly iters: number;
  readonly seed: number;
}

/** A prepared workload: `run` does the timed work once; `flops` is the reference's count. */
export interface PreparedWorkload {
  readonly shape: Record<string, number>;
  readonly flops: number;
  run(): Promise<unknown>;
}

/**
 * Isotropic Gaussian blobs like scikit-learn's make_blobs: centres uniform in [-10, 10]^d, unit
 * standard deviation, samples split evenly over the centres.
 */
export function makeBlobs(
  n: number,
  d: number,
  centers: number,
  seed: number,
): { points: Matrix; truth: Int32Array } {
  const rng = new Random(seed);
  const c = Float64Array.from({ length: centers * d }, () => rng.float() * 20 - 10);
  const data = new Float32Array(n * d);
  const truth = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = Math.floor((i * centers) / n);
    truth[i] = j;
    for (let t = 0; t < d; t++) data[i * d + t] = c[j * d + t]! + rng.normal();
  }
  return { points: { rows: n, cols: d, data }, truth };
}

export const WORKLOADS = {
  /** Lloyd k-means, random init, fixed iterations (tol = 0), one init. */
  kmeans(backend: Backend, s: WorkloadShape): PreparedWorkload {
    const { points } = makeBlobs(s.n, s.d, s.k, s.seed);
    return {
      shape: { k: s.k, iters: s.iters },
      flops: 3 * s.n * s.k * s.d * s.iters,
      run: () =>
        kmeans(backend, points, {
          k: s.k,
          nInit: 1,
          maxIter: s.iters,
          tol: 0,
          algorithm: 'lloyd',
          miniBatchThreshold: Number.MAX_SAFE_INTEGER,
          batchSize: 1024,
          maxNoImprovement: 10,
          seed: s.seed,
          init: 'random',
        }),
    };
  },
  /** Exact silhouette of N standard-normal points under k random labels. */
  silhouette(backend: Backend, s: WorkloadShape): PreparedWorkload {
    const rng = new Random(s.seed);
    const data = Float32Array.from({ length: s.n * s.d }, () => rng.normal());
    const labels = Int32Array.from({ length: s.n }, () => rng.int(s.k));
    const points = { rows: s.n, cols: s.d, data };
    return {
      shape: { k: s.k },
      flops: 3 * s.n * s.n * s.d,
      run: () => silhouette(backend, points, labels, s.k),
    };
  },
} as const satisfies Record<string, (backend: Backend, s: WorkloadShape) => PreparedWorkload>;

export type WorkloadName = keyof typeof WORKLOADS;
export const WORKLOAD_NAMES = Object.keys(WORKLOADS) as WorkloadName[];
