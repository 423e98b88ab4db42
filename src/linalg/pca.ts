/**
 * Principal components from the d x d covariance, accumulated over row chunks by the backend's
 * matmul kernel (X_c^T X_c per chunk), eigendecomposed on the host with ml-matrix. Never an
 * N x d SVD: memory stays at one chunk plus d x d whatever N is. Wide data (fewer rows than
 * columns) takes the n x n Gram matrix X_c X_c^T instead: it has the covariance's nonzero
 * eigenvalues (times n - 1), its eigenvectors u give the components X_c^T u / |X_c^T u|, and it
 * needs n x d plus n x n where the covariance needs d x d (20 rows of 20,000 features: 3 MB and
 * 3 KB instead of 3.2 GB). The memory estimate of each path is {@link pcaAllocations}.
 */
import { EigenvalueDecomposition, Matrix as MlMatrix } from 'ml-matrix';
import { throwIfAborted } from '../core/cancel.js';
import type { Floats, Matrix } from '../core/matrix.js';
import { Random } from '../core/random.js';

/** What PCA asks of a backend: its matrix product (a Backend is one). */
export interface MatrixProduct {
  matmul(a: Matrix, b: Matrix, bias?: Floats): Promise<Matrix>;
}

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
  backend: MatrixProduct,
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
async function topEigen(backend: MatrixProduct, cov: Float64Array, d: number, m: number): Promise<Eigen> {
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

/** Which matrix the components come from: `auto` takes the Gram matrix when n < d. */
export type PcaPath = 'auto' | 'covariance' | 'gram';

/** The path `auto` takes for an n x d matrix. */
export function pcaPath(n: number, d: number): 'covariance' | 'gram' {
  return n < d ? 'gram' : 'covariance';
}

/** Top eigenpairs of the d x d covariance, and its trace (the total variance). */
async function covarianceEigen(
  backend: MatrixProduct,
  points: Matrix,
  m: number,
  signal?: AbortSignal,
): Promise<{ mean: Float64Array; eigen: Eigen; total: number }> {
  const d = points.cols;
  const { mean, cov } = await covariance(backend, points, signal);
  const eigen = d <= FULL_EVD_MAX ? symmetricEvd(cov, d) : await topEigen(backend, cov, d, m);
  let total = 0;
  for (let t = 0; t < d; t++) total += cov[t * d + t]!;
  return { mean, eigen, total };
}

/**
 * The same from the n x n Gram matrix G = X_c X_c^T / (n - 1) of a wide matrix: G u = l u gives the
 * covariance's eigenpair (l, X_c^T u / sqrt((n - 1) l)). The centred data has rank n - 1 at most;
 * components past its rank (eigenvalue 0, any direction orthogonal to the data serves, as in the
 * covariance path) are completed by seeded vectors made orthonormal to the others.
 */
async function gramEigen(
  backend: MatrixProduct,
  points: Matrix,
  m: number,
  signal?: AbortSignal,
): Promise<{ mean: Float64Array; eigen: Eigen; total: number }> {
  const { rows: n, cols: d, data } = points;
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let t = 0; t < d; t++) mean[t]! += data[i * d + t]!;
  for (let t = 0; t < d; t++) mean[t]! /= n;
  throwIfAborted(signal);
  const centred = new Float64Array(n * d);
  const transposed = new Float64Array(d * n);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < d; t++) {
      const v = data[i * d + t]! - mean[t]!;
      centred[i * d + t] = v;
      transposed[t * n + i] = v;
    }
  }
  const denom = Math.max(1, n - 1);
  const gram = (
    await backend.matmul({ rows: n, cols: d, data: centred }, { rows: d, cols: n, data: transposed })
  ).data;
  const g = Float64Array.from(gram, (v) => v / denom);
  for (let a = 0; a < n; a++)
    for (let b = 0; b < a; b++) g[a * n + b] = g[b * n + a] = (g[a * n + b]! + g[b * n + a]!) / 2;
  throwIfAborted(signal);
  const inner = n <= FULL_EVD_MAX ? symmetricEvd(g, n) : await topEigen(backend, g, n, Math.min(m, n));
  let total = 0;
  for (let i = 0; i < n; i++) total += g[i * n + i]!;
  // Eigenvalues below rounding of the largest are the centring's null space, not directions.
  const floor = Math.max(0, inner.values[0] ?? 0) * n * 1e-12;
  const r = inner.values.slice(0, m).filter((l) => l > floor).length;
  const u = new Float64Array(n * Math.max(1, r));
  for (let i = 0; i < n; i++) for (let c = 0; c < r; c++) u[i * r + c] = inner.vector(i, c);
  const vectors = new Float64Array(d * m);
  if (r > 0) {
    const xu = (await backend.matmul({ rows: d, cols: n, data: transposed }, { rows: n, cols: r, data: u }))
      .data;
    for (let c = 0; c < r; c++) {
      let norm = 0;
      for (let t = 0; t < d; t++) norm += xu[t * r + c]! ** 2;
      norm = Math.sqrt(norm);
      for (let t = 0; t < d; t++) vectors[t * m + c] = xu[t * r + c]! / norm;
    }
  }
  if (r < m) {
    const rng = new Random(0x5eed);
    for (let t = 0; t < d; t++) for (let c = r; c < m; c++) vectors[t * m + c] = rng.normal();
    orthonormalize(vectors, d, m);
  }
  const values = Array.from({ length: m }, (_, c) => (c < r ? inner.values[c]! : 0));
  return { mean, eigen: { values, vector: (t, c) => vectors[t * m + c]! }, total };
}

/**
 * Fits PCA with `nComponents` (at most d) components, from the covariance or, for wide data, the
 * Gram matrix (`path`, `auto` by default: the same components, up to rounding).
 */
export async function fitPca(
  backend: MatrixProduct,
  points: Matrix,
  nComponents: number,
  signal?: AbortSignal,
  path: PcaPath = 'auto',
): Promise<Pca> {
  const { rows: n, cols: d } = points;
  const m = Math.min(nComponents, d);
  const gram = (path === 'auto' ? pcaPath(n, d) : path) === 'gram';
  // The total variance is the trace, whichever way the components were found.
  const { mean, eigen, total } = gram
    ? await gramEigen(backend, points, m, signal)
    : await covarianceEigen(backend, points, m, signal);
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
export async function pcaTransform(backend: MatrixProduct, pca: Pca, points: Matrix): Promise<Matrix> {
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

/**
 * The arrays {@link fitPca} and {@link pcaTransform} allocate for n x d features and m components,
 * float64 unless `deviceBytes` (a backend's copies of the matmul operands and products; 0 for
 * none): the covariance path's d x d sum and chunk product, or the Gram path's n x d centred copy
 * and its transpose and n x n matrix; the eigendecomposition; the components; the projection's
 * operands. For src/observability/resources.ts, which admits a job by their sum.
 */
export function pcaAllocations(
  n: number,
  d: number,
  m: number,
  deviceBytes: number,
): { what: string; elements: number; bytesPerElement: number; count?: number }[] {
  const f64 = 8;
  const k = m + 10;
  // Both paths decompose an s x s matrix: the n x n Gram matrix, or the d x d covariance.
  const gram = pcaPath(n, d) === 'gram';
  const s = gram ? n : d;
  const c = Math.min(CHUNK, n);
  return [
    { what: 'the PCA components', elements: d * m, bytesPerElement: f64, count: 3 },
    { what: "the backend's copy of the PCA input", elements: n * d, bytesPerElement: deviceBytes },
    gram
      ? { what: 'the centred features and their transpose', elements: n * d, bytesPerElement: f64, count: 2 }
      : {
          what: 'a chunk of centred features and its transpose',
          elements: c * d,
          bytesPerElement: f64,
          count: 2,
        },
    {
      what: gram ? 'the PCA Gram matrix' : 'the PCA covariance (d x d)',
      elements: s * s,
      bytesPerElement: f64,
      count: 2,
    },
    s <= FULL_EVD_MAX
      ? { what: 'the PCA eigendecomposition', elements: s * s, bytesPerElement: f64, count: 4 }
      : { what: 'the PCA subspace iteration', elements: s * k, bytesPerElement: f64, count: 4 },
    gram
      ? {
          what: "the backend's copy of the PCA Gram operands",
          elements: n * d,
          bytesPerElement: deviceBytes,
          count: 2,
        }
      : {
          what: "the backend's copy of the PCA covariance",
          elements: d * d,
          bytesPerElement: deviceBytes,
          count: 2,
        },
  ];
}
