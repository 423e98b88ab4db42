// The WASM kernels, in AssemblyScript (compiled by kernels/build.mjs with SIMD and an imported
// shared memory). Every kernel works on a range of rows [r0, r1) so that workers split the
// samples; matrices are row-major float32 at byte addresses in the shared memory, indices int32.
// Accumulators that must be exact enough for K-means and silhouette are float64.
//
// One module per kernel family; this entry exports the kernels the host calls.

export { matmul, pairwise } from './linalg';
export { assign, clusterSums, lloyd, reduce } from './kmeans';
export { reservoir } from './reservoir';
export { spiking } from './spiking';

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
