/**
 * Encoder weights, made on the host from the seed: input weights, sparse random recurrent
 * matrices scaled to a spectral radius computed with ml-matrix (never assumed), and the liquid's
 * distance-dependent excitatory/inhibitory wiring on a 3-D grid.
 */
import { EigenvalueDecomposition, Matrix as MlMatrix } from 'ml-matrix';
import type { RecurrentWeights } from '../backends/backend.js';
import type { Matrix } from '../core/matrix.js';
import type { Random } from '../core/random.js';

/** rows x cols, uniform in [-scale, scale]. */
export function uniformMatrix(rng: Random, rows: number, cols: number, scale: number): Matrix {
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = (rng.float() * 2 - 1) * scale;
  return { rows, cols, data };
}

/** rows x cols, normal with standard deviation `scale`. */
export function normalMatrix(rng: Random, rows: number, cols: number, scale: number): Matrix {
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() * scale;
  return { rows, cols, data };
}

/** Largest eigenvalue modulus of a square matrix (complex eigenvalues included). */
export function spectralRadius(m: Matrix): number {
  const rows: number[][] = [];
  for (let i = 0; i < m.rows; i++) rows.push(Array.from(m.data.subarray(i * m.cols, (i + 1) * m.cols)));
  const evd = new EigenvalueDecomposition(new MlMatrix(rows));
  let max = 0;
  evd.realEigenvalues.forEach((re, i) => {
    max = Math.max(max, Math.hypot(re, evd.imaginaryEigenvalues[i]!));
  });
  return max;
}

/** The non-zero entries of a dense square matrix in CSR form. */
export function toCsr(m: Matrix): RecurrentWeights & { kind: 'csr' } {
  const n = m.rows;
  const rowPtr = new Int32Array(n + 1);
  const cols: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const v = m.data[i * n + j]!;
      if (v !== 0) {
        cols.push(j);
        values.push(v);
      }
    }
    rowPtr[i + 1] = cols.length;
  }
  return { kind: 'csr', size: n, rowPtr, colIdx: Int32Array.from(cols), values: Float64Array.from(values) };
}

/** Sparse enough that the CSR product is cheaper than the dense one. */
export function recurrentWeights(m: Matrix): RecurrentWeights {
  const csr = toCsr(m);
  return csr.values.length < 0.5 * m.rows * m.cols ? csr : { kind: 'dense', matrix: m };
}

/**
 * An echo state network's recurrent matrix: normal weights, a fraction `connectivity` of them
 * kept, scaled so that the spectral radius is `radius` (as reference.py and ReservoirPy do).
 */
export function reservoirMatrix(rng: Random, units: number, connectivity: number, radius: number): Matrix {
  const data = new Float64Array(units * units);
  for (let i = 0; i < data.length; i++) {
    const w = rng.normal();
    if (rng.float() < connectivity) data[i] = w;
  }
  const m = { rows: units, cols: units, data };
  const rho = spectralRadius(m);
  if (rho > 0) for (let i = 0; i < data.length; i++) data[i]! *= radius / rho;
  return m;
}

/** A liquid's wiring: which neurons are inhibitory, and the signed weights between neurons. */
export interface Liquid {
  readonly inhibitory: Uint8Array;
  readonly weights: Matrix;
}

/** Grid side lengths for n neurons: as cubic as possible (64 -> 4 x 4 x 4). */
export function gridShape(n: number): [number, number, number] {
  let best: [number, number, number] = [n, 1, 1];
  let bestSpread = Number.POSITIVE_INFINITY;
  for (let a = 1; a <= n; a++) {
    if (n % a) continue;
    for (let b = 1; b <= n / a; b++) {
      if ((n / a) % b) continue;
      const c = n / a / b;
      const spread = Math.max(a, b, c) - Math.min(a, b, c);
      if (spread < bestSpread) {
        bestSpread = spread;
        best = [a, b, c];
      }
    }
  }
  return best;
}

/**
 * Maass, Natschlaeger and Markram (2002): neurons on a 3-D grid, a fraction `excitatory` of them
 * excitatory; neuron a connects to b with probability C(a, b) exp(-(D(a, b) / lambda)^2), where C
 * depends on the types (EE 0.3, EI 0.2, IE 0.4, II 0.1, scaled by `connectivity` / 0.3) and D is
 * the grid distance. Mean strengths by type follow that model's ratios (EE 30, EI 60, IE -19, II -19,
 * here 3, 6, -2, -2), times `weightScale`: the sign comes from the presynaptic neuron.
 */
export function liquidWiring(
  rng: Random,
  neurons: number,
  options: { excitatory: number; connectivity: number; lambda: number; weightScale: number },
): Liquid {
  const [gx, gy] = gridShape(neurons);
  const inhibitory = new Uint8Array(neurons);
  for (const i of rng.sample(neurons, Math.round(neurons * (1 - options.excitatory)))) inhibitory[i] = 1;
  const pos = (i: number) => [i % gx, Math.floor(i / gx) % gy, Math.floor(i / (gx * gy))] as const;
  const scale = options.connectivity / 0.3;
  const C = { ee: 0.3, ei: 0.2, ie: 0.4, ii: 0.1 };
  const W = { ee: 3, ei: 6, ie: -2, ii: -2 };
  const data = new Float64Array(neurons * neurons);
  for (let a = 0; a < neurons; a++) {
    const pa = pos(a);
    for (let b = 0; b < neurons; b++) {
      if (a === b) continue;
      const pb = pos(b);
      const dist2 = (pa[0] - pb[0]) ** 2 + (pa[1] - pb[1]) ** 2 + (pa[2] - pb[2]) ** 2;
      const type = `${inhibitory[a] ? 'i' : 'e'}${inhibitory[b] ? 'i' : 'e'}` as keyof typeof C;
      const p = Math.min(1, C[type] * scale) * Math.exp(-dist2 / (options.lambda * options.lambda));
      if (rng.float() < p) {
        // Magnitudes spread uniformly over 0.5 to 1.5 times the mean of the type.
        data[a * neurons + b] = W[type] * options.weightScale * (0.5 + rng.float());
      }
    }
  }
  return { inhibitory, weights: { rows: neurons, cols: neurons, data } };
}
