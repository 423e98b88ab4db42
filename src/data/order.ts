/**
 * Row order independence: the engine fits every statistic (block scalers, PCA, K-means) on the
 * rows in a canonical order, so the same seed gives the same labels whatever order the file lists
 * its samples in.
 */
import type { Matrix } from '../core/matrix.js';

/**
 * Rows in an order that does not depend on the file: by sample key, ties by content. Statistics are
 * fitted in this order, so their floating-point sums, and so every feature, are bit for bit the
 * same whatever order the rows came in.
 */
export function canonicalOrder(points: Matrix, keys: Uint32Array): Int32Array {
  const order = Int32Array.from({ length: points.rows }, (_, i) => i);
  return order.sort((a, b) => {
    if (keys[a] !== keys[b]) return keys[a]! - keys[b]!;
    for (let t = 0; t < points.cols; t++) {
      const diff = points.data[a * points.cols + t]! - points.data[b * points.cols + t]!;
      if (diff !== 0) return diff;
    }
    return 0;
  });
}

/** The rows of `m` in the given order (row i of the result is row order[i] of m). */
export function permuteRows(m: Matrix, order: Int32Array): Matrix {
  const data = new Float64Array(m.rows * m.cols);
  order.forEach((r, i) => {
    data.set(m.data.subarray(r * m.cols, (r + 1) * m.cols), i * m.cols);
  });
  return { rows: m.rows, cols: m.cols, data };
}

/** Undoes {@link permuteRows}: row order[i] of the result is row i of `m`. */
export function unpermuteRows(m: Matrix, order: Int32Array): Matrix {
  const data = new Float64Array(m.rows * m.cols);
  order.forEach((r, i) => {
    data.set(m.data.subarray(i * m.cols, (i + 1) * m.cols), r * m.cols);
  });
  return { rows: m.rows, cols: m.cols, data };
}
