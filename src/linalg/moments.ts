/** Column means and population variances, the statistics every scaler and tolerance is fitted from. */
import type { Matrix } from '../backends/backend.js';

/**
 * Per column, the mean and the population variance, summed over the rows in `order` (file order by
 * default): the clusterer passes its canonical order so the sums, bit for bit, ignore row order.
 */
export function columnMoments(
  m: Matrix,
  order?: Int32Array,
): { means: Float64Array; variances: Float64Array } {
  const { rows: n, cols: d, data } = m;
  const means = new Float64Array(d);
  const variances = new Float64Array(d);
  // Row by row, every column at once: a column at a time would stride through the whole matrix
  // once per column. Each column's sum still runs over the rows in order.
  for (let q = 0; q < n; q++) {
    const at = (order ? order[q]! : q) * d;
    for (let j = 0; j < d; j++) means[j]! += data[at + j]!;
  }
  for (let j = 0; j < d; j++) means[j]! /= n;
  for (let q = 0; q < n; q++) {
    const at = (order ? order[q]! : q) * d;
    for (let j = 0; j < d; j++) {
      const dv = data[at + j]! - means[j]!;
      variances[j]! += dv * dv;
    }
  }
  for (let j = 0; j < d; j++) variances[j]! /= n;
  return { means, variances };
}
