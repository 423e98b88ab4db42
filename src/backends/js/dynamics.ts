/**
 * The reference implementations of the dynamics kernels (reservoir and spiking runs): one sample
 * at a time, plain loops; the reservoir state in float64, the spiking state in float32 rounded op
 * by op as the device kernels compute it. Expected values for the conformance suite come from
 * test/conformance/make_cases.py (NumPy), not from here.
 *
 * Each run is a generator that yields between time steps once the clock passes `slice.until`, so
 * that its driver (the JS backend) can give the event loop a turn and stop at a deadline even in
 * the middle of one long sample.
 */

import type { Floats, Matrix } from '../../core/matrix.js';
import { philox4x32, philoxKey, spikeThreshold } from '../../core/philox.js';
import {
  checkDrive,
  checkReadout,
  type RecurrentWeights,
  type ReservoirRun,
  readoutBlocks,
  type SpikingRun,
} from '../backend.js';

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

/** When a run should next yield (`performance.now()` time); the driver moves it on. */
export interface Slice {
  until: number;
}

/**
 * Yield points cost a clock read: one every this many time steps (a reservoir step is R x R
 * multiply-adds; a spiking step, a few per neuron, so it checks less often).
 */
const CHECK_EVERY = 4;
const SPIKING_CHECK_EVERY = 32;

export function* reservoirRun(run: ReservoirRun, slice: Slice): Generator<void, Matrix> {
  checkDrive(run, run.inputWeights);
  const { inputs, inputDim: dim, steps, leak, readout } = run;
  const r = run.inputWeights.cols;
  const blocks = readoutBlocks(readout);
  const { blocksAt, washout } = checkReadout(readout, steps);
  const times = readout.times ?? [];
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
      if (t % CHECK_EVERY === 0 && performance.now() > slice.until) yield;
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

const fr = Math.fround;

/** Recurrent weights rounded to float32, as a device holds them. */
function recurrent32(w: RecurrentWeights): RecurrentWeights {
  return w.kind === 'dense'
    ? { kind: 'dense', matrix: { ...w.matrix, data: Float32Array.from(w.matrix.data) } }
    : { ...w, values: Float32Array.from(w.values) };
}

/**
 * The spiking run in float32, every operation rounded (`Math.fround`) in the order the WGSL and
 * WASM kernels use, so that all backends fire the same spikes: current = bias + sum_i d_i W_in[i]
 * (i ascending, zero inputs skipped) + sum_i s_i W[i] (i ascending), then v = (v - decay v) + current.
 * Two float32 values added or multiplied in double and rounded once give the float32 result.
 */
export function* spikingRun(run: SpikingRun, slice: Slice): Generator<void, Matrix> {
  checkDrive(run, run.inputWeights);
  const { inputs, inputDim: dim, steps, windows } = run;
  const r = run.inputWeights.cols;
  if (!Number.isInteger(windows) || windows < 1 || windows > steps) {
    throw new RangeError(`windows must be in [1, ${steps}], got ${windows}`);
  }
  if (run.sampleKeys.length !== inputs.rows) throw new RangeError('one sample key per row is needed');
  const [k0, k1] = philoxKey(run.seed);
  const wIn = Float32Array.from(run.inputWeights.data);
  const bias = run.bias ? Float32Array.from(run.bias) : new Float32Array(r);
  const recurrent = run.recurrent ? recurrent32(run.recurrent) : undefined;
  const decay = fr(run.decay);
  const threshold = fr(run.threshold);
  const reset = fr(run.reset);
  const traceDecay = fr(run.traceDecay);
  const width = r * windows;
  const out = new Float64Array(inputs.rows * width);
  const v = new Float32Array(r);
  const refractory = new Int32Array(r);
  const trace = new Float32Array(r);
  const spikes = new Float64Array(r);
  const current = new Float32Array(r);
  const drive = new Float32Array(dim);
  const thresholds = new Int32Array(dim);
  const random = new Uint32Array(4);
  const firstSeen = new Uint8Array(r);
  for (let n = 0; n < inputs.rows; n++) {
    v.fill(reset);
    refractory.fill(0);
    trace.fill(0);
    spikes.fill(0);
    const row = n * inputs.cols;
    const key = run.sampleKeys[n]!;
    for (let t = 0; t < steps; t++) {
      if (t % SPIKING_CHECK_EVERY === 0 && performance.now() > slice.until) yield;
      const window = Math.floor((t * windows) / steps);
      const windowStart = Math.ceil((window * steps) / windows);
      const end = windowEnd(window, steps, windows);
      if (t === windowStart) firstSeen.fill(0);
      const at = run.sequence ? row + t * dim : row;
      if (run.encoding === 'rate') {
        if (t === 0 || run.sequence)
          for (let i = 0; i < dim; i++) thresholds[i] = spikeThreshold(fr(inputs.data[at + i]!));
        for (let i = 0; i < dim; i += 4) {
          philox4x32(key, t, i >>> 2, 0, k0, k1, random);
          for (let q = 0; q < 4 && i + q < dim; q++)
            drive[i + q] = random[q]! >>> 8 < thresholds[i + q]! ? 1 : 0;
        }
      } else {
        for (let i = 0; i < dim; i++) drive[i] = inputs.data[at + i]!;
      }
      current.set(bias);
      for (let i = 0; i < dim; i++) {
        const d = drive[i]!;
        if (d === 0) continue;
        for (let j = 0; j < r; j++) current[j] = current[j]! + fr(d * wIn[i * r + j]!);
      }
      if (recurrent) addRecurrent32(recurrent, spikes, current);
      const base = n * width + window * r;
      for (let j = 0; j < r; j++) {
        let s = 0;
        if (refractory[j]! > 0) {
          refractory[j]!--;
          v[j] = reset;
        } else {
          v[j] = v[j]! - fr(decay * v[j]!);
          v[j] = v[j]! + current[j]!;
          if (v[j]! >= threshold) {
            s = 1;
            v[j] = reset;
            refractory[j] = run.refractorySteps;
          }
        }
        spikes[j] = s;
        trace[j] = fr(trace[j]! * traceDecay) + s;
        if (run.readout === 'counts' || run.readout === 'rates') out[base + j]! += s;
        else if (run.readout === 'first-spike') {
          if (t === windowStart) out[base + j] = end - windowStart;
          if (s && !firstSeen[j]) {
            firstSeen[j] = 1;
            out[base + j] = t - windowStart;
          }
        }
      }
      if (end === t + 1) {
        if (run.readout === 'trace') out.set(trace, base);
        else if (run.readout === 'rates') for (let j = 0; j < r; j++) out[base + j]! /= end - windowStart;
      }
    }
  }
  const scale = run.scale ?? 1;
  if (scale !== 1) for (let i = 0; i < out.length; i++) out[i]! *= scale;
  return { rows: inputs.rows, cols: width, data: out };
}

/** current += s W for 0/1 spikes s, float32 (the stores into `current` round each sum). */
function addRecurrent32(w: RecurrentWeights, s: Float64Array, current: Float32Array): void {
  const r = s.length;
  for (let i = 0; i < r; i++) {
    if (s[i] === 0) continue;
    if (w.kind === 'dense') {
      const m = w.matrix.data;
      for (let j = 0; j < r; j++) current[j] = current[j]! + m[i * r + j]!;
    } else {
      for (let p = w.rowPtr[i]!; p < w.rowPtr[i + 1]!; p++) {
        const j = w.colIdx[p]!;
        current[j] = current[j]! + w.values[p]!;
      }
    }
  }
}

/** One past the last step of a window. */
function windowEnd(window: number, steps: number, windows: number): number {
  return Math.ceil(((window + 1) * steps) / windows);
}
