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
  const rows = order ?? Int32Array.from({ length: n }, (_, i) => i);
  const means = new Float64Array(d);
  const variances = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    let mean = 0;
    for (const i of rows) mean += data[i * d + j]!;
    mean /= n;
    let ss = 0;
    for (const i of rows) {
      const dv = data[i * d + j]! - mean;
      ss += dv * dv;
    }
    means[j] = mean;
    variances[j] = ss / n;
  }
  return { means, variances };
}
