/**
 * K-means as a step generator (after ml-kmeans' `kmeansGenerator`): every Lloyd iteration or batch
 * of mini-batch steps yields a progress event, so progress bars, cancellation and (later) job
 * checkpoints hook in here and not in the kernels. The math follows scikit-learn's KMeans and
 * MiniBatchKMeans: greedy k-means++, `nInit` restarts keeping the lowest inertia, Lloyd iterations
 * with strict-convergence and shift-tolerance stops, empty clusters moved to the farthest points.
 */
import type { Backend } from '../backends/backend.js';
import { throwIfAborted } from '../core/cancel.js';
import { BackendError, requireFinite, UsageError } from '../core/errors.js';
import type { Matrix } from '../core/matrix.js';
import { Random } from '../core/random.js';
import { columnMoments, requireSafeMagnitude, SAFE_MAGNITUDE } from '../linalg/moments.js';

export interface KMeansOptions {
  readonly k: number;
  readonly nInit: number;
  readonly maxIter: number;
  /** Relative to the mean per-feature variance, as scikit-learn. */
  readonly tol: number;
  readonly algorithm: 'auto' | 'lloyd' | 'minibatch';
  readonly miniBatchThreshold: number;
  readonly batchSize: number;
  readonly maxNoImprovement: number;
  readonly seed: number;
  /** `k-means++` (default) or `random`: k distinct points, as scikit-learn's init='random'. */
  readonly init?: 'k-means++' | 'random';
}

/** What the generator yields while it works. */
export type KMeansProgress =
  | {
      readonly type: 'iteration';
      readonly run: number;
      readonly iteration: number;
      readonly inertia: number;
      readonly changed: number;
    }
  | {
      readonly type: 'run';
      readonly run: number;
      readonly runs: number;
      readonly inertia: number;
      readonly iterations: number;
    }
  | {
      readonly type: 'minibatch';
      readonly step: number;
      readonly steps: number;
      readonly ewaInertia: number;
    };

/** A fitted K-means. */
export interface KMeansFit {
  readonly k: number;
  readonly d: number;
  /** k x d, row-major. */
  readonly centroids: Float64Array;
  readonly labels: Int32Array;
  /** Sum of squared distances of the points to their centroid. */
  readonly inertia: number;
  /** Iterations of the kept run (Lloyd) or mini-batch steps taken. */
  readonly iterations: number;
  readonly algorithm: 'lloyd' | 'minibatch';
}

/** Checks k against the data; k must be in [1, n]. */
export function validateK(k: number, n: number): void {
  if (!Number.isInteger(k) || k < 1) throw new UsageError(`k must be an integer >= 1, got ${k}`);
  if (k > n) throw new UsageError(`k = ${k} is larger than the number of rows (${n})`);
}

function meanVariance(points: Matrix): number {
  const { variances } = columnMoments(points);
  return variances.reduce((a, b) => a + b, 0) / points.cols;
}

/**
 * Points whose squared distances stay inside float64: none past SAFE_MAGNITUDE (they overflow) and
 * not all below its reciprocal (every distance underflows to 0, and any labels would do).
 */
function requireSquarable(values: ArrayLike<number>): void {
  let largest = 0;
  for (let i = 0; i < values.length; i++) largest = Math.max(largest, Math.abs(values[i]!));
  // Past the limit (or NaN): the check that names the value and where it is.
  if (!(largest <= SAFE_MAGNITUDE)) requireSafeMagnitude(values, 'the points of K-means');
  if (largest > 0 && largest < 1 / SAFE_MAGNITUDE) {
    throw new BackendError(
      `the points of K-means are all below ${1 / SAFE_MAGNITUDE} in magnitude (largest ${largest}), where squared distances underflow float64: rescale them`,
      'NEUROCLUSTER_ERR_NUMERICAL',
    );
  }
}

function gatherRows(points: Matrix, indices: ArrayLike<number>): Matrix {
  const d = points.cols;
  const out = new Float64Array(indices.length * d);
  for (let i = 0; i < indices.length; i++) {
    const r = indices[i]!;
    for (let t = 0; t < d; t++) out[i * d + t] = points.data[r * d + t]!;
  }
  return { rows: indices.length, cols: d, data: out };
}

/** First index whose cumulative sum reaches `value` (numpy's searchsorted, side='left'). */
function searchSorted(cumulative: Float64Array, value: number): number {
  let lo = 0;
  let hi = cumulative.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cumulative[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return Math.min(lo, cumulative.length - 1);
}

/** Greedy k-means++ (scikit-learn's `_kmeans_plusplus`): 2 + ln(k) candidates per centre. */
export async function kmeansPlusPlus(
  backend: Backend,
  points: Matrix,
  k: number,
  rng: Random,
): Promise<Float64Array> {
  const { rows: n, cols: d } = points;
  const centers = new Float64Array(k * d);
  const trials = 2 + Math.floor(Math.log(k));
  const first = rng.int(n);
  centers.set(gatherRows(points, [first]).data);
  // The points go second, as in every call below: a device backend keeps its copy of them.
  let closest = Float64Array.from(
    (
      await backend.pairwiseDistances({ rows: 1, cols: d, data: centers.subarray(0, d) }, points, {
        squared: true,
      })
    ).data,
  );
  let potential = closest.reduce((a, b) => a + b, 0);
  const cumulative = new Float64Array(n);
  for (let c = 1; c < k; c++) {
    let acc = 0;
    for (let i = 0; i < n; i++) cumulative[i] = acc += closest[i]!;
    const ids = Array.from({ length: trials }, () => searchSorted(cumulative, rng.float() * potential));
    const candidates = gatherRows(points, ids);
    const dist = (await backend.pairwiseDistances(candidates, points, { squared: true })).data;
    let best = 0;
    let bestPot = Number.POSITIVE_INFINITY;
    for (let t = 0; t < trials; t++) {
      let pot = 0;
      for (let i = 0; i < n; i++) pot += Math.min(closest[i]!, dist[t * n + i]!);
      if (pot < bestPot) {
        bestPot = pot;
        best = t;
      }
    }
    const next = new Float64Array(n);
    for (let i = 0; i < n; i++) next[i] = Math.min(closest[i]!, dist[best * n + i]!);
    closest = next;
    potential = bestPot;
    centers.set(candidates.data.subarray(best * d, (best + 1) * d), c * d);
  }
  return centers;
}

async function initialCenters(
  backend: Backend,
  points: Matrix,
  k: number,
  rng: Random,
  init: KMeansOptions['init'],
) {
  if (init === 'random') return Float64Array.from(gatherRows(points, rng.sample(points.rows, k)).data);
  return kmeansPlusPlus(backend, points, k, rng);
}

/**
 * Moves each empty cluster to one of the points farthest from their centre, taking that point out
 * of its old cluster's sums (scikit-learn's `_relocate_empty_clusters_dense`). Like scikit-learn it
 * leaves the label state alone; the pass's labels come from one assignment to the same centres.
 */
async function relocateEmpty(
  backend: Backend,
  points: Matrix,
  oldCenters: Float64Array,
  sums: Float64Array,
  counts: Float64Array,
): Promise<void> {
  const d = points.cols;
  const empty: number[] = [];
  counts.forEach((c, j) => {
    if (c === 0) empty.push(j);
  });
  const { labels, distances } = await backend.kmeansAssign(points, {
    rows: counts.length,
    cols: d,
    data: oldCenters,
  });
  const order = Array.from(distances.keys()).sort((a, b) => distances[b]! - distances[a]! || a - b);
  empty.forEach((target, e) => {
    const far = order[e]!;
    const from = labels[far]!;
    for (let t = 0; t < d; t++) {
      const v = points.data[far * d + t]!;
      sums[from * d + t]! -= v;
      sums[target * d + t] = v;
    }
    counts[from]!--;
    counts[target] = 1;
  });
}

/** The final E-step: labels and inertia that describe the returned centres. */
async function finish(
  backend: Backend,
  points: Matrix,
  centers: Float64Array,
  k: number,
  iterations: number,
  algorithm: KMeansFit['algorithm'],
): Promise<KMeansFit> {
  const { labels, distances } = await backend.kmeansAssign(points, {
    rows: k,
    cols: points.cols,
    data: centers,
  });
  let inertia = 0;
  for (const v of distances) inertia += v;
  return { k, d: points.cols, centroids: centers, labels, inertia, iterations, algorithm };
}

/** One Lloyd run from given centres; yields per iteration, returns the run's fit. */
async function* lloydRun(
  backend: Backend,
  points: Matrix,
  start: Float64Array,
  options: KMeansOptions,
  tolAbs: number,
  run: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<KMeansProgress, KMeansFit> {
  const { rows: n, cols: d } = points;
  const k = options.k;
  let centers = start;
  const labels = new Int32Array(n).fill(-1);
  let iterations = 0;
  for (let it = 0; it < options.maxIter; it++) {
    throwIfAborted(signal);
    const step = await backend.kmeansStep(points, { rows: k, cols: d, data: centers }, labels);
    const { sums, counts } = step;
    // A non-finite pass would only repeat itself to maxIter: stop at the first.
    requireFinite([step.inertia], `K-means (${backend.name})`);
    requireFinite(sums, `K-means (${backend.name})`);
    iterations = it + 1;
    if (counts.some((c) => c === 0)) await relocateEmpty(backend, points, centers, sums, counts);
    const next = new Float64Array(k * d);
    let shift = 0;
    for (let j = 0; j < k; j++) {
      for (let t = 0; t < d; t++) {
        const v = sums[j * d + t]! / counts[j]!;
        next[j * d + t] = v;
        const dv = v - centers[j * d + t]!;
        shift += dv * dv;
      }
    }
    centers = next;
    yield { type: 'iteration', run, iteration: iterations, inertia: step.inertia, changed: step.changed };
    // Labels unchanged since the last pass (never on the first, whose labels start at -1): converged.
    if (step.changed === 0) break;
    if (shift <= tolAbs) break;
  }
  return finish(backend, points, centers, k, iterations, 'lloyd');
}

/** Mini-batch K-means (scikit-learn's MiniBatchKMeans): the best of nInit inits, one run. */
async function* miniBatch(
  backend: Backend,
  points: Matrix,
  options: KMeansOptions,
  tolAbs: number,
  rng: Random,
  signal: AbortSignal | undefined,
): AsyncGenerator<KMeansProgress, KMeansFit> {
  const { rows: n, cols: d } = points;
  const { k } = options;
  const batchSize = Math.min(options.batchSize, n);
  const initSize = Math.min(n, Math.max(3 * batchSize, k));

  // Inits on a random subset each, judged by their inertia on one validation subset.
  const validation = gatherRows(points, rng.sample(n, initSize));
  let centers: Float64Array = new Float64Array(0);
  let bestInit = Number.POSITIVE_INFINITY;
  for (let r = 0; r < options.nInit; r++) {
    throwIfAborted(signal);
    const subset = gatherRows(points, rng.sample(n, initSize));
    const candidate = await initialCenters(backend, subset, k, rng, options.init);
    const { distances } = await backend.kmeansAssign(validation, { rows: k, cols: d, data: candidate });
    const inertia = distances.reduce((a, b) => a + b, 0);
    if (inertia < bestInit) {
      bestInit = inertia;
      centers = candidate;
    }
  }

  const weights = new Float64Array(k);
  const steps = Math.max(1, Math.ceil((options.maxIter * n) / batchSize));
  const alpha = Math.min(1, (2 * batchSize) / (n + 1));
  let ewa: number | undefined;
  let ewaMin = Number.POSITIVE_INFINITY;
  let noImprovement = 0;
  let sinceReassign = 0;
  let step = 0;
  const batchIdx = new Int32Array(batchSize);
  for (; step < steps; step++) {
    throwIfAborted(signal);
    for (let b = 0; b < batchSize; b++) batchIdx[b] = rng.int(n);
    const batch = gatherRows(points, batchIdx);
    const old = centers.slice();
    const { labels, distances } = await backend.kmeansAssign(batch, { rows: k, cols: d, data: centers });
    const { sums, counts } = await backend.kmeansReduce(batch, labels, k);
    for (let j = 0; j < k; j++) {
      if (counts[j] === 0) continue;
      const total = weights[j]! + counts[j]!;
      for (let t = 0; t < d; t++) {
        centers[j * d + t] = (centers[j * d + t]! * weights[j]! + sums[j * d + t]!) / total;
      }
      weights[j] = total;
    }
    // Clusters that attract (almost) nothing move to random batch points, as scikit-learn does.
    sinceReassign += batchSize;
    if (weights.some((w) => w === 0) || sinceReassign >= 10 * k) {
      sinceReassign = 0;
      const maxW = Math.max(...weights);
      let reassign = Array.from(weights.keys()).filter((j) => weights[j]! < 0.01 * maxW);
      if (reassign.length > 0.5 * batchSize) {
        reassign = reassign.sort((a, b) => weights[a]! - weights[b]!).slice(0, Math.floor(0.5 * batchSize));
      }
      if (reassign.length > 0) {
        const picks = rng.sample(batchSize, reassign.length);
        const kept = Array.from(weights.keys()).filter((j) => !reassign.includes(j));
        const floor = kept.length > 0 ? Math.min(...kept.map((j) => weights[j]!)) : 0;
        reassign.forEach((j, i) => {
          centers.set(batch.data.subarray(picks[i]! * d, (picks[i]! + 1) * d), j * d);
          weights[j] = floor;
        });
      }
    }
    let batchInertia = 0;
    for (const v of distances) batchInertia += v;
    batchInertia /= batchSize;
    ewa = ewa === undefined ? batchInertia : ewa * (1 - alpha) + batchInertia * alpha;
    let shift = 0;
    for (let i = 0; i < centers.length; i++) shift += (centers[i]! - old[i]!) ** 2;
    if (step % 20 === 0) yield { type: 'minibatch', step, steps, ewaInertia: ewa };
    if (tolAbs > 0 && shift <= tolAbs) break;
    if (ewa < ewaMin) {
      ewaMin = ewa;
      noImprovement = 0;
    } else if (++noImprovement >= options.maxNoImprovement) {
      break;
    }
  }
  const final = await backend.kmeansAssign(points, { rows: k, cols: d, data: centers });
  const inertia = final.distances.reduce((a, b) => a + b, 0);
  return {
    k,
    d,
    centroids: centers,
    labels: final.labels,
    inertia,
    iterations: step + 1,
    algorithm: 'minibatch',
  };
}

/** Which algorithm `auto` resolves to for n rows. */
export function resolveAlgorithm(
  options: Pick<KMeansOptions, 'algorithm' | 'miniBatchThreshold'>,
  n: number,
) {
  if (options.algorithm !== 'auto') return options.algorithm;
  return n > options.miniBatchThreshold ? 'minibatch' : 'lloyd';
}

/**
 * The K-means step generator: yields progress, returns the fit with the lowest inertia.
 * Drive it with `for await` or use {@link kmeans}.
 */
export async function* kmeansSteps(
  backend: Backend,
  points: Matrix,
  options: KMeansOptions,
  signal?: AbortSignal,
): AsyncGenerator<KMeansProgress, KMeansFit> {
  validateK(options.k, points.rows);
  requireSquarable(points.data);
  const rng = new Random(options.seed);
  // tol 0 (run every iteration) needs no variance: skip a pass over the data.
  const tolAbs = options.tol === 0 ? 0 : options.tol * meanVariance(points);
  if (resolveAlgorithm(options, points.rows) === 'minibatch') {
    return numberedByFirstRow(yield* miniBatch(backend, points, options, tolAbs, rng, signal));
  }
  let best: KMeansFit | undefined;
  for (let run = 0; run < options.nInit; run++) {
    throwIfAborted(signal);
    const start = await initialCenters(backend, points, options.k, rng, options.init);
    const fit = yield* lloydRun(backend, points, start, options, tolAbs, run, signal);
    yield { type: 'run', run, runs: options.nInit, inertia: fit.inertia, iterations: fit.iterations };
    // Strictly lower only, so ties keep the earliest run (scikit-learn does the same).
    if (!best || fit.inertia < best.inertia) best = fit;
  }
  return numberedByFirstRow(best!);
}

/**
 * The fit with its clusters numbered in the order their first rows come (clusters left empty after
 * them, in their own order), centroids permuted alike. A partition has one numbering this way:
 * two runs that end in the same clusters (one chosen over the other by an inertia that differs in
 * the last bits, as a GPU's sums in another order give) report the same labels.
 */
export function numberedByFirstRow(fit: KMeansFit): KMeansFit {
  const { k, d, labels, centroids } = fit;
  const newOf = new Int32Array(k).fill(-1);
  let next = 0;
  for (let i = 0; i < labels.length && next < k; i++) {
    const l = labels[i]!;
    if (l >= 0 && newOf[l] === -1) newOf[l] = next++;
  }
  for (let j = 0; j < k; j++) if (newOf[j] === -1) newOf[j] = next++;
  if (newOf.every((to, from) => to === from)) return fit;
  const renumbered = new Float64Array(centroids.length);
  for (let j = 0; j < k; j++) renumbered.set(centroids.subarray(j * d, (j + 1) * d), newOf[j]! * d);
  return { ...fit, centroids: renumbered, labels: labels.map((l) => (l >= 0 ? newOf[l]! : l)) };
}

/** Runs {@link kmeansSteps} to the end, reporting progress to an optional callback. */
export async function kmeans(
  backend: Backend,
  points: Matrix,
  options: KMeansOptions,
  { signal, onProgress }: { signal?: AbortSignal; onProgress?: (p: KMeansProgress) => void } = {},
): Promise<KMeansFit> {
  const steps = kmeansSteps(backend, points, options, signal);
  for (;;) {
    const next = await steps.next();
    if (next.done) return next.value;
    onProgress?.(next.value);
  }
}
