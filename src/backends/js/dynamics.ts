/**
 * The reference implementations of the dynamics kernels (reservoir and spiking runs): one sample
 * at a time, float64 state, plain loops. Expected values for the conformance suite come from
 * test/conformance/make_cases.py (NumPy), not from here.
 */
import { philox4x32, philoxKey, spikeThreshold } from '../../philox.js';
import {
  type Drive,
  type Floats,
  type Matrix,
  type RecurrentWeights,
  type ReservoirRun,
  readoutBlocks,
  type SpikingRun,
} from '../backend.js';

function checkDrive(run: Drive, inputWeights: Matrix): void {
  const width = run.sequence ? run.steps * run.inputDim : run.inputDim;
  if (run.inputs.cols !== width) {
    throw new RangeError(`inputs have ${run.inputs.cols} columns, expected ${width}`);
  }
  if (inputWeights.rows !== run.inputDim) {
    throw new RangeError(`input weights have ${inputWeights.rows} rows, expected ${run.inputDim}`);
  }
  if (!Number.isInteger(run.steps) || run.steps < 1)
    throw new RangeError(`steps must be >= 1, got ${run.steps}`);
}

/** out += x W for recurrent weights, dense or CSR. */
function addRecurrent(w: RecurrentWeights, x: Float64Array, out: Float64Array): void {
  const r = x.length;
  if (w.kind === 'dense') {
    const m = w.matrix.data;
    for (let i = 0; i < r; i++) {
      const xi = x[i]!;
      if (xi === 0) continue;
      const off = i * r;
      for (let j = 0; j < r; j++) out[j]! += xi * m[off + j]!;
    }
    return;
  }
  for (let i = 0; i < r; i++) {
    const xi = x[i]!;
    if (xi === 0) continue;
    for (let p = w.rowPtr[i]!; p < w.rowPtr[i + 1]!; p++) out[w.colIdx[p]!]! += xi * w.values[p]!;
  }
}

/** out = u W_in (+ bias), u being `dim` values of `data` starting at `at`. */
function project(
  data: Floats,
  at: number,
  dim: number,
  wIn: Matrix,
  bias: Floats | undefined,
  out: Float64Array,
) {
  const r = out.length;
  if (bias) for (let j = 0; j < r; j++) out[j] = bias[j]!;
  else out.fill(0);
  for (let t = 0; t < dim; t++) {
    const u = data[at + t]!;
    if (u === 0) continue;
    const off = t * r;
    for (let j = 0; j < r; j++) out[j]! += u * wIn.data[off + j]!;
  }
}

export function reservoirRun(run: ReservoirRun): Matrix {
  checkDrive(run, run.inputWeights);
  const { inputs, inputDim: dim, steps, leak, readout } = run;
  const r = run.inputWeights.cols;
  const blocks = readoutBlocks(readout);
  if (blocks === 0) throw new RangeError('the readout selects no state');
  const washout = readout.washout ?? 0;
  if (readout.mean && washout >= steps) throw new RangeError(`washout ${washout} leaves no step of ${steps}`);
  const times = readout.times ?? [];
  // The readout blocks each step fills (a step may be listed more than once).
  const blocksAt: number[][] = Array.from({ length: steps }, () => []);
  times.forEach((t, b) => {
    if (!Number.isInteger(t) || t < 0 || t >= steps) throw new RangeError(`readout step ${t}`);
    blocksAt[t]!.push(b);
  });
  const width = r * blocks;
  const out = new Float64Array(inputs.rows * width);
  const x = new Float64Array(r);
  const pre = new Float64Array(r);
  const drive = new Float64Array(r);
  const mean = new Float64Array(r);
  for (let n = 0; n < inputs.rows; n++) {
    x.fill(0);
    mean.fill(0);
    const row = n * inputs.cols;
    if (!run.sequence) project(inputs.data, row, dim, run.inputWeights, run.bias, drive);
    for (let t = 0; t < steps; t++) {
      if (run.sequence) project(inputs.data, row + t * dim, dim, run.inputWeights, run.bias, drive);
      pre.set(drive);
      addRecurrent(run.recurrent, x, pre);
      for (let j = 0; j < r; j++) x[j] = (1 - leak) * x[j]! + leak * Math.tanh(pre[j]!);
      if (t >= washout) for (let j = 0; j < r; j++) mean[j]! += x[j]!;
      for (const b of blocksAt[t]!) out.set(x, n * width + b * r);
    }
    let b = times.length;
    if (readout.last) out.set(x, n * width + r * b++);
    if (readout.mean) {
      const scale = 1 / (steps - washout);
      for (let j = 0; j < r; j++) out[n * width + r * b + j] = mean[j]! * scale;
    }
  }
  return { rows: inputs.rows, cols: width, data: out };
}

export function spikingRun(run: SpikingRun): Matrix {
  checkDrive(run, run.inputWeights);
  const { inputs, inputDim: dim, steps, windows } = run;
  const r = run.inputWeights.cols;
  if (!Number.isInteger(windows) || windows < 1 || windows > steps) {
    throw new RangeError(`windows must be in [1, ${steps}], got ${windows}`);
  }
  if (run.sampleKeys.length !== inputs.rows) throw new RangeError('one sample key per row is needed');
  const [k0, k1] = philoxKey(run.seed);
  const width = r * windows;
  const out = new Float64Array(inputs.rows * width);
  const v = new Float64Array(r);
  const refractory = new Int32Array(r);
  const trace = new Float64Array(r);
  const spikes = new Float64Array(r);
  const current = new Float64Array(r);
  const drive = new Float64Array(dim);
  const thresholds = new Int32Array(dim);
  const random = new Uint32Array(4);
  const firstSeen = new Uint8Array(r);
  for (let n = 0; n < inputs.rows; n++) {
    v.fill(run.reset);
    refractory.fill(0);
    trace.fill(0);
    spikes.fill(0);
    const row = n * inputs.cols;
    const key = run.sampleKeys[n]!;
    for (let t = 0; t < steps; t++) {
      const window = Math.floor((t * windows) / steps);
      const windowStart = Math.ceil((window * steps) / windows);
      if (t === windowStart) firstSeen.fill(0);
      const at = run.sequence ? row + t * dim : row;
      if (run.encoding === 'rate') {
        if (t === 0 || run.sequence)
          for (let i = 0; i < dim; i++) thresholds[i] = spikeThreshold(inputs.data[at + i]!);
        for (let i = 0; i < dim; i += 4) {
          philox4x32(key, t, i >>> 2, 0, k0, k1, random);
          for (let q = 0; q < 4 && i + q < dim; q++)
            drive[i + q] = random[q]! >>> 8 < thresholds[i + q]! ? 1 : 0;
        }
      } else {
        for (let i = 0; i < dim; i++) drive[i] = inputs.data[at + i]!;
      }
      project(drive, 0, dim, run.inputWeights, run.bias, current);
      if (run.recurrent) addRecurrent(run.recurrent, spikes, current);
      const base = n * width + window * r;
      for (let j = 0; j < r; j++) {
        let s = 0;
        if (refractory[j]! > 0) {
          refractory[j]!--;
          v[j] = run.reset;
        } else {
          v[j] = v[j]! - run.decay * v[j]! + current[j]!;
          if (v[j]! >= run.threshold) {
            s = 1;
            v[j] = run.reset;
            refractory[j] = run.refractorySteps;
          }
        }
        spikes[j] = s;
        trace[j] = trace[j]! * run.traceDecay + s;
        if (run.readout === 'counts' || run.readout === 'rates') out[base + j]! += s;
        else if (run.readout === 'first-spike') {
          if (t === windowStart) out[base + j] = windowEnd(window, steps, windows) - windowStart;
          if (s && !firstSeen[j]) {
            firstSeen[j] = 1;
            out[base + j] = t - windowStart;
          }
        }
      }
      const end = windowEnd(window, steps, windows);
      if (end === t + 1) {
        if (run.readout === 'trace') out.set(trace, base);
        else if (run.readout === 'rates') for (let j = 0; j < r; j++) out[base + j]! /= end - windowStart;
      }
    }
  }
  return { rows: inputs.rows, cols: width, data: out };
}

/** One past the last step of a window. */
function windowEnd(window: number, steps: number, windows: number): number {
  return Math.ceil(((window + 1) * steps) / windows);
}
