/**
 * Differentially private K-means. Every step that reads the data is a mechanism charged to one
 * budget, and every other choice is public:
 *
 * 1. bounds: public (`bounds`), or estimated under DP (`rangeShare` of the budget): per column, a
 *    noisy histogram of the values by signed power-of-two magnitude; each side's bound is the edge
 *    of the farthest bucket whose noisy count clears a threshold that an empty bucket's noise
 *    passes with probability at most 5% over all buckets.
 * 2. standardization (when on, `standardizeShare`): noisy count, per-column sums and sums of
 *    squares of the clipped values give the mean and standard deviation; the data and the bounds
 *    are standardized with them (post-processing of DP values).
 * 3. initial centroids: uniform from the public seed (data-independent), within the bounds, or
 *    within [-1, 1] once standardized.
 * 4. a fixed number of Lloyd iterations: each assigns the points, then releases noisy per-cluster
 *    counts and noisy per-cluster sums of the clipped values; the new centroid is the noisy sum over
 *    the noisy count, clipped to the bounds (a cluster whose noisy count an empty cluster's noise
 *    reaches with probability 5% is drawn again, as at the start). One run, no restarts, no
 *    data-dependent stopping.
 *
 * Budget arithmetic is in integer pico-units (see mechanisms.ts): the shares are whole units and
 * the last share takes the remainder, so the steps spend exactly the declared budget. Pure DP uses
 * the Laplace mechanism throughout; with `kind: 'zcdp'` every step is a Gaussian mechanism and the
 * budget is rho (sequential composition adds rho).
 *
 * Within an iteration the budget is split between sums and counts as d^(2/3) : 1 (Laplace) or
 * sqrt(d) : 1 (Gaussian), which minimises the centroid's error variance when its coordinates are of
 * the order of the bounds: the sums, d coordinates per record, get the larger share. (diffprivlib's
 * K-means swaps the two shares' formulas past four dimensions, and overspends; this split is one
 * integer subtraction, and a test checks the parts add up to the whole.)
 *
 * The noise is drawn from the operating system's CSPRNG, never from the seed: a seeded noise stream
 * would let anyone who knows the seed subtract it.
 */

import { NeuroclusterError, PrivacyBudgetError } from '../../core/errors.js';
import type { Matrix } from '../../core/matrix.js';
import { Random } from '../../core/random.js';
import { assignAll } from '../../linalg/nearest.js';
import {
  type Grid,
  gaussianMechanism,
  grid,
  laplaceMechanism,
  type Mechanism,
  type PrivacyKind,
  toGrid,
} from './mechanisms.js';
import { cryptoRandom, type RandomSource } from './samplers.js';

export interface Bounds {
  readonly lo: readonly number[];
  readonly hi: readonly number[];
}

export interface DpKMeansOptions {
  readonly k: number;
  /** The whole budget of the run, in pico-units (epsilon for pure, rho for zcdp). */
  readonly cost: bigint;
  readonly kind: PrivacyKind;
  readonly iterations: number;
  /** Public bounds per column; estimated under DP when absent. */
  readonly bounds?: Bounds | undefined;
  readonly standardize: boolean;
  /** Shares of the budget for the range estimate and the standardization, when they run. */
  readonly rangeShare: number;
  readonly standardizeShare: number;
  /** The public seed of the initial centroids. */
  readonly seed: number;
  /** Where the noise comes from; the OS CSPRNG unless a test pins it. */
  readonly noise?: RandomSource;
}

/** One DP release of the run and what it cost. */
export interface DpStep {
  readonly step: string;
  readonly mechanism: string;
  readonly cost: bigint;
}

export interface DpKMeansResult {
  readonly k: number;
  readonly d: number;
  /** k x d, in the input's units (standardization undone). */
  readonly centroids: Float64Array;
  /** k x d, in the space the run clustered (standardized when it standardized). */
  readonly workingCentroids: Float64Array;
  /** The working space: the clipped (and standardized) input, n x d. */
  readonly working: Matrix;
  readonly labels: Int32Array;
  /** Noisy sizes of the clusters from the last iteration. */
  readonly noisyCounts: readonly number[];
  readonly bounds: Bounds;
  readonly boundsSource: 'public' | 'dp-estimate';
  readonly standardization: { readonly means: number[]; readonly scales: number[] } | undefined;
  readonly steps: readonly DpStep[];
}

/** Splits `whole` pico-units by `shares` (fractions): whole units, the last taking the remainder. */
export function splitCost(whole: bigint, shares: readonly number[]): bigint[] {
  const out: bigint[] = [];
  let left = whole;
  shares.forEach((share, i) => {
    if (i === shares.length - 1) {
      out.push(left);
      return;
    }
    const part = BigInt(Math.floor(Number(whole) * share));
    out.push(part);
    left -= part;
  });
  if (out.some((c) => c <= 0n)) {
    throw new PrivacyBudgetError(
      `a budget of ${whole} pico-units cannot be split into ${shares.length} positive parts`,
    );
  }
  return out;
}

/** The share of an iteration's budget that goes to the counts (the sums get the rest). */
export function countShare(kind: PrivacyKind, d: number): number {
  const sumsOverCounts = kind === 'pure' ? d ** (2 / 3) : Math.sqrt(d);
  return 1 / (1 + sumsOverCounts);
}

const sumOf = (xs: readonly bigint[]) => xs.reduce((a, b) => a + b, 0n);

/** Releases through one mechanism, keeping each release's step and cost. */
export class DpLedger {
  readonly steps: DpStep[] = [];
  constructor(
    readonly mechanism: Mechanism,
    private readonly noise: RandomSource,
  ) {}

  /** Releases integer `values` with the per-record sensitivities of each coordinate group. */
  release(
    step: string,
    values: readonly (number | bigint)[],
    l1: bigint,
    l2Squared: bigint,
    cost: bigint,
  ): number[] {
    this.steps.push({ step, mechanism: this.mechanism.name, cost });
    const exact = values.map((v) => BigInt(v));
    const noisy = this.mechanism.release(exact, { l1, l2Squared }, cost, this.noise);
    return noisy.map(Number);
  }
}

/** Signed power-of-two buckets: index 0 is |x| < 2^-16, then [2^(e-1), 2^e) for e in -15..40. */
const MIN_EXP = -16;
const MAX_EXP = 40;
const BUCKETS = MAX_EXP - MIN_EXP + 1;

function bucketOf(x: number): number {
  const a = Math.abs(x);
  const e = a < 2 ** MIN_EXP ? MIN_EXP : Math.min(MAX_EXP, Math.floor(Math.log2(a)) + 1);
  const index = e - MIN_EXP;
  return x < 0 ? -index : index;
}

/** DP bounds per column (step 1), at a cost of `cost` pico-units through `ledger`. */
export function estimateBounds(data: Matrix, ledger: DpLedger, cost: bigint): Bounds {
  const { rows: n, cols: d } = data;
  // Per column: BUCKETS positive and BUCKETS negative counts; each record is in one of each column.
  const counts = new Array<number>(d * 2 * BUCKETS).fill(0);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const b = bucketOf(data.data[i * d + j]!);
      counts[j * 2 * BUCKETS + (b < 0 ? BUCKETS - b : b)]!++;
    }
  }
  const l1 = BigInt(d);
  const noisy = ledger.release('bounds', counts, l1, l1, cost);
  // The chance that any empty bucket's noise clears the threshold is at most 5%: a false bucket
  // only widens the bounds (less utility), it never costs privacy.
  const threshold = ledger.mechanism.tail({ l1, l2Squared: l1 }, cost, 0.05 / counts.length);
  const lo: number[] = [];
  const hi: number[] = [];
  for (let j = 0; j < d; j++) {
    const base = j * 2 * BUCKETS;
    let top = -1;
    let bottom = -1;
    for (let b = BUCKETS - 1; b >= 0 && top < 0; b--) if (noisy[base + b]! >= threshold) top = b;
    for (let b = BUCKETS - 1; b >= 1 && bottom < 0; b--)
      if (noisy[base + BUCKETS + b]! >= threshold) bottom = b;
    if (top < 0 && bottom < 0) {
      // Nothing was overspent (the charge stands): the data are too few for this estimate.
      throw new NeuroclusterError(
        'NEUROCLUSTER_ERR_PRIVACY_DATA',
        `column ${j}: the DP range estimate found no values above its noise (too few rows for this epsilon); give the bounds (--bounds <min>:<max>, or one range per column)`,
        { context: { column: j, rows: n } },
      );
    }
    const edge = (b: number) => 2 ** (b + MIN_EXP);
    hi.push(top >= 0 ? edge(top) : 0);
    lo.push(bottom >= 0 ? -edge(bottom) : 0);
  }
  return { lo, hi };
}

/**
 * Runs DP K-means over `data` (n x d, raw values). Refuses a budget too small to split
 * (PrivacyBudgetError), and a range estimate that finds nothing (NEUROCLUSTER_ERR_PRIVACY_DATA).
 */
export function dpKMeans(data: Matrix, options: DpKMeansOptions): DpKMeansResult {
  const { rows: n, cols: d } = data;
  const { k, kind, iterations } = options;
  if (!Number.isInteger(iterations) || iterations < 1)
    throw new RangeError(`iterations must be >= 1, got ${iterations}`);
  const mechanism = kind === 'pure' ? laplaceMechanism : gaussianMechanism;
  const ledger = new DpLedger(mechanism, options.noise ?? cryptoRandom);

  // The budget: range estimate, standardization, then the iterations; whole pico-units.
  const parts: number[] = [];
  if (!options.bounds) parts.push(options.rangeShare);
  if (options.standardize) parts.push(options.standardizeShare);
  const fixed = parts.reduce((a, b) => a + b, 0);
  if (fixed >= 1)
    throw new RangeError('the range and standardization shares leave nothing for the iterations');
  const costs = splitCost(options.cost, [...parts, 1 - fixed]);
  let c = 0;
  const rangeCost = options.bounds ? undefined : costs[c++]!;
  const standardizeCost = options.standardize ? costs[c++]! : undefined;
  const iterationCosts = splitCost(costs[c]!, new Array<number>(iterations).fill(1 / iterations));

  const bounds = options.bounds ?? estimateBounds(data, ledger, rangeCost!);
  for (let j = 0; j < d; j++) {
    if (!(bounds.hi[j]! > bounds.lo[j]!)) {
      // A column whose estimated range is one point: widen it by the public minimum.
      (bounds.lo as number[])[j] = Math.min(bounds.lo[j]!, -1);
      (bounds.hi as number[])[j] = Math.max(bounds.hi[j]!, 1);
    }
  }

  // Clip to the bounds.
  const clipped = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const x = data.data[i * d + j]!;
      clipped[i * d + j] = Math.min(bounds.hi[j]!, Math.max(bounds.lo[j]!, x));
    }
  }

  let standardization: DpKMeansResult['standardization'];
  let work = clipped;
  let wLo = [...bounds.lo];
  let wHi = [...bounds.hi];
  if (standardizeCost !== undefined) {
    standardization = dpStandardize(clipped, n, d, bounds, ledger, standardizeCost);
    const { means, scales } = standardization;
    work = new Float64Array(n * d);
    for (let i = 0; i < n * d; i++) work[i] = (clipped[i]! - means[i % d]!) / scales[i % d]!;
    wLo = bounds.lo.map((lo, j) => (lo - means[j]!) / scales[j]!);
    wHi = bounds.hi.map((hi, j) => (hi - means[j]!) / scales[j]!);
  }
  const grids: Grid[] = wLo.map((lo, j) => grid(lo, wHi[j]!));

  // Initial centroids: uniform from the public seed, within the bounds, or, once standardized,
  // within [-1, 1] of them (where standardized data are by construction; the bounds can be far
  // wider, and a centroid far from all the data never wins a point).
  const rng = new Random(options.seed);
  const initLo = standardization ? wLo.map((lo) => Math.max(lo, -1)) : wLo;
  const initHi = standardization ? wHi.map((hi) => Math.min(hi, 1)) : wHi;
  const draw = (c2: number) => {
    for (let j = 0; j < d; j++) centroids[c2 * d + j] = initLo[j]! + rng.float() * (initHi[j]! - initLo[j]!);
  };
  const centroids = new Float64Array(k * d);
  for (let c2 = 0; c2 < k; c2++) draw(c2);

  const labels = new Int32Array(n);
  const distances = new Float64Array(n);
  const sumsL1 = grids.reduce((s, g) => s + g.maxAbs, 0n);
  const sumsL2Squared = grids.reduce((s, g) => s + g.maxAbs * g.maxAbs, 0n);
  const share = countShare(kind, d);
  let noisyCounts: number[] = [];
  for (let t = 0; t < iterations; t++) {
    assignAll(work, n, centroids, k, d, labels, distances);
    const counts = new Array<number>(k).fill(0);
    const sums = new Array<number>(k * d).fill(0);
    for (let i = 0; i < n; i++) {
      const c2 = labels[i]!;
      counts[c2]!++;
      for (let j = 0; j < d; j++) sums[c2 * d + j]! += toGrid(work[i * d + j]!, grids[j]!);
    }
    const [countCost, sumCost] = splitCost(iterationCosts[t]!, [share, 1 - share]);
    // A noisy count an empty cluster reaches with probability 5% or more tells nothing.
    const emptyBelow = Math.max(1, mechanism.tail({ l1: 1n, l2Squared: 1n }, countCost!, 0.05));
    noisyCounts = ledger.release(`iteration ${t + 1}: counts`, counts, 1n, 1n, countCost!);
    const noisySums = ledger.release(`iteration ${t + 1}: sums`, sums, sumsL1, sumsL2Squared, sumCost!);
    for (let c2 = 0; c2 < k; c2++) {
      const count = noisyCounts[c2]!;
      if (count < emptyBelow) {
        // Empty, as far as the noise tells (its centroid would be noise over noise): drawn again
        // (public randomness) for another chance.
        draw(c2);
        continue;
      }
      for (let j = 0; j < d; j++) {
        const g = grids[j]!;
        const v = (noisySums[c2 * d + j]! * g.step) / count;
        centroids[c2 * d + j] = Math.min(g.hi, Math.max(g.lo, v));
      }
    }
  }
  assignAll(work, n, centroids, k, d, labels, distances);

  const original = new Float64Array(k * d);
  for (let i = 0; i < k * d; i++) {
    const j = i % d;
    original[i] = standardization
      ? standardization.means[j]! + standardization.scales[j]! * centroids[i]!
      : centroids[i]!;
  }
  const spent = sumOf(ledger.steps.map((s) => s.cost));
  if (spent !== options.cost) throw new Error(`internal: DP K-means spent ${spent} of ${options.cost}`);
  return {
    k,
    d,
    centroids: original,
    workingCentroids: centroids,
    working: { rows: n, cols: d, data: work },
    labels,
    noisyCounts,
    bounds,
    boundsSource: options.bounds ? 'public' : 'dp-estimate',
    standardization,
    steps: ledger.steps,
  };
}

/** DP mean and standard deviation per column of clipped values (step 2). */
function dpStandardize(
  clipped: Float64Array,
  n: number,
  d: number,
  bounds: Bounds,
  ledger: DpLedger,
  cost: bigint,
): { means: number[]; scales: number[] } {
  const grids = bounds.lo.map((lo, j) => grid(lo, bounds.hi[j]!));
  const sums = new Array<number>(d).fill(0);
  // Squares reach 2^32 each: summed exactly as BigInt, flushed from a float accumulator before
  // it could pass 2^53.
  const squares = new Array<bigint>(d).fill(0n);
  const pending = new Array<number>(d).fill(0);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const v = toGrid(clipped[i * d + j]!, grids[j]!);
      sums[j]! += v;
      pending[j]! += v * v;
      if (pending[j]! >= 2 ** 52) {
        squares[j]! += BigInt(pending[j]!);
        pending[j] = 0;
      }
    }
  }
  for (let j = 0; j < d; j++) squares[j]! += BigInt(pending[j]!);
  const [countCost, sumCost, squareCost] = splitCost(cost, [0.2, 0.4, 0.4]);
  const [noisyCount] = ledger.release('standardize: count', [n], 1n, 1n, countCost!);
  const l1 = grids.reduce((s, g) => s + g.maxAbs, 0n);
  const l2 = grids.reduce((s, g) => s + g.maxAbs * g.maxAbs, 0n);
  const noisySums = ledger.release('standardize: sums', sums, l1, l2, sumCost!);
  const sq = grids.map((g) => g.maxAbs * g.maxAbs);
  const noisySquares = ledger.release(
    'standardize: sums of squares',
    squares,
    sq.reduce((a, b) => a + b, 0n),
    sq.reduce((a, b) => a + b * b, 0n),
    squareCost!,
  );
  const count = Math.max(1, noisyCount!);
  const means: number[] = [];
  const scales: number[] = [];
  for (let j = 0; j < d; j++) {
    const g = grids[j]!;
    const mean = Math.min(g.hi, Math.max(g.lo, (noisySums[j]! * g.step) / count));
    const variance = (noisySquares[j]! * g.step * g.step) / count - mean * mean;
    // Noise can leave no variance: the public quarter-range stands in.
    const scale = variance > (g.step * 16) ** 2 ? Math.sqrt(variance) : (g.hi - g.lo) / 4;
    means.push(mean);
    scales.push(scale);
  }
  return { means, scales };
}
