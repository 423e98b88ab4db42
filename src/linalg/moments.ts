/**
 * Column means and population variances, the statistics every scaler and tolerance is fitted from,
 * computed without overflow or underflow for any finite input: each column is first scaled by the
 * power of two nearest its largest magnitude (exact in binary floating point, so for ordinary data
 * the results are bit for bit those of the plain sums), and the results scaled back.
 */

import { BackendError } from '../core/errors.js';
import type { Matrix } from '../core/matrix.js';

/**
 * The largest magnitude whose squared distances, summed over any realistic matrix (2^40 values),
 * stay finite in float64, and the smallest spread whose squares stay normal numbers. K-means,
 * inertia and the metrics work on squared distances: data past these bounds is scaled (the scale-
 * free metrics) or refused (K-means on unstandardized data), never silently overflowed.
 */
export const SAFE_MAGNITUDE = 1e120;

/**
 * The exponent `e` of the power of two near `maxAbs`, clamped so that both 2^e and 2^-e are normal
 * numbers: `x * 2^-e` is exact and at most 2 in magnitude (at most 2^-1 more for subnormal input).
 */
export function scaleExponent(maxAbs: number): number {
  if (!(maxAbs > 0) || !Number.isFinite(maxAbs)) return 0;
  return Math.max(-1022, Math.min(1023, Math.floor(Math.log2(maxAbs))));
}

/** Largest magnitude among the finite values (0 for none). */
export function maxAbsOf(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]!);
    if (a > max && a !== Number.POSITIVE_INFINITY) max = a;
  }
  return max;
}

export interface ColumnMoments {
  readonly means: Float64Array;
  /** Population variances; +Infinity where the variance itself is past float64 (std past 1.3e154). */
  readonly variances: Float64Array;
  /** Population standard deviations: finite for every finite column. */
  readonly stds: Float64Array;
}

/**
 * Per column, the mean and the population variance, summed over the rows in `order` (file order by
 * default): the clusterer passes its canonical order so the sums, bit for bit, ignore row order.
 */
export function columnMoments(m: Matrix, order?: Int32Array): ColumnMoments {
  const { rows: n, cols: d, data } = m;
  const maxAbs = new Float64Array(d);
  // Row by row, every column at once: a column at a time would stride through the whole matrix
  // once per column. Each column's sum still runs over the rows in order.
  for (let i = 0; i < n; i++) {
    const at = i * d;
    for (let j = 0; j < d; j++) {
      const a = Math.abs(data[at + j]!);
      if (a > maxAbs[j]!) maxAbs[j] = a;
    }
  }
  const down = new Float64Array(d);
  const up = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    const e = scaleExponent(maxAbs[j]!);
    down[j] = 2 ** -e;
    up[j] = 2 ** e;
  }
  const means = new Float64Array(d);
  const variances = new Float64Array(d);
  const stds = new Float64Array(d);
  for (let q = 0; q < n; q++) {
    const at = (order ? order[q]! : q) * d;
    for (let j = 0; j < d; j++) means[j]! += data[at + j]! * down[j]!;
  }
  for (let j = 0; j < d; j++) means[j]! /= n;
  for (let q = 0; q < n; q++) {
    const at = (order ? order[q]! : q) * d;
    for (let j = 0; j < d; j++) {
      const dv = data[at + j]! * down[j]! - means[j]!;
      variances[j]! += dv * dv;
    }
  }
  for (let j = 0; j < d; j++) {
    const v = variances[j]! / n;
    stds[j] = Math.sqrt(v) * up[j]!;
    variances[j] = v * up[j]! * up[j]!;
    means[j]! *= up[j]!;
  }
  return { means, variances, stds };
}

/**
 * Mean and population standard deviation of `count` values at `start`, `start + stride`, ...,
 * scaled as {@link columnMoments} scales a column: finite for any finite values.
 */
export function stridedMoments(
  values: Float64Array,
  start: number,
  count: number,
  stride: number,
): { mean: number; std: number } {
  let max = 0;
  for (let t = 0; t < count; t++) max = Math.max(max, Math.abs(values[start + t * stride]!));
  const e = scaleExponent(max);
  const down = 2 ** -e;
  let mean = 0;
  for (let t = 0; t < count; t++) mean += values[start + t * stride]! * down;
  mean /= count;
  let ss = 0;
  for (let t = 0; t < count; t++) {
    const dv = values[start + t * stride]! * down - mean;
    ss += dv * dv;
  }
  return { mean: mean * 2 ** e, std: Math.sqrt(ss / count) * 2 ** e };
}

/**
 * `(x - mean) / std` without an intermediate overflow (x and mean of opposite signs near the
 * largest double); NaN or infinity only where the standardized value itself is past float64.
 */
export function standardized(x: number, mean: number, std: number): number {
  const z = (x - mean) / std;
  return Number.isFinite(z) ? z : x / std - mean / std;
}

/**
 * Refuses values past {@link SAFE_MAGNITUDE} with NUMERICAL: their squared distances would overflow
 * float64 and K-means, its inertia and the metrics would report infinities or zeros as results.
 * `what` names the values and says how to fix them.
 */
export function requireSafeMagnitude(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!(Math.abs(v) <= SAFE_MAGNITUDE)) {
      throw new BackendError(
        `${what}: value ${v} at index ${i} is past ${SAFE_MAGNITUDE} in magnitude, where squared distances overflow float64`,
        'NEUROCLUSTER_ERR_NUMERICAL',
      );
    }
  }
}
