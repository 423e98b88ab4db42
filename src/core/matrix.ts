/**
 * The matrices every layer passes around: dense row-major host matrices, features a backend kept on
 * its device, and the small result records of the K-means kernels. Leaf types: they import nothing.
 */

/** Names of the backends this engine knows; not all are built into every version. */
export const BACKEND_NAMES = ['js', 'wasm', 'webgpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** Dense row-major storage; float32 for device-friendly data, float64 where precision matters. */
export type Floats = Float32Array | Float64Array;

/** A dense row-major matrix. */
export interface Matrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: Floats;
}

/**
 * A matrix an encoder kernel left on its device (asked to `keep` it), for the next kernel to take
 * from there: it has no host copy until {@link read}. Only the backend that made it takes it as
 * input, and it holds device memory until {@link release}.
 */
export interface DeviceMatrix {
  readonly rows: number;
  readonly cols: number;
  /** The backend that holds it. */
  readonly backend: BackendName;
  /** Copies it to the host (one readback); a non-finite value is a numerical error. */
  read(): Promise<Matrix>;
  /** Frees its device memory; idempotent. It cannot be used afterwards. */
  release(): void;
}

/** Features on the host, or kept on the device by the backend that computed them. */
export type Features = Matrix | DeviceMatrix;

/** Whether features are kept on a device (no host values to read). */
export function isDeviceMatrix(m: Features): m is DeviceMatrix {
  return !('data' in m);
}

/** Features on the host: read back from the device when kept there. */
export async function readFeatures(m: Features): Promise<Matrix> {
  return isDeviceMatrix(m) ? m.read() : m;
}

/** Per column, the mean and the population variance. */
export interface Moments {
  readonly means: Float64Array;
  readonly variances: Float64Array;
}

/**
 * One block of the feature matrix K-means clusters: the kept columns of an encoder's output (or
 * the input), centred by their means and multiplied by the block's scale.
 */
export interface FeatureBlock {
  readonly features: Features;
  /** Column indices into `features`, ascending. */
  readonly keep: readonly number[];
  /** One per kept column. */
  readonly means: readonly number[];
  readonly scale: number;
}

/** Labels of the nearest centroid and the squared distance to it, per point. */
export interface Assignment {
  readonly labels: Int32Array;
  readonly distances: Float64Array;
}

/** Per-cluster sums of the points (k x d, row-major) and their counts. */
export interface ClusterSums {
  readonly sums: Float64Array;
  readonly counts: Float64Array;
}

/** One fused Lloyd pass: assignment, per-cluster sums, objective and number of labels that changed. */
export interface LloydStep extends ClusterSums {
  readonly inertia: number;
  readonly changed: number;
}

/** Checks that a row order lists n rows, each in [0, n), before a kernel reads rows through it. */
export function checkOrder(order: Int32Array | undefined, n: number, what: string): void {
  if (!order) return;
  if (order.length !== n) throw new RangeError(`${what}: an order of ${order.length} rows for ${n} rows`);
  for (let i = 0; i < n; i++) {
    const r = order[i]!;
    if (!(r >= 0 && r < n)) throw new RangeError(`${what}: order[${i}] = ${r} outside [0, ${n})`);
  }
}
