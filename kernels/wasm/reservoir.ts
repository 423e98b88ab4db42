// The leaky tanh reservoir: its drive, recurrent input and readout blocks.
import { f32At, i32At, axpy, tanh4, tanh1 } from './common';

/** out[0..r) = bias + u W_in for the `dim` inputs at u. */
export function project(u: usize, dim: i32, wIn: usize, bias: usize, r: i32, out: usize): void {
  memory.copy(out, bias, <usize>r << 2);
  for (let i = 0; i < dim; i++) {
    const v = f32At(u, i);
    if (v != 0) axpy(out, wIn + (<usize>(i * r) << 2), v, r);
  }
}

/** out += x W for recurrent weights: dense (rowPtr 0) or CSR (rowPtr, colIdx, values in w). */
export function recurrent(x: usize, w: usize, rowPtr: usize, colIdx: usize, r: i32, out: usize): void {
  for (let i = 0; i < r; i++) {
    const xi = f32At(x, i);
    if (xi == 0) continue;
    if (!rowPtr) {
      axpy(out, w + (<usize>(i * r) << 2), xi, r);
      continue;
    }
    for (let q = i32At(rowPtr, i); q < i32At(rowPtr, i + 1); q++) {
      const at = out + (<usize>i32At(colIdx, q) << 2);
      store<f32>(at, load<f32>(at) + xi * f32At(w, q));
    }
  }
}

/**
 * Leaky tanh reservoir, samples [r0, r1): x <- (1 - leak) x + leak tanh(u_t W_in + bias + x W).
 * `steps` per sample; readout blocks per step from `blockStart` (steps + 1 offsets into
 * `blockIds`), then the last state into `lastBlock` and the mean from `washout` on into
 * `meanBlock` (-1: none). `scratch`: 4 r floats for one sample, then what reservoirBlock needs.
 */
export function reservoir(
  u: usize,
  inCols: i32,
  dim: i32,
  steps: i32,
  sequence: i32,
  wIn: usize,
  bias: usize,
  r: i32,
  w: usize,
  rowPtr: usize,
  colIdx: usize,
  leak: f32,
  washout: i32,
  blockStart: usize,
  blockIds: usize,
  lastBlock: i32,
  meanBlock: i32,
  out: usize,
  width: i32,
  scratch: usize,
  r0: i32,
  r1: i32,
): void {
  const x = scratch;
  const pre = scratch + (<usize>r << 2);
  const drive = scratch + (<usize>(2 * r) << 2);
  const mean = scratch + (<usize>(3 * r) << 2);
  const bytes = <usize>r << 2;
  const keep: f32 = 1 - leak;
  // Four samples at a time (see reservoirBlock), the rest one by one; the same sums in the same
  // order either way.
  let first = r0;
  for (; first + 4 <= r1; first += 4) {
    reservoirBlock(u, inCols, dim, steps, sequence, wIn, bias, r, w, rowPtr, colIdx, leak, washout,
      blockStart, blockIds, lastBlock, meanBlock, out, width, scratch + (<usize>(4 * r) << 2), first);
  }
  for (let s = first; s < r1; s++) {
    memory.fill(x, 0, bytes);
    memory.fill(mean, 0, bytes);
    const row = u + (<usize>(s * inCols) << 2);
    const outRow = out + (<usize>(s * width) << 2);
    if (!sequence) project(row, dim, wIn, bias, r, drive);
    for (let t = 0; t < steps; t++) {
      if (sequence) project(row + (<usize>(t * dim) << 2), dim, wIn, bias, r, drive);
      memory.copy(pre, drive, bytes);
      recurrent(x, w, rowPtr, colIdx, r, pre);
      for (let j = 0; j < r; j++) {
        const v = keep * f32At(x, j) + leak * tanh1(f32At(pre, j));
        store<f32>(x + (<usize>j << 2), v);
        if (t >= washout) store<f32>(mean + (<usize>j << 2), f32At(mean, j) + v);
      }
      for (let b = i32At(blockStart, t); b < i32At(blockStart, t + 1); b++) {
        memory.copy(outRow + (<usize>(i32At(blockIds, b) * r) << 2), x, bytes);
      }
    }
    if (lastBlock >= 0) memory.copy(outRow + (<usize>(lastBlock * r) << 2), x, bytes);
    if (meanBlock >= 0) {
      const scale: f32 = 1 / <f32>(steps - washout);
      const at = outRow + (<usize>(meanBlock * r) << 2);
      for (let j = 0; j < r; j++) store<f32>(at + (<usize>j << 2), f32At(mean, j) * scale);
    }
  }
}

/** Lane q of v. */
function lane(v: v128, q: i32): f32 {
  if (q == 0) return f32x4.extract_lane(v, 0);
  if (q == 1) return f32x4.extract_lane(v, 1);
  if (q == 2) return f32x4.extract_lane(v, 2);
  return f32x4.extract_lane(v, 3);
}

/** Writes the four lanes of each of r vectors at `src` as four rows of out (stride `width`). */
function scatterRows(src: usize, r: i32, out: usize, width: i32, column: i32): void {
  for (let j = 0; j < r; j++) {
    const v = v128.load(src + (<usize>j << 4));
    for (let q = 0; q < 4; q++) store<f32>(out + (<usize>(q * width + column + j) << 2), lane(v, q));
  }
}

/**
 * The reservoir for samples s..s+3 at once, the state kept interleaved (one f32x4 per unit: the
 * four samples' values), so that each recurrent weight is loaded once for four samples and, for
 * dense W, eight units' sums stay in registers over the whole row loop. `scratch`: 4 r f32x4 +
 * r floats.
 */
function reservoirBlock(
  u: usize,
  inCols: i32,
  dim: i32,
  steps: i32,
  sequence: i32,
  wIn: usize,
  bias: usize,
  r: i32,
  w: usize,
  rowPtr: usize,
  colIdx: usize,
  leak: f32,
  washout: i32,
  blockStart: usize,
  blockIds: usize,
  lastBlock: i32,
  meanBlock: i32,
  out: usize,
  width: i32,
  scratch: usize,
  s: i32,
): void {
  const vbytes = <usize>r << 4;
  const x = scratch;
  const pre = x + vbytes;
  const drive = pre + vbytes;
  const mean = drive + vbytes;
  const row = mean + vbytes; // r floats: one sample's drive
  memory.fill(x, 0, vbytes);
  memory.fill(mean, 0, vbytes);
  const vKeep = f32x4.splat(1 - leak);
  const vLeak = f32x4.splat(leak);
  const outRows = out + (<usize>(s * width) << 2);
  for (let t = 0; t < steps; t++) {
    if (sequence || t == 0) {
      for (let q = 0; q < 4; q++) {
        const at = u + (<usize>((s + q) * inCols + (sequence ? t * dim : 0)) << 2);
        project(at, dim, wIn, bias, r, row);
        for (let j = 0; j < r; j++) store<f32>(drive + (<usize>(j * 4 + q) << 2), f32At(row, j));
      }
    }
    memory.copy(pre, drive, vbytes);
    if (!rowPtr) {
      // Six units' sums stay in registers over the whole row loop: with eight, V8 (x64, 16 vector
      // registers) spilled one of them to the stack, and that sum's chain of adds through memory
      // set the pace of the loop (its disassembly, --print-wasm-code).
      let j0 = 0;
      const rowBytes = <usize>r << 2;
      for (; j0 + 6 <= r; j0 += 6) {
        const p0 = pre + (<usize>j0 << 4);
        let a0 = v128.load(p0);
        let a1 = v128.load(p0, 16);
        let a2 = v128.load(p0, 32);
        let a3 = v128.load(p0, 48);
        let a4 = v128.load(p0, 64);
        let a5 = v128.load(p0, 80);
        let wi = w + (<usize>j0 << 2);
        let xi = x;
        for (let i = 0; i < r; i++) {
          const xv = v128.load(xi);
          a0 = f32x4.add(a0, f32x4.mul(xv, v128.load32_splat(wi)));
          a1 = f32x4.add(a1, f32x4.mul(xv, v128.load32_splat(wi, 4)));
          a2 = f32x4.add(a2, f32x4.mul(xv, v128.load32_splat(wi, 8)));
          a3 = f32x4.add(a3, f32x4.mul(xv, v128.load32_splat(wi, 12)));
          a4 = f32x4.add(a4, f32x4.mul(xv, v128.load32_splat(wi, 16)));
          a5 = f32x4.add(a5, f32x4.mul(xv, v128.load32_splat(wi, 20)));
          wi += rowBytes;
          xi += 16;
        }
        v128.store(p0, a0);
        v128.store(p0, a1, 16);
        v128.store(p0, a2, 32);
        v128.store(p0, a3, 48);
        v128.store(p0, a4, 64);
        v128.store(p0, a5, 80);
      }
      for (; j0 < r; j0++) {
        const pj = pre + (<usize>j0 << 4);
        let a = v128.load(pj);
        for (let i = 0; i < r; i++) {
          a = f32x4.add(a, f32x4.mul(v128.load(x + (<usize>i << 4)), v128.load32_splat(w + (<usize>(i * r + j0) << 2))));
        }
        v128.store(pj, a);
      }
    } else {
      for (let i = 0; i < r; i++) {
        const xi = v128.load(x + (<usize>i << 4));
        for (let q = i32At(rowPtr, i); q < i32At(rowPtr, i + 1); q++) {
          const at = pre + (<usize>i32At(colIdx, q) << 4);
          v128.store(at, f32x4.add(v128.load(at), f32x4.mul(xi, v128.load32_splat(w + (<usize>q << 2)))));
        }
      }
    }
    for (let j = 0; j < r; j++) {
      const jj = <usize>j << 4;
      const p = v128.load(pre + jj);
      const th = tanh4(p);
      const v = f32x4.add(f32x4.mul(vKeep, v128.load(x + jj)), f32x4.mul(vLeak, th));
      v128.store(x + jj, v);
      if (t >= washout) v128.store(mean + jj, f32x4.add(v128.load(mean + jj), v));
    }
    for (let b = i32At(blockStart, t); b < i32At(blockStart, t + 1); b++) {
      scatterRows(x, r, outRows, width, i32At(blockIds, b) * r);
    }
  }
  if (lastBlock >= 0) scatterRows(x, r, outRows, width, lastBlock * r);
  if (meanBlock >= 0) {
    const scale = f32x4.splat(1 / <f32>(steps - washout));
    for (let j = 0; j < r; j++) {
      const jj = <usize>j << 4;
      v128.store(mean + jj, f32x4.mul(v128.load(mean + jj), scale));
    }
    scatterRows(mean, r, outRows, width, meanBlock * r);
  }
}
