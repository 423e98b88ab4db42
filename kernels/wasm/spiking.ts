// Leaky integrate-and-fire layers and liquids, with input spikes from Philox4x32-10.
import { f32At, i32At } from './common';
import { project, recurrent } from './reservoir';

const M0: u64 = 0xd2511f53;
const M1: u64 = 0xcd9e8d57;
const W0: u32 = 0x9e3779b9;
const W1: u32 = 0xbb67ae85;

/** Philox4x32-10 of counter (c0..c3) and key (k0, k1) into four uint32 at `out`. */
function philox(c0: u32, c1: u32, c2: u32, c3: u32, k0: u32, k1: u32, out: usize): void {
  for (let round = 0; round < 10; round++) {
    const p0 = M0 * <u64>c0;
    const p1 = M1 * <u64>c2;
    const n0 = (<u32>(p1 >> 32)) ^ c1 ^ k0;
    const n2 = (<u32>(p0 >> 32)) ^ c3 ^ k1;
    c1 = <u32>p1;
    c3 = <u32>p0;
    c0 = n0;
    c2 = n2;
    k0 += W0;
    k1 += W1;
  }
  store<u32>(out, c0);
  store<u32>(out, c1, 4);
  store<u32>(out, c2, 8);
  store<u32>(out, c3, 12);
}

/**
 * A LIF layer (or recurrent liquid), samples [r0, r1), in float32 with every operation in the
 * JS reference's order: current = bias + sum_i d_i W_in[i] + sum_i s_i W[i], then
 * v = (v - decay v) + current. `rate` draws Bernoulli input spikes from Philox keyed by
 * (sample key, step, input / 4) with the inputs as probabilities. Readout 0 counts, 1 rates,
 * 2 first-spike, 3 trace, over `windows` windows. `scratch`: 5 r + dim + 4 floats.
 */
export function spiking(
  u: usize,
  inCols: i32,
  dim: i32,
  steps: i32,
  sequence: i32,
  rate: i32,
  keys: usize,
  key0: u32,
  key1: u32,
  wIn: usize,
  bias: usize,
  r: i32,
  w: usize,
  rowPtr: usize,
  colIdx: usize,
  hasRecurrent: i32,
  decay: f32,
  threshold: f32,
  reset: f32,
  refractorySteps: i32,
  traceDecay: f32,
  readout: i32,
  windows: i32,
  out: usize,
  scratch: usize,
  r0: i32,
  r1: i32,
): void {
  const bytes = <usize>r << 2;
  const v = scratch;
  const trace = v + bytes;
  const spikes = trace + bytes;
  const current = spikes + bytes;
  const refr = current + bytes; // int32
  const drive = refr + bytes;
  const random = drive + (<usize>dim << 2);
  const width = r * windows;
  for (let s = r0; s < r1; s++) {
    for (let j = 0; j < r; j++) store<f32>(v + (<usize>j << 2), reset);
    memory.fill(trace, 0, bytes);
    memory.fill(spikes, 0, bytes);
    memory.fill(refr, 0, bytes);
    const row = u + (<usize>(s * inCols) << 2);
    const key = i32At(keys, s);
    const outRow = out + (<usize>(s * width) << 2);
    for (let t = 0; t < steps; t++) {
      const window = (t * windows) / steps;
      const start = (window * steps + windows - 1) / windows;
      const end = ((window + 1) * steps + windows - 1) / windows;
      const at = sequence ? row + (<usize>(t * dim) << 2) : row;
      if (rate) {
        for (let i = 0; i < dim; i += 4) {
          philox(<u32>key, <u32>t, <u32>(i >> 2), 0, key0, key1, random);
          for (let q = 0; q < 4 && i + q < dim; q++) {
            const p = f32At(at, i + q);
            const clamped: f64 = p < 0 ? 0 : p > 1 ? 1 : <f64>p;
            const limit = <u32>Math.floor(clamped * 16777216);
            const draw = load<u32>(random + (<usize>q << 2)) >> 8;
            store<f32>(drive + (<usize>(i + q) << 2), draw < limit ? 1 : 0);
          }
        }
      } else {
        memory.copy(drive, at, <usize>dim << 2);
      }
      project(drive, dim, wIn, bias, r, current);
      if (hasRecurrent) recurrent(spikes, w, rowPtr, colIdx, r, current);
      const base = outRow + (<usize>(window * r) << 2);
      if (t == start && readout <= 1) memory.fill(base, 0, bytes);
      // Four neurons at a time where the readout allows (first-spike latencies go one by one).
      let j = 0;
      if (readout != 2) {
        const vDecay = f32x4.splat(decay);
        const vThreshold = f32x4.splat(threshold);
        const vReset = f32x4.splat(reset);
        const vTraceDecay = f32x4.splat(traceDecay);
        const vRefractory = i32x4.splat(refractorySteps);
        const one = f32x4.splat(1);
        for (; j + 4 <= r; j += 4) {
          const jj = <usize>j << 2;
          const rc = v128.load(refr + jj);
          const resting = i32x4.gt_s(rc, i32x4.splat(0));
          const vj = v128.load(v + jj);
          const integrated = f32x4.add(f32x4.sub(vj, f32x4.mul(vDecay, vj)), v128.load(current + jj));
          const fire = v128.andnot(f32x4.ge(integrated, vThreshold), resting);
          const spike = v128.and(fire, one);
          v128.store(v + jj, v128.bitselect(vReset, v128.bitselect(vReset, integrated, fire), resting));
          v128.store(
            refr + jj,
            v128.bitselect(i32x4.sub(rc, i32x4.splat(1)), v128.bitselect(vRefractory, rc, fire), resting),
          );
          v128.store(spikes + jj, spike);
          v128.store(trace + jj, f32x4.add(f32x4.mul(v128.load(trace + jj), vTraceDecay), spike));
          if (readout <= 1) v128.store(base + jj, f32x4.add(v128.load(base + jj), spike));
        }
      }
      for (; j < r; j++) {
        const jj = <usize>j << 2;
        let spike: f32 = 0;
        const rc = load<i32>(refr + jj);
        if (rc > 0) {
          store<i32>(refr + jj, rc - 1);
          store<f32>(v + jj, reset);
        } else {
          let vj = load<f32>(v + jj);
          vj = vj - decay * vj;
          vj = vj + load<f32>(current + jj);
          if (vj >= threshold) {
            spike = 1;
            vj = reset;
            store<i32>(refr + jj, refractorySteps);
          }
          store<f32>(v + jj, vj);
        }
        store<f32>(spikes + jj, spike);
        store<f32>(trace + jj, load<f32>(trace + jj) * traceDecay + spike);
        const o = base + jj;
        if (readout <= 1) {
          store<f32>(o, load<f32>(o) + spike);
        } else if (readout == 2) {
          // The window's length until its first spike; a spike's offset is always below it.
          if (t == start) store<f32>(o, <f32>(end - start));
          if (spike != 0 && load<f32>(o) == <f32>(end - start)) store<f32>(o, <f32>(t - start));
        }
      }
      if (t + 1 == end) {
        if (readout == 3) memory.copy(base, trace, bytes);
        else if (readout == 1) {
          const len: f32 = <f32>(end - start);
          for (let j = 0; j < r; j++) store<f32>(base + (<usize>j << 2), f32At(base, j) / len);
        }
      }
    }
  }
}
