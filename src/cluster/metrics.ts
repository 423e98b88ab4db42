/**
 * Clustering quality, computed as scikit-learn computes it (float64 distances and accumulation),
 * so the figures agree with `sklearn.metrics` to a relative 1e-6.
 *
 * Internal: silhouette, Calinski-Harabasz, Davies-Bouldin, inertia. External (against ground
 * truth): adjusted Rand index, normalized mutual information (arithmetic mean), Rand index.
 */
import type { Backend } from '../backends/backend.js';
import { throwIfAborted } from '../core/cancel.js';
import { BackendError } from '../core/errors.js';
import type { Matrix } from '../core/matrix.js';
import { Random } from '../core/random.js';
import { maxAbsOf, SAFE_MAGNITUDE, scaleExponent } from '../linalg/moments.js';

/** Internal quality of a labelling; a metric is null where it is undefined (one cluster, or n). */
export interface InternalQuality {
  readonly silhouette: number | null;
  readonly calinskiHarabasz: number | null;
  readonly daviesBouldin: number | null;
  readonly inertia: number;
}

export interface ExternalQuality {
  readonly ari: number;
  readonly nmi: number;
  readonly randIndex: number;
}

/** Labels of any kind re-coded as 0..m-1 in order of first appearance. */
export function encodeLabels(values: ArrayLike<unknown>): { codes: Int32Array; count: number } {
  const index = new Map<unknown, number>();
  const codes = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    let c = index.get(v);
    if (c === undefined) {
      c = index.size;
      index.set(v, c);
    }
    codes[i] = c;
  }
  return { codes, count: index.size };
}

/** Rows per cluster 0..k-1; negative labels (rows suppressed by k-anonymity) are not counted. */
export function clusterSizes(labels: ArrayLike<number>, k: number): number[] {
  const sizes = new Array<number>(k).fill(0);
  for (let i = 0; i < labels.length; i++) if (labels[i]! >= 0) sizes[labels[i]!]!++;
  return sizes;
}

/** Per-cluster means (k x d) and sizes; negative labels are left out (an empty cluster's mean is NaN). */
export function clusterMeans(points: Matrix, labels: Int32Array, k: number) {
  const d = points.cols;
  const means = new Float64Array(k * d);
  const counts = new Float64Array(k);
  for (let i = 0; i < points.rows; i++) {
    const j = labels[i]!;
    if (j < 0) continue;
    counts[j]!++;
    for (let t = 0; t < d; t++) means[j * d + t]! += points.data[i * d + t]!;
  }
  for (let j = 0; j < k; j++) for (let t = 0; t < d; t++) means[j * d + t]! /= counts[j]!;
  return { means, counts };
}

/** Within-cluster sum of squared distances to the cluster means. */
export function withinClusterSS(points: Matrix, labels: Int32Array, k: number): number {
  const { means } = clusterMeans(points, labels, k);
  const d = points.cols;
  let ss = 0;
  for (let i = 0; i < points.rows; i++) {
    const j = labels[i]!;
    for (let t = 0; t < d; t++) ss += (points.data[i * d + t]! - means[j * d + t]!) ** 2;
  }
  return ss;
}

/**
 * The points, or (when their magnitude is past SAFE_MAGNITUDE either way, where squared distances
 * overflow or underflow float64) a copy scaled by the power of two near it: exact, and every ratio
 * the scale-free metrics are made of stays the same. `exponent`: the copy is the points times 2^-e.
 */
export function inSafeRange(points: Matrix): { points: Matrix; exponent: number } {
  const max = maxAbsOf(points.data);
  if (max === 0 || (max <= SAFE_MAGNITUDE && max >= 1 / SAFE_MAGNITUDE)) return { points, exponent: 0 };
  const e = scaleExponent(max);
  const down = 2 ** -e;
  return { points: { ...points, data: Float64Array.from(points.data, (v) => v * down) }, exponent: e };
}

/** Calinski-Harabasz index (variance ratio criterion); scale-free, for any finite magnitude. */
export function calinskiHarabasz(input: Matrix, labels: Int32Array, k: number): number {
  const points = inSafeRange(input).points;
  const { rows: n, cols: d, data } = points;
  const { means, counts } = clusterMeans(points, labels, k);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let t = 0; t < d; t++) mean[t]! += data[i * d + t]!;
  for (let t = 0; t < d; t++) mean[t]! /= n;
  return calinskiHarabaszOf(counts, means, mean, withinClusterSS(points, labels, k), d);
}

/**
 * Calinski-Harabasz from per-cluster moments: counts, means (k x d), the overall mean and the
 * within-cluster sum of squares; clusters with no point are left out.
 */
export function calinskiHarabaszOf(
  counts: ArrayLike<number>,
  means: ArrayLike<number>,
  mean: ArrayLike<number>,
  intra: number,
  d: number,
): number {
  let n = 0;
  let k = 0;
  let extra = 0;
  for (let j = 0; j < counts.length; j++) {
    if (counts[j]! === 0) continue;
    n += counts[j]!;
    k++;
    let s = 0;
    for (let t = 0; t < d; t++) s += (means[j * d + t]! - mean[t]!) ** 2;
    extra += counts[j]! * s;
  }
  return intra === 0 ? 1 : (extra * (n - k)) / (intra * (k - 1));
}

/**
 * Davies-Bouldin index: mean over clusters of the worst (s_i + s_j) / d(c_i, c_j); scale-free, for
 * any finite magnitude.
 */
export function daviesBouldin(input: Matrix, labels: Int32Array, k: number): number {
  const points = inSafeRange(input).points;
  const { rows: n, cols: d, data } = points;
  const { means, counts } = clusterMeans(points, labels, k);
  const intra = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const j = labels[i]!;
    let s = 0;
    for (let t = 0; t < d; t++) s += (data[i * d + t]! - means[j * d + t]!) ** 2;
    intra[j]! += Math.sqrt(s);
  }
  for (let j = 0; j < k; j++) intra[j]! /= counts[j]!;
  return daviesBouldinOf(intra, means, d);
}

/**
 * Davies-Bouldin from per-cluster moments: each cluster's mean distance to its centre, and the
 * centres (k x d); clusters with no point are given as NaN spreads and left out.
 */
export function daviesBouldinOf(spreads: ArrayLike<number>, centres: ArrayLike<number>, d: number): number {
  const kept = Array.from({ length: spreads.length }, (_, j) => j).filter((j) => !Number.isNaN(spreads[j]!));
  const k = kept.length;
  const intra = kept.map((j) => spreads[j]!);
  const centroidDist = new Float64Array(k * k);
  let anyIntra = false;
  let anyCentroid = false;
  for (let a = 0; a < k; a++) {
    if (intra[a]! !== 0) anyIntra = true;
    for (let b = 0; b < k; b++) {
      let s = 0;
      for (let t = 0; t < d; t++) s += (centres[kept[a]! * d + t]! - centres[kept[b]! * d + t]!) ** 2;
      centroidDist[a * k + b] = Math.sqrt(s);
      if (centroidDist[a * k + b] !== 0) anyCentroid = true;
    }
  }
  if (!anyIntra || !anyCentroid) return 0;
  let total = 0;
  for (let a = 0; a < k; a++) {
    let worst = 0;
    for (let b = 0; b < k; b++) {
      if (a === b) continue;
      const dist = centroidDist[a * k + b]!;
      const score = dist === 0 ? 0 : (intra[a]! + intra[b]!) / dist;
      if (score > worst) worst = score;
    }
    total += worst;
  }
  return total / k;
}

/** Rows per call of the cluster-distance kernel: bounded memory, and a chance to cancel. */
const SILHOUETTE_BLOCK = 512;

/** Mean silhouette coefficient over every point, exactly (O(n^2 d)). */
export async function silhouette(
  backend: Backend,
  points: Matrix,
  labels: Int32Array,
  k: number,
  signal?: AbortSignal,
): Promise<number> {
  const n = points.rows;
  const counts = new Float64Array(k);
  for (const j of labels) counts[j]!++;
  let total = 0;
  for (let start = 0; start < n; start += SILHOUETTE_BLOCK) {
    throwIfAborted(signal);
    const end = Math.min(n, start + SILHOUETTE_BLOCK);
    const sums = await backend.clusterDistanceSums(points, labels, k, start, end);
    for (let i = start; i < end; i++) {
      const own = labels[i]!;
      const size = counts[own]!;
      if (size <= 1) continue; // a singleton scores 0, as in scikit-learn
      const row = (i - start) * k;
      const a = sums[row + own]! / (size - 1);
      let b = Number.POSITIVE_INFINITY;
      for (let j = 0; j < k; j++) {
        if (j !== own && counts[j]! > 0) b = Math.min(b, sums[row + j]! / counts[j]!);
      }
      const s = (b - a) / Math.max(a, b);
      if (Number.isFinite(s)) total += s;
    }
  }
  return total / n;
}

export interface QualityOptions {
  /** Exact silhouette up to this many rows; above, a seeded sample of this size. */
  readonly silhouetteExactMaxSamples: number;
  /** Sample this many rows for silhouette whatever n is (scikit-learn's `sample_size`). */
  readonly sampleSize?: number | undefined;
  readonly seed: number;
  readonly signal?: AbortSignal | undefined;
}

/**
 * Silhouette on a seeded sample of rows when asked for or when n is large, otherwise exact;
 * scale-free, for any finite magnitude.
 */
export async function silhouetteScore(
  backend: Backend,
  input: Matrix,
  labels: Int32Array,
  options: QualityOptions,
): Promise<number | null> {
  const points = inSafeRange(input).points;
  const n = points.rows;
  const size = options.sampleSize ?? Math.min(n, options.silhouetteExactMaxSamples);
  let sample = points;
  let sampleLabels = labels;
  if (size < n) {
    const idx = new Random(options.seed).sample(n, size);
    const d = points.cols;
    const data = new Float64Array(size * d);
    sampleLabels = new Int32Array(size);
    idx.forEach((r, i) => {
      for (let t = 0; t < d; t++) data[i * d + t] = points.data[r * d + t]!;
      sampleLabels[i] = labels[r]!;
    });
    sample = { rows: size, cols: d, data };
  }
  const { codes, count } = encodeLabels(sampleLabels);
  if (count < 2 || count > sample.rows - 1) return null;
  return silhouette(backend, sample, codes, count, options.signal);
}

/** Every internal metric of a labelling; metrics that need 2 <= clusters <= n - 1 are null otherwise. */
export async function internalQuality(
  backend: Backend,
  input: Matrix,
  labels: Int32Array,
  options: QualityOptions,
): Promise<InternalQuality> {
  const { codes, count } = encodeLabels(labels);
  const safe = inSafeRange(input);
  const points = safe.points;
  const scaled = withinClusterSS(points, codes, count);
  const up = 2 ** safe.exponent;
  const inertia = scaled * up * up;
  if (!Number.isFinite(inertia) || (inertia === 0 && scaled > 0)) {
    // The other metrics are ratios; the inertia is a sum of squares, and this one is past float64.
    throw new BackendError(
      `the inertia of points of magnitude 2^${safe.exponent} is ${scaled} x 2^${2 * safe.exponent}, past float64: rescale the points`,
      'NEUROCLUSTER_ERR_NUMERICAL',
    );
  }
  if (count < 2 || count > points.rows - 1) {
    return { silhouette: null, calinskiHarabasz: null, daviesBouldin: null, inertia };
  }
  return {
    silhouette: await silhouetteScore(backend, points, codes, options),
    calinskiHarabasz: calinskiHarabasz(points, codes, count),
    daviesBouldin: daviesBouldin(points, codes, count),
    inertia,
  };
}

/** Contingency counts of two labellings: rows are true classes, columns predicted clusters. */
function contingency(truth: ArrayLike<unknown>, predicted: ArrayLike<unknown>): Contingency {
  if (truth.length !== predicted.length) {
    throw new RangeError(`label lengths differ: ${truth.length} vs ${predicted.length}`);
  }
  const t = encodeLabels(truth);
  const p = encodeLabels(predicted);
  const table = new Float64Array(t.count * p.count);
  for (let i = 0; i < truth.length; i++) table[t.codes[i]! * p.count + p.codes[i]!]!++;
  const rowSums = new Float64Array(t.count);
  const colSums = new Float64Array(p.count);
  for (let a = 0; a < t.count; a++) {
    for (let b = 0; b < p.count; b++) {
      rowSums[a]! += table[a * p.count + b]!;
      colSums[b]! += table[a * p.count + b]!;
    }
  }
  return { table, rows: t.count, cols: p.count, rowSums, colSums, n: truth.length };
}

/** scikit-learn's pair_confusion_matrix: [[tn, fp], [fn, tp]] over ordered pairs. */
function pairConfusion(c: Contingency) {
  let sumSquares = 0;
  let rowDot = 0; // sum_ij n_ij * colSum_j
  let colDot = 0; // sum_ij n_ij * rowSum_i
  for (let a = 0; a < c.rows; a++) {
    for (let b = 0; b < c.cols; b++) {
      const v = c.table[a * c.cols + b]!;
      sumSquares += v * v;
      rowDot += v * c.colSums[b]!;
      colDot += v * c.rowSums[a]!;
    }
  }
  const tp = sumSquares - c.n;
  const fp = rowDot - sumSquares;
  const fn = colDot - sumSquares;
  const tn = c.n * c.n - fp - fn - sumSquares;
  return { tn, fp, fn, tp };
}

function entropy(counts: Float64Array, total: number): number {
  let h = 0;
  for (const c of counts) if (c > 0) h -= (c / total) * (Math.log(c) - Math.log(total));
  return h;
}

/** Agreement of a clustering with ground truth. */
export function externalQuality(truth: ArrayLike<unknown>, predicted: ArrayLike<unknown>): ExternalQuality {
  return contingencyQuality(contingency(truth, predicted));
}

/** A contingency table: rows are true classes, columns predicted clusters. */
export interface Contingency {
  readonly table: Float64Array;
  readonly rows: number;
  readonly cols: number;
  readonly rowSums: Float64Array;
  readonly colSums: Float64Array;
  readonly n: number;
}

/** A contingency table of counts (rows x cols) with its margins; empty rows and columns dropped. */
export function contingencyOf(counts: Float64Array, rows: number, cols: number): Contingency {
  const rowSums = new Float64Array(rows);
  const colSums = new Float64Array(cols);
  for (let a = 0; a < rows; a++) {
    for (let b = 0; b < cols; b++) {
      rowSums[a]! += counts[a * cols + b]!;
      colSums[b]! += counts[a * cols + b]!;
    }
  }
  const keptRows = [...rowSums.keys()].filter((a) => rowSums[a]! > 0);
  const keptCols = [...colSums.keys()].filter((b) => colSums[b]! > 0);
  const table = new Float64Array(keptRows.length * keptCols.length);
  keptRows.forEach((a, i) => {
    keptCols.forEach((b, j) => {
      table[i * keptCols.length + j] = counts[a * cols + b]!;
    });
  });
  return {
    table,
    rows: keptRows.length,
    cols: keptCols.length,
    rowSums: Float64Array.from(keptRows, (a) => rowSums[a]!),
    colSums: Float64Array.from(keptCols, (b) => colSums[b]!),
    n: rowSums.reduce((x, y) => x + y, 0),
  };
}

/** ARI, NMI and the Rand index of a contingency table. */
export function contingencyQuality(c: Contingency): ExternalQuality {
  const { tn, fp, fn, tp } = pairConfusion(c);
  const ari =
    fn === 0 && fp === 0 ? 1 : (2 * (tp * tn - fn * fp)) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn));
  const agree = tn + tp;
  const pairs = tn + fp + fn + tp;
  const randIndex = agree === pairs || pairs === 0 ? 1 : agree / pairs;

  let nmi: number;
  if ((c.rows === 1 && c.cols === 1) || c.n === 0) {
    nmi = 1;
  } else if (c.rows === 1 || c.cols === 1) {
    nmi = 0;
  } else {
    let mi = 0;
    const logN = Math.log(c.n);
    for (let a = 0; a < c.rows; a++) {
      for (let b = 0; b < c.cols; b++) {
        const v = c.table[a * c.cols + b]!;
        if (v === 0) continue;
        const p = v / c.n;
        const term = p * (Math.log(v) - logN) + p * (-Math.log(c.rowSums[a]! * c.colSums[b]!) + 2 * logN);
        mi += Math.abs(term) < Number.EPSILON ? 0 : term;
      }
    }
    mi = Math.max(0, mi);
    const normalizer = (entropy(c.rowSums, c.n) + entropy(c.colSums, c.n)) / 2;
    nmi = mi === 0 ? 0 : mi / Math.max(normalizer, Number.EPSILON);
  }
  return { ari, nmi, randIndex };
}
