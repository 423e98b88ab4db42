// The WASM kernels, in AssemblyScript (compiled by kernels/build.mjs with SIMD and an imported
// shared memory). Every kernel works on a range of rows [r0, r1) so that workers split the
// samples; matrices are row-major float32 at byte addresses in the shared memory, indices int32.
// Accumulators that must be exact enough for K-means and silhouette are float64.

// ---- helpers ----

function f32At(base: usize, i: i32): f32 {
  return load<f32>(base + (<usize>i << 2));
}

function i32At(base: usize, i: i32): i32 {
  return load<i32>(base + (<usize>i << 2));
}

/** out[0..n) += s * x[0..n), four lanes at a time. */
function axpy(out: usize, x: usize, s: f32, n: i32): void {
  const vs = f32x4.splat(s);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const at = <usize>j << 2;
    v128.store(out + at, f32x4.add(v128.load(out + at), f32x4.mul(vs, v128.load(x + at))));
  }
  for (; j < n; j++) store<f32>(out + (<usize>j << 2), f32At(out, j) + s * f32At(x, j));
}

/** Squared Euclidean distance of two float32 vectors of length d, summed in float32 lanes. */
function sqdist(a: usize, b: usize, d: i32): f32 {
  let acc = f32x4.splat(0);
  let t = 0;
  for (; t + 4 <= d; t += 4) {
    const at = <usize>t << 2;
    const diff = f32x4.sub(v128.load(a + at), v128.load(b + at));
    acc = f32x4.add(acc, f32x4.mul(diff, diff));
  }
  let s: f32 =
    f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (; t < d; t++) {
    const diff = f32At(a, t) - f32At(b, t);
    s += diff * diff;
  }
  return s;
}

/**
 * tanh of four lanes, to float32 accuracy: below 0.3 in magnitude its odd Taylor polynomial to
 * x^9 (next term under 2e-8 relative), above it (e - 1) / (e + 1) with e = exp(2|x|) from a
 * Cody-Waite reduction and a degree-6 polynomial (error under 2e-7), the sign put back; |x| is
 * capped at 9, where tanh is 1 in float32. Scalar Mathf.tanh costs more than the whole
 * recurrent product of a unit; every reservoir path uses this one, so a sample's state does not
 * depend on how the samples were split.
 */
function tanh4(x: v128): v128 {
  const ax = f32x4.abs(x);
  const x2 = f32x4.mul(x, x);
  let poly = f32x4.add(f32x4.splat(-17.0 / 315.0), f32x4.mul(x2, f32x4.splat(62.0 / 2835.0)));
  poly = f32x4.add(f32x4.splat(2.0 / 15.0), f32x4.mul(x2, poly));
  poly = f32x4.add(f32x4.splat(-1.0 / 3.0), f32x4.mul(x2, poly));
  const small = f32x4.add(x, f32x4.mul(f32x4.mul(x, x2), poly));
  const z = f32x4.mul(f32x4.min(ax, f32x4.splat(9)), f32x4.splat(2));
  const n = f32x4.nearest(f32x4.mul(z, f32x4.splat(1.4426950408889634)));
  let r = f32x4.sub(z, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let e = f32x4.add(f32x4.splat(1.0 / 120.0), f32x4.mul(r, f32x4.splat(1.0 / 720.0)));
  e = f32x4.add(f32x4.splat(1.0 / 24.0), f32x4.mul(r, e));
  e = f32x4.add(f32x4.splat(1.0 / 6.0), f32x4.mul(r, e));
  e = f32x4.add(f32x4.splat(0.5), f32x4.mul(r, e));
  e = f32x4.add(f32x4.splat(1), f32x4.mul(r, e));
  e = f32x4.add(f32x4.splat(1), f32x4.mul(r, e));
  // Times 2^n: n added to the exponent bits.
  e = i32x4.add(e, i32x4.shl(i32x4.trunc_sat_f32x4_s(n), 23));
  const large = f32x4.div(f32x4.sub(e, f32x4.splat(1)), f32x4.add(e, f32x4.splat(1)));
  const signed = v128.or(large, v128.and(x, i32x4.splat(0x80000000)));
  return v128.bitselect(small, signed, f32x4.lt(ax, f32x4.splat(0.3)));
}

/** tanh of one float32, by the same arithmetic as tanh4. */
function tanh1(x: f32): f32 {
  return f32x4.extract_lane(tanh4(f32x4.splat(x)), 0);
}

// ---- linear algebra ----

/** C = A B (+ bias): A m x k, B k x n, rows [r0, r1) of C. */
export function matmul(a: usize, b: usize, bias: usize, c: usize, k: i32, n: i32, r0: i32, r1: i32): void {
  for (let i = r0; i < r1; i++) {
    const row = c + (<usize>(i * n) << 2);
    if (bias) memory.copy(row, bias, <usize>n << 2);
    else memory.fill(row, 0, <usize>n << 2);
    for (let t = 0; t < k; t++) {
      const av = f32At(a, i * k + t);
      if (av == 0) continue;
      axpy(row, b + (<usize>(t * n) << 2), av, n);
    }
  }
}

/** out[i][j] = |a_i - b_j| (squared when `squared`), rows [r0, r1) of a. */
export function pairwise(a: usize, b: usize, out: usize, d: i32, n: i32, squared: i32, r0: i32, r1: i32): void {
  for (let i = r0; i < r1; i++) {
    const ai = a + (<usize>(i * d) << 2);
    for (let j = 0; j < n; j++) {
      const s = sqdist(ai, b + (<usize>(j * d) << 2), d);
      store<f32>(out + (<usize>(i * n + j) << 2), squared ? s : Mathf.sqrt(s));
    }
  }
}

// ---- K-means ----

/** The squared distance of the last nearest() call (a wasm global: each worker has its own). */
let nearestDistance: f32 = 0;

/** Lanes of `acc` (centroids j0..j0+3) against the best so far: strictly smaller wins, in order. */
function pickLanes(acc: v128, j0: i32): void {
  const s0 = f32x4.extract_lane(acc, 0);
  if (s0 < nearestDistance) {
    nearestDistance = s0;
    nearestLabel = j0;
  }
  const s1 = f32x4.extract_lane(acc, 1);
  if (s1 < nearestDistance) {
    nearestDistance = s1;
    nearestLabel = j0 + 1;
  }
  const s2 = f32x4.extract_lane(acc, 2);
  if (s2 < nearestDistance) {
    nearestDistance = s2;
    nearestLabel = j0 + 2;
  }
  const s3 = f32x4.extract_lane(acc, 3);
  if (s3 < nearestDistance) {
    nearestDistance = s3;
    nearestLabel = j0 + 3;
  }
}

let nearestLabel: i32 = 0;

/**
 * Nearest centroid of point i, ties to the lowest index; its squared distance in
 * `nearestDistance`. The centroids come transposed (d x kPad, kPad a multiple of 4, padding lanes
 * NaN so they never win), so one SIMD lane holds one centroid and four distances grow at once.
 * Sixteen centroids go together, in four independent sums: one sum's chain of dependent adds
 * would leave the adders idle most of the time (a profile of the one-chain loop ran at the add
 * latency). Each lane's sum is the same, in the same order, however the centroids are grouped.
 */
function nearest(p: usize, ct: usize, d: i32, kPad: i32, i: i32): i32 {
  const pi = p + (<usize>(i * d) << 2);
  nearestLabel = 0;
  nearestDistance = f32.MAX_VALUE;
  const row = <usize>kPad << 2;
  let j0 = 0;
  for (; j0 + 16 <= kPad; j0 += 16) {
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    let c = ct + (<usize>j0 << 2);
    for (let t = 0; t < d; t++) {
      const x = v128.load32_splat(pi + (<usize>t << 2));
      const e0 = f32x4.sub(x, v128.load(c));
      const e1 = f32x4.sub(x, v128.load(c, 16));
      const e2 = f32x4.sub(x, v128.load(c, 32));
      const e3 = f32x4.sub(x, v128.load(c, 48));
      a0 = f32x4.add(a0, f32x4.mul(e0, e0));
      a1 = f32x4.add(a1, f32x4.mul(e1, e1));
      a2 = f32x4.add(a2, f32x4.mul(e2, e2));
      a3 = f32x4.add(a3, f32x4.mul(e3, e3));
      c += row;
    }
    pickLanes(a0, j0);
    pickLanes(a1, j0 + 4);
    pickLanes(a2, j0 + 8);
    pickLanes(a3, j0 + 12);
  }
  for (; j0 < kPad; j0 += 4) {
    let acc = f32x4.splat(0);
    for (let t = 0; t < d; t++) {
      const diff = f32x4.sub(v128.load32_splat(pi + (<usize>t << 2)), v128.load(ct + (<usize>(t * kPad + j0) << 2)));
      acc = f32x4.add(acc, f32x4.mul(diff, diff));
    }
    pickLanes(acc, j0);
  }
  return nearestLabel;
}

/** Labels and squared distances of the nearest centroid (transposed, see nearest), rows [r0, r1). */
export function assign(p: usize, ct: usize, labels: usize, dist: usize, d: i32, kPad: i32, r0: i32, r1: i32): void {
  for (let i = r0; i < r1; i++) {
    store<i32>(labels + (<usize>i << 2), nearest(p, ct, d, kPad, i));
    store<f32>(dist + (<usize>i << 2), nearestDistance);
  }
}

/**
 * One Lloyd pass over rows [r0, r1) (centroids transposed, see nearest): reassigns (the new
 * labels apart from the previous ones, so that a task run again gives the same answer), adds each
 * point into its
 * cluster's float64 sums and counts, and into stats [objective, changed] (float64), all of which
 * belong to this range alone (each worker has its own, added up by the host).
 */
export function lloyd(
  p: usize,
  ct: usize,
  previous: usize,
  labels: usize,
  sums: usize,
  counts: usize,
  stats: usize,
  d: i32,
  k: i32,
  kPad: i32,
  r0: i32,
  r1: i32,
): void {
  memory.fill(sums, 0, <usize>(k * d) << 3);
  memory.fill(counts, 0, <usize>k << 3);
  let objective: f64 = 0;
  let changed: f64 = 0;
  for (let i = r0; i < r1; i++) {
    const label = nearest(p, ct, d, kPad, i);
    objective += <f64>nearestDistance;
    if (i32At(previous, i) != label) changed += 1;
    store<i32>(labels + (<usize>i << 2), label);
    addPoint(p, sums, counts, d, i, label);
  }
  store<f64>(stats, objective);
  store<f64>(stats + 8, changed);
}

/** Adds point i into its cluster's float64 sums (two lanes at a time) and count. */
function addPoint(p: usize, sums: usize, counts: usize, d: i32, i: i32, label: i32): void {
  const cnt = counts + (<usize>label << 3);
  store<f64>(cnt, load<f64>(cnt) + 1);
  const row = sums + (<usize>(label * d) << 3);
  const pi = p + (<usize>(i * d) << 2);
  let t = 0;
  for (; t + 4 <= d; t += 4) {
    const v = v128.load(pi + (<usize>t << 2));
    const high = i8x16.shuffle(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    const at = row + (<usize>t << 3);
    v128.store(at, f64x2.add(v128.load(at), f64x2.promote_low_f32x4(v)));
    v128.store(at, f64x2.add(v128.load(at, 16), f64x2.promote_low_f32x4(high)), 16);
  }
  for (; t < d; t++) {
    const at = row + (<usize>t << 3);
    store<f64>(at, load<f64>(at) + <f64>f32At(pi, t));
  }
}

/** Per-cluster float64 sums and counts of rows [r0, r1) under the given labels. */
export function reduce(p: usize, labels: usize, sums: usize, counts: usize, d: i32, k: i32, r0: i32, r1: i32): void {
  memory.fill(sums, 0, <usize>(k * d) << 3);
  memory.fill(counts, 0, <usize>k << 3);
  for (let i = r0; i < r1; i++) addPoint(p, sums, counts, d, i, i32At(labels, i));
}

/**
 * For rows [r0, r1) of the points, the sums of Euclidean distances to the points of each cluster,
 * float64, into out[(i - rowStart) * k + label].
 */
export function clusterSums(p: usize, labels: usize, out: usize, d: i32, n: i32, k: i32, rowStart: i32, r0: i32, r1: i32): void {
  for (let i = r0; i < r1; i++) {
    const base = out + (<usize>((i - rowStart) * k) << 3);
    memory.fill(base, 0, <usize>k << 3);
    const pi = p + (<usize>(i * d) << 2);
    for (let j = 0; j < n; j++) {
      const s = <f64>sqdist(pi, p + (<usize>(j * d) << 2), d);
      const at = base + (<usize>i32At(labels, j) << 3);
      store<f64>(at, load<f64>(at) + Math.sqrt(s));
    }
  }
}

// ---- dynamics ----

/** out[0..r) = bias + u W_in for the `dim` inputs at u. */
function project(u: usize, dim: i32, wIn: usize, bias: usize, r: i32, out: usize): void {
  memory.copy(out, bias, <usize>r << 2);
  for (let i = 0; i < dim; i++) {
    const v = f32At(u, i);
    if (v != 0) axpy(out, wIn + (<usize>(i * r) << 2), v, r);
  }
}

/** out += x W for recurrent weights: dense (rowPtr 0) or CSR (rowPtr, colIdx, values in w). */
function recurrent(x: usize, w: usize, rowPtr: usize, colIdx: usize, r: i32, out: usize): void {
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

// ---- the roofline ----

/**
 * The 128-bit SIMD roofline of one core: `rounds` of six independent f32x4 multiply chains and
 * six independent add chains (48 flops a round, no memory traffic), as many as keep the
 * multipliers and adders busy at their latency without spilling a register; the lanes' sums go
 * to `out` so that the work cannot be optimized away. (A multiply feeding an add in each chain,
 * as kernels use them, waits on both latencies and measured two thirds of this.)
 */
export function peak(rounds: i32, out: usize): void {
  const m = f32x4.splat(0.9999999);
  const c = f32x4.splat(1e-7);
  let a0 = f32x4.splat(1);
  let a1 = f32x4.splat(2);
  let a2 = f32x4.splat(3);
  let a3 = f32x4.splat(4);
  let a4 = f32x4.splat(5);
  let a5 = f32x4.splat(6);
  let b0 = f32x4.splat(1);
  let b1 = f32x4.splat(2);
  let b2 = f32x4.splat(3);
  let b3 = f32x4.splat(4);
  let b4 = f32x4.splat(5);
  let b5 = f32x4.splat(6);
  for (let i = 0; i < rounds; i++) {
    a0 = f32x4.mul(a0, m);
    b0 = f32x4.add(b0, c);
    a1 = f32x4.mul(a1, m);
    b1 = f32x4.add(b1, c);
    a2 = f32x4.mul(a2, m);
    b2 = f32x4.add(b2, c);
    a3 = f32x4.mul(a3, m);
    b3 = f32x4.add(b3, c);
    a4 = f32x4.mul(a4, m);
    b4 = f32x4.add(b4, c);
    a5 = f32x4.mul(a5, m);
    b5 = f32x4.add(b5, c);
  }
  const sa = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(a4, a5));
  const sb = f32x4.add(f32x4.add(f32x4.add(b0, b1), f32x4.add(b2, b3)), f32x4.add(b4, b5));
  const s = f32x4.add(sa, sb);
  store<f32>(out, f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1) + f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3));
}
