// Linear algebra: the matrix product and pairwise distances, rows [r0, r1) a call.
import { f32At, axpy, sqdist } from './common';

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
