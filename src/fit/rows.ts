import { validateK } from '../cluster/kmeans.js';
import { DataError } from '../core/errors.js';
import type { Matrix } from '../core/matrix.js';
import type { Dataset } from '../data/dataset.js';

/** Sum of squared distances of the labelled rows to their centroids (suppressed rows left out). */
export function inertiaOf(points: Matrix, labels: Int32Array, centroids: Float64Array, d: number): number {
  let total = 0;
  labels.forEach((c, i) => {
    if (c < 0) return;
    for (let j = 0; j < d; j++) total += (points.data[i * d + j]! - centroids[c * d + j]!) ** 2;
  });
  return total;
}

/** The indices of rows with a label (not suppressed), or undefined when every row has one. */
export function keptRows(labels: Int32Array): Int32Array | undefined {
  if (!labels.some((l) => l < 0)) return undefined;
  const out: number[] = [];
  labels.forEach((l, i) => {
    if (l >= 0) out.push(i);
  });
  return Int32Array.from(out);
}

export function takeRows(m: Matrix, rows: Int32Array): Matrix {
  const data = new Float64Array(rows.length * m.cols);
  rows.forEach((r, i) => {
    for (let j = 0; j < m.cols; j++) data[i * m.cols + j] = m.data[r * m.cols + j]!;
  });
  return { rows: rows.length, cols: m.cols, data };
}

export function takeLabels(labels: Int32Array, rows: Int32Array): Int32Array {
  return Int32Array.from(rows, (r) => labels[r]!);
}

/** At least 2 rows, and k within [1, n]. */
export function checkShape(dataset: Pick<Dataset, 'n' | 'source'>, k: number): void {
  if (dataset.n < 2) {
    throw new DataError(
      'NEUROCLUSTER_ERR_DATA_SHAPE',
      `at least 2 rows are needed to cluster, got ${dataset.n}`,
      {
        location: { file: dataset.source },
      },
    );
  }
  validateK(k, dataset.n);
}

/** Labels in file order from labels in canonical order. */
export function unpermute(labels: Int32Array, order: Int32Array): Int32Array {
  const out = new Int32Array(labels.length);
  order.forEach((row, i) => {
    out[row] = labels[i]!;
  });
  return out;
}

export function rawMatrix(ds: Dataset): Matrix {
  return { rows: ds.n, cols: ds.width, data: ds.values };
}

export function isDataset(x: unknown): x is Dataset {
  return typeof x === 'object' && x !== null && 'values' in x && 'width' in x && 'source' in x;
}
