/**
 * The model space (Bianchi, Scardapane, Lokse and Jenssen 2020): each series is represented by
 * the ridge readout that predicts its next input from the reservoir state, [1; x_t] -> u_{t+1}
 * (their output model space), or its next state, [1; x_t] -> x_{t+1} (their reservoir model
 * space, on states reduced by PCA). Two series are close when the same readout explains both,
 * which keeps the time structure that a final or mean state throws away. Works on any
 * reservoir's states: the ESN's or the spiking layers' filtered traces.
 */
import { CholeskyDecomposition, Matrix as MlMatrix } from 'ml-matrix';
import type { Drive } from '../backends/backend.js';
import { throwIfAborted } from '../core/cancel.js';
import type { Matrix } from '../core/matrix.js';

/**
 * `states` is N x (steps x units), the state after every step; `drive.inputs` the series the
 * reservoir ran on, each to its own end when `lengths` says (series of unequal lengths: the
 * states past a series' end are not read). The readout predicts the next input, or the next of
 * `target`'s steps (`dims` values each; the states themselves for the reservoir model space).
 * Returns N x ((units + 1) x dims): each series' readout coefficients.
 */
export function modelSpace(
  states: Matrix,
  units: number,
  drive: Drive,
  washout: number,
  ridge: number,
  signal?: AbortSignal,
  lengths?: Int32Array,
  target: { readonly values: Matrix; readonly dims: number } = { values: drive.inputs, dims: drive.inputDim },
): Matrix {
  const { steps } = drive;
  const { values: inputs, dims } = target;
  if (states.cols !== steps * units)
    throw new RangeError(`states have ${states.cols} columns, not ${steps} x ${units}`);
  const p = units + 1;
  const out = new Float64Array(states.rows * p * dims);
  const z = new Float64Array(p);
  for (let n = 0; n < states.rows; n++) {
    if (n % 64 === 0) throwIfAborted(signal);
    const xtx = new MlMatrix(p, p);
    const xty = new MlMatrix(p, dims);
    const end = lengths?.[n] ?? steps;
    const first = Math.max(0, Math.min(washout, end - 2));
    for (let t = first; t < end - 1; t++) {
      z[0] = 1;
      for (let j = 0; j < units; j++) z[j + 1] = states.data[n * states.cols + t * units + j]!;
      const target = n * inputs.cols + (t + 1) * dims;
      for (let a = 0; a < p; a++) {
        const za = z[a]!;
        if (za === 0) continue;
        for (let b = a; b < p; b++) xtx.set(a, b, xtx.get(a, b) + za * z[b]!);
        for (let q = 0; q < dims; q++) xty.set(a, q, xty.get(a, q) + za * inputs.data[target + q]!);
      }
    }
    for (let a = 0; a < p; a++) {
      for (let b = 0; b < a; b++) xtx.set(a, b, xtx.get(b, a));
      xtx.set(a, a, xtx.get(a, a) + ridge);
    }
    const w = new CholeskyDecomposition(xtx).solve(xty);
    for (let a = 0; a < p; a++) for (let q = 0; q < dims; q++) out[n * p * dims + a * dims + q] = w.get(a, q);
  }
  return { rows: states.rows, cols: p * dims, data: out };
}
