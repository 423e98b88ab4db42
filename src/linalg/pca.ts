/**
 * Principal components from the d x d covariance (accumulated over the rows once, never an N x d
 * SVD), eigendecomposed on the host with ml-matrix.
 */
import { EigenvalueDecomposition, Matrix as MlMatrix } from 'ml-matrix';
import type { Matrix } from '../backends/backend.js';

export interface Pca {
  readonly mean: Float64Array;
  /** components x d, row-major; each row a unit vector, largest loading positive. */
  readonly components: Float64Array;
  readonly nComponents: number;
  /** Variance along each component, and its share of the total. */
  readonly explainedVariance: readonly number[];
  readonly explainedVarianceRatio: readonly number[];
}

/** Fits PCA with `nComponents` (at most d) components. */
export function fitPca(points: Matrix, nComponents: number): Pca {
  const { rows: n, cols: d, data } = points;
  const m = Math.min(nComponents, d);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let t = 0; t < d; t++) mean[t]! += data[i * d + t]!;
  for (let t = 0; t < d; t++) mean[t]! /= n;
  const cov = new Float64Array(d * d);
  const centred = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < d; t++) centred[t] = data[i * d + t]! - mean[t]!;
    for (let a = 0; a < d; a++) {
      const va = centred[a]!;
      for (let b = a; b < d; b++) cov[a * d + b]! += va * centred[b]!;
    }
  }
  const denom = Math.max(1, n - 1);
  const rows: number[][] = [];
  for (let a = 0; a < d; a++) {
    const row: number[] = [];
    for (let b = 0; b < d; b++) row.push((a <= b ? cov[a * d + b]! : cov[b * d + a]!) / denom);
    rows.push(row);
  }
  const evd = new EigenvalueDecomposition(new MlMatrix(rows), { assumeSymmetric: true });
  const values = evd.realEigenvalues;
  const vectors = evd.eigenvectorMatrix;
  const order = values.map((_, i) => i).sort((a, b) => values[b]! - values[a]!);
  const total = values.reduce((s, v) => s + Math.max(0, v), 0);
  const components = new Float64Array(m * d);
  const explainedVariance: number[] = [];
  for (let c = 0; c < m; c++) {
    const col = order[c]!;
    let maxAbs = 0;
    let sign = 1;
    for (let t = 0; t < d; t++) {
      const v = vectors.get(t, col);
      if (Math.abs(v) > maxAbs) {
        maxAbs = Math.abs(v);
        sign = v < 0 ? -1 : 1;
      }
    }
    for (let t = 0; t < d; t++) components[c * d + t] = sign * vectors.get(t, col);
    explainedVariance.push(Math.max(0, values[col]!));
  }
  return {
    mean,
    components,
    nComponents: m,
    explainedVariance,
    explainedVarianceRatio: explainedVariance.map((v) => (total > 0 ? v / total : 0)),
  };
}

/** Projects rows onto the fitted components: n x nComponents. */
export function pcaTransform(pca: Pca, points: Matrix): Float64Array {
  const { rows: n, cols: d, data } = points;
  const m = pca.nComponents;
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < m; c++) {
      let s = 0;
      for (let t = 0; t < d; t++) s += (data[i * d + t]! - pca.mean[t]!) * pca.components[c * d + t]!;
      out[i * m + c] = s;
    }
  }
  return out;
}
