// K-means: the nearest centroid, Lloyd steps, per-cluster sums, and the silhouette's cluster distance sums.
import { f32At, i32At, sqdist } from './common';

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
