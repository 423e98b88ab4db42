// Helpers of every kernel family: typed loads, axpy, squared distances, tanh in four lanes.

export function f32At(base: usize, i: i32): f32 {
  return load<f32>(base + (<usize>i << 2));
}

export function i32At(base: usize, i: i32): i32 {
  return load<i32>(base + (<usize>i << 2));
}

/** out[0..n) += s * x[0..n), four lanes at a time. */
export function axpy(out: usize, x: usize, s: f32, n: i32): void {
  const vs = f32x4.splat(s);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const at = <usize>j << 2;
    v128.store(out + at, f32x4.add(v128.load(out + at), f32x4.mul(vs, v128.load(x + at))));
  }
  for (; j < n; j++) store<f32>(out + (<usize>j << 2), f32At(out, j) + s * f32At(x, j));
}

/** Squared Euclidean distance of two float32 vectors of length d, summed in float32 lanes. */
export function sqdist(a: usize, b: usize, d: i32): f32 {
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
export function tanh4(x: v128): v128 {
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
export function tanh1(x: f32): f32 {
  return f32x4.extract_lane(tanh4(f32x4.splat(x)), 0);
}
