/**
 * The benchmark workloads of `bench/reference/reference.py`, made and run the same way: data
 * made first (float32, as the reference), then only the work the reference times is timed.
 */
import { type Backend, BackendRegistry } from '../backends/backend.js';
import { kmeans } from '../cluster/kmeans.js';
import { silhouette } from '../cluster/metrics.js';
import type { Matrix } from '../core/matrix.js';
import { Random } from '../core/random.js';
import { recurrentWeights, reservoirMatrix, uniformMatrix } from '../encoders/weights.js';

export interface WorkloadShape {
  readonly n: number;
  readonly d: number;
  readonly k: number;
  readonly iters: number;
  readonly seed: number;
  /** Reservoir or layer size, time steps, leak rate, fraction of non-zero recurrent weights. */
  readonly r: number;
  readonly t: number;
  readonly leak: number;
  readonly connectivity: number;
}

/** A prepared workload: `run` does the timed work once; `flops` is the reference's count. */
export interface PreparedWorkload {
  readonly shape: Record<string, number>;
  readonly flops: number;
  run(): Promise<unknown>;
}

/**
 * A registry holding exactly this backend instance (taken for small problems too), so that a
 * clusterer given it runs there and nowhere else: how the benches compare backends.
 */
export function registryOf(backend: Backend): BackendRegistry {
  const registry = new BackendRegistry();
  registry.register({ name: backend.name, priority: 0, smallProblems: true, create: async () => backend });
  return registry;
}

/**
 * Isotropic Gaussian blobs like scikit-learn's make_blobs: centres uniform in [-10, 10]^d, standard
 * deviation `std` (1 by default), samples split evenly over the centres.
 */
export function makeBlobs(
  n: number,
  d: number,
  centers: number,
  seed: number,
  std = 1,
): { points: Matrix; truth: Int32Array } {
  const rng = new Random(seed);
  const c = Float64Array.from({ length: centers * d }, () => rng.float() * 20 - 10);
  const data = new Float32Array(n * d);
  const truth = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = Math.floor((i * centers) / n);
    truth[i] = j;
    for (let t = 0; t < d; t++) data[i * d + t] = c[j * d + t]! + std * rng.normal();
  }
  return { points: { rows: n, cols: d, data }, truth };
}

function normalMatrix32(rng: Random, rows: number, cols: number, scale = 1): Matrix {
  return { rows, cols, data: Float32Array.from({ length: rows * cols }, () => rng.normal() * scale) };
}

/** The reservoir of reference.py: W_in uniform in [-1, 1], W normal, sparsified, spectral radius 0.9. */
function esnWorkload(backend: Backend, s: WorkloadShape, sequence: boolean): PreparedWorkload {
  const rng = new Random(s.seed);
  const inputWeights = uniformMatrix(rng, s.d, s.r, 1);
  const w = reservoirMatrix(rng, s.r, s.connectivity, 0.9);
  const recurrent = s.connectivity < 1 ? recurrentWeights(w) : { kind: 'dense' as const, matrix: w };
  const nnz = recurrent.kind === 'csr' ? recurrent.values.length : s.r * s.r;
  const inputs = normalMatrix32(rng, s.n, sequence ? s.t * s.d : s.d);
  return {
    shape: { r: s.r, t: s.t, leak: s.leak, connectivity: s.connectivity },
    flops: 2 * s.n * s.t * (nnz + s.d * s.r),
    run: () =>
      backend.reservoirRun({
        inputs,
        inputDim: s.d,
        steps: s.t,
        sequence,
        inputWeights,
        recurrent,
        leak: s.leak,
        readout: { last: true },
      }),
  };
}

export const WORKLOADS = {
  /** Leaky tanh reservoir driven by a static input held for T steps; final state. */
  esn: (backend: Backend, s: WorkloadShape) => esnWorkload(backend, s, false),
  /** The same reservoir driven by a sequence of T inputs; final state. */
  'esn-seq': (backend: Backend, s: WorkloadShape) => esnWorkload(backend, s, true),
  /**
   * reference.py's LIF layer: Bernoulli rate-coded input p = sigmoid(u), v <- v - v/20 + s W_in,
   * a spike where v >= 1, then v <- 0; features are spike counts.
   */
  lif(backend: Backend, s: WorkloadShape): PreparedWorkload {
    const rng = new Random(s.seed);
    const inputWeights = normalMatrix32(rng, s.d, s.r, 0.5);
    const u = normalMatrix32(rng, s.n, s.d);
    const probabilities = {
      ...u,
      data: Float32Array.from(u.data, (v) => Math.fround(1 / (1 + Math.exp(-v)))),
    };
    const keys = Uint32Array.from({ length: s.n }, (_, i) => i);
    return {
      shape: { r: s.r, t: s.t },
      flops: 2 * s.n * s.t * s.d * s.r,
      run: () =>
        backend.spikingRun({
          inputs: probabilities,
          inputDim: s.d,
          steps: s.t,
          sequence: false,
          encoding: 'rate',
          seed: s.seed + 1,
          sampleKeys: keys,
          inputWeights,
          decay: 1 / 20,
          threshold: 1,
          reset: 0,
          refractorySteps: 0,
          traceDecay: 0,
          readout: 'counts',
          windows: 1,
        }),
    };
  },
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

/** The header of a version-1 NPY file of a C-order array (padded to 64 bytes, as NumPy writes it). */
export function npyHeader(shape: readonly number[], descr: '<f4' | '<f8' | '<i4'): Uint8Array {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const text = `${dict}${' '.repeat(total - 10 - dict.length - 1)}\n`;
  const out = new Uint8Array(total);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0]);
  new DataView(out.buffer).setUint16(8, text.length, true);
  out.set(new TextEncoder().encode(text), 10);
  return out;
}

/**
 * Writes blobs as {@link makeBlobs} makes them (the same centres and rows for a seed) to
 * `path` (float32 NPY, n x d) and their true cluster to `truthPath` (int32 NPY), a chunk at a
 * time, so files of any size are made in bounded memory.
 */
export async function writeBlobsNpy(
  path: string,
  truthPath: string,
  n: number,
  d: number,
  centers: number,
  seed: number,
  std = 1,
): Promise<void> {
  const { open } = await import('node:fs/promises');
  const rng = new Random(seed);
  const c = Float64Array.from({ length: centers * d }, () => rng.float() * 20 - 10);
  const data = await open(path, 'w');
  const truth = await open(truthPath, 'w');
  try {
    await data.write(npyHeader([n, d], '<f4'));
    await truth.write(npyHeader([n], '<i4'));
    const rows = 1 << 16;
    const values = new Float32Array(rows * d);
    const labels = new Int32Array(rows);
    for (let start = 0; start < n; start += rows) {
      const count = Math.min(rows, n - start);
      for (let r = 0; r < count; r++) {
        const i = start + r;
        const j = Math.floor((i * centers) / n);
        labels[r] = j;
        for (let t = 0; t < d; t++) values[r * d + t] = c[j * d + t]! + std * rng.normal();
      }
      await data.write(new Uint8Array(values.buffer, 0, count * d * 4));
      await truth.write(new Uint8Array(labels.buffer, 0, count * 4));
    }
  } finally {
    await data.close();
    await truth.close();
  }
}
