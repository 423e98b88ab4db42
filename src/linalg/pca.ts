/**
 * Principal components from the d x d covariance, accumulated over row chunks by the backend's
 * matmul kernel (X_c^T X_c per chunk), eigendecomposed on the host with ml-matrix. Never an
 * N x d SVD: memory stays at one chunk plus d x d whatever N is.
 */
import { EigenvalueDecomposition, Matrix as MlMatrix } from 'ml-matrix';
import type { Backend, Matrix } from '../backends/backend.js';
import { Random } from '../random.js';
import { throwIfAborted } from '../resilience/errors.js';

export interface Pca {
  readonly mean: Float64Array;
  /** components x d, row-major; each row a unit vector, largest loading positive. */
  readonly components: Float64Array;
  readonly nComponents: number;
  /** Variance along each component, and its share of the total. */
  readonly explainedVariance: readonly number[];
  readonly explainedVarianceRatio: readonly number[];
}

/** Rows per matmul call when accumulating the covariance. */
const CHUNK = 4096;

/** Column means and the covariance (d x d, unbiased), the products done by the matmul kernel. */
export async function covariance(
  backend: Backend,
  points: Matrix,
  signal?: AbortSignal,
): Promise<{ mean: Float64Array; cov: Float64Array }> {
  const { rows: n, cols: d, data } = points;
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let t = 0; t < d; t++) mean[t]! += data[i * d + t]!;
  for (let t = 0; t < d; t++) mean[t]! /= n;
  const cov = new Float64Array(d * d);
  for (let start = 0; start < n; start += CHUNK) {
    throwIfAborted(signal);
    const m = Math.min(CHUNK, n - start);
    const centred = new Float64Array(m * d);
    const transposed = new Float64Array(d * m);
    for (let i = 0; i < m; i++) {
      for (let t = 0; t < d; t++) {
        const v = data[(start + i) * d + t]! - mean[t]!;
        centred[i * d + t] = v;
        transposed[t * m + i] = v;
      }
    }
    const product = await backend.matmul(
      { rows: d, cols: m, data: transposed },
      { rows: m, cols: d, data: centred },
    );
    for (let i = 0; i < d * d; i++) cov[i]! += product.data[i]!;
  }
  const denom = Math.max(1, n - 1);
  for (let i = 0; i < d * d; i++) cov[i]! /= denom;
  return { mean, cov };
}

/** Up to this width the covariance is eigendecomposed whole; above, only its top subspace. */
const FULL_EVD_MAX = 256;

interface Eigen {
  /** Eigenvalues, largest first, and eigenvector `c` as get(t, c). */
  readonly values: number[];
  readonly vector: (t: number, c: number) => number;
}

function symmetricEvd(a: Float64Array, d: number): Eigen {
  const rows: number[][] = [];
  for (let i = 0; i < d; i++) rows.push(Array.from(a.subarray(i * d, (i + 1) * d)));
  const evd = new EigenvalueDecomposition(new MlMatrix(rows), { assumeSymmetric: true });
  const order = evd.realEigenvalues
    .map((_, i) => i)
    .sort((x, y) => evd.realEigenvalues[y]! - evd.realEigenvalues[x]!);
  const vectors = evd.eigenvectorMatrix;
  return { values: order.map((i) => evd.realEigenvalues[i]!), vector: (t, c) => vectors.get(t, order[c]!) };
}

/** Orthonormalizes the columns of a d x k matrix in place (modified Gram-Schmidt). */
function orthonormalize(q: Float64Array, d: number, k: number): void {
  for (let c = 0; c < k; c++) {
    for (let prev = 0; prev < c; prev++) {
      let dot = 0;
      for (let t = 0; t < d; t++) dot += q[t * k + c]! * q[t * k + prev]!;
      for (let t = 0; t < d; t++) q[t * k + c]! -= dot * q[t * k + prev]!;
    }
    let norm = 0;
    for (let t = 0; t < d; t++) norm += q[t * k + c]! ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let t = 0; t < d; t++) q[t * k + c]! /= norm;
  }
}

/**
 * The top `m` eigenpairs of a wide covariance by randomized subspace iteration (Halko, Martinsson
 * and Tropp 2011): a seeded start, power iterations C Q through the matmul kernel, then the small
 * projected problem Q^T C Q solved exactly. Exact up to rounding for the components that matter.
 */
async function topEigen(backend: Backend, cov: Float64Array, d: number, m: number): Promise<Eigen> {
  const k = Math.min(d, m + 10);
  const rng = new Random(0x5eed);
  let q = Float64Array.from({ length: d * k }, () => rng.normal());
  const c: Matrix = { rows: d, cols: d, data: cov };
  orthonormalize(q, d, k);
  for (let it = 0; it < 8; it++) {
    q = Float64Array.from((await backend.matmul(c, { rows: d, cols: k, data: q })).data);
    orthonormalize(q, d, k);
  }
  const cq = (await backend.matmul(c, { rows: d, cols: k, data: q })).data;
  const small = new Float64Array(k * k);
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < k; b++) {
      let s = 0;
      for (let t = 0; t < d; t++) s += q[t * k + a]! * cq[t * k + b]!;
      small[a * k + b] = s;
    }
  }
  for (let a = 0; a < k; a++)
    for (let b = 0; b < a; b++)
      small[a * k + b] = small[b * k + a] = (small[a * k + b]! + small[b * k + a]!) / 2;
  const inner = symmetricEvd(small, k);
  return {
    values: inner.values,
    vector: (t, col) => {
      let s = 0;
      for (let a = 0; a < k; a++) s += q[t * k + a]! * inner.vector(a, col);
      return s;
    },
  };
}

/** Fits PCA with `nComponents` (at most d) components. */
export async function fitPca(
  backend: Backend,
  points: Matrix,
  nComponents: number,
  signal?: AbortSignal,
): Promise<Pca> {
  const d = points.cols;
  const m = Math.min(nComponents, d);
  const { mean, cov } = await covariance(backend, points, signal);
  const eigen = d <= FULL_EVD_MAX ? symmetricEvd(cov, d) : await topEigen(backend, cov, d, m);
  // The total variance is the trace, whichever way the components were found.
  let total = 0;
  for (let t = 0; t < d; t++) total += cov[t * d + t]!;
  const components = new Float64Array(m * d);
  const explainedVariance: number[] = [];
  for (let c = 0; c < m; c++) {
    // Sign convention: the largest loading positive, so a refit gives the same axes.
    let maxAbs = 0;
    let sign = 1;
    for (let t = 0; t < d; t++) {
      const v = eigen.vector(t, c);
      if (Math.abs(v) > maxAbs) {
        maxAbs = Math.abs(v);
        sign = v < 0 ? -1 : 1;
      }
    }
    for (let t = 0; t < d; t++) components[c * d + t] = sign * eigen.vector(t, c);
    explainedVariance.push(Math.max(0, eigen.values[c]!));
  }
  return {
    mean,
    components,
    nComponents: m,
    explainedVariance,
    explainedVarianceRatio: explainedVariance.map((v) => (total > 0 ? v / total : 0)),
  };
}

/** Projects rows onto the fitted components with the matmul kernel: n x nComponents. */
export async function pcaTransform(backend: Backend, pca: Pca, points: Matrix): Promise<Matrix> {
  const { rows: n, cols: d } = points;
  const m = pca.nComponents;
  // (x - mean) C^T = x C^T - mean C^T: one matmul with the bias -mean C^T.
  const ct = new Float64Array(d * m);
  const bias = new Float64Array(m);
  for (let c = 0; c < m; c++) {
    for (let t = 0; t < d; t++) {
      ct[t * m + c] = pca.components[c * d + t]!;
      bias[c]! -= pca.mean[t]! * pca.components[c * d + t]!;
    }
  }
  const out = await backend.matmul(points, { rows: d, cols: m, data: ct }, bias);
  return { rows: n, cols: m, data: out.data };
}
