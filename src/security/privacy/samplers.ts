/**
 * Exact samplers of the discrete Laplace and discrete Gaussian distributions, after Canonne, Kamath
 * and Steinke, "The Discrete Gaussian for Differential Privacy" (NeurIPS 2020), Algorithms 1-3, as
 * OpenDP implements them. Every draw is made of uniform integers from the operating system's
 * cryptographically secure generator and exact rational arithmetic (BigInt): no floating-point
 * number is ever sampled, so the attack on the textbook Laplace sampler (Mironov, CCS 2012: the
 * gaps in floating-point noise reveal the value it was added to) has nothing to work on.
 *
 * A rational is `{ num, den }` with positive BigInt parts.
 */
import { randomFillSync } from 'node:crypto';

export interface Rational {
  readonly num: bigint;
  readonly den: bigint;
}

/** Where uniform bits come from: crypto by default; a test may pass a seeded source. */
export interface RandomSource {
  /** A uniform integer in [0, 2^32). */
  uint32(): number;
}

/** The operating system's CSPRNG, read 4 KiB at a time. */
export class CryptoRandom implements RandomSource {
  private readonly pool = new Uint32Array(1024);
  private next = this.pool.length;

  uint32(): number {
    if (this.next === this.pool.length) {
      randomFillSync(this.pool);
      this.next = 0;
    }
    return this.pool[this.next++]!;
  }
}

export const cryptoRandom = new CryptoRandom();

function bitLength(n: bigint): number {
  return n.toString(2).length;
}

/** A uniform integer in [0, n), n >= 1, by rejection (no modulo bias). */
export function uniformBelow(n: bigint, rng: RandomSource = cryptoRandom): bigint {
  if (n <= 0n) throw new RangeError(`uniformBelow(${n})`);
  if (n <= 0x1_0000_0000n) {
    const m = Number(n);
    // The largest multiple of m below 2^32: draws at or above it are rejected.
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % m);
    for (;;) {
      const x = rng.uint32();
      if (x < limit) return BigInt(x % m);
    }
  }
  const bits = bitLength(n - 1n);
  const words = Math.ceil(bits / 32);
  const mask = (1n << BigInt(bits)) - 1n;
  for (;;) {
    let x = 0n;
    for (let i = 0; i < words; i++) x = (x << 32n) | BigInt(rng.uint32());
    x &= mask;
    if (x < n) return x;
  }
}

/** Bernoulli(num / den), 0 <= num <= den. */
export function bernoulli(p: Rational, rng: RandomSource = cryptoRandom): boolean {
  return uniformBelow(p.den, rng) < p.num;
}

/** Bernoulli(exp(-gamma)) for a rational gamma >= 0 (CKS20 Algorithm 1). */
export function bernoulliExp(gamma: Rational, rng: RandomSource = cryptoRandom): boolean {
  const { num, den } = gamma;
  if (num < 0n) throw new RangeError('bernoulliExp: gamma must be >= 0');
  if (num <= den) {
    // K is the first k with A_k = 0, A_k ~ Bernoulli(gamma / k); P(K odd) = exp(-gamma).
    let k = 1n;
    while (bernoulli({ num, den: den * k }, rng)) k++;
    return k % 2n === 1n;
  }
  const whole = num / den;
  for (let i = 0n; i < whole; i++) if (!bernoulliExp({ num: 1n, den: 1n }, rng)) return false;
  return bernoulliExp({ num: num - whole * den, den }, rng);
}

/**
 * Discrete Laplace with scale `scale` (P(x) proportional to exp(-|x| / scale) on the integers;
 * CKS20 Algorithm 2 with t / s = scale).
 */
export function sampleDiscreteLaplace(scale: Rational, rng: RandomSource = cryptoRandom): bigint {
  const t = scale.num;
  const s = scale.den;
  for (;;) {
    const u = uniformBelow(t, rng);
    if (!bernoulliExp({ num: u, den: t }, rng)) continue;
    let v = 0n;
    while (bernoulliExp({ num: 1n, den: 1n }, rng)) v++;
    const y = (u + t * v) / s;
    const negative = uniformBelow(2n, rng) === 1n;
    if (negative && y === 0n) continue;
    return negative ? -y : y;
  }
}

/** floor(sqrt(n)) for n >= 0. */
export function isqrt(n: bigint): bigint {
  if (n < 0n) throw new RangeError('isqrt of a negative number');
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  // Newton steps from the floating-point guess until exact.
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}

/**
 * Discrete Gaussian with variance parameter `sigma2` (P(x) proportional to exp(-x^2 / (2 sigma2))
 * on the integers; CKS20 Algorithm 3).
 */
export function sampleDiscreteGaussian(sigma2: Rational, rng: RandomSource = cryptoRandom): bigint {
  const { num: a, den: b } = sigma2;
  // t = floor(sigma) + 1; floor(sqrt(a / b)) = floor(sqrt(floor(a / b))).
  const t = isqrt(a / b) + 1n;
  for (;;) {
    const y = sampleDiscreteLaplace({ num: t, den: 1n }, rng);
    const abs = y < 0n ? -y : y;
    // (|y| - sigma2 / t)^2 / (2 sigma2) = (|y| b t - a)^2 / (2 a b t^2)
    const diff = abs * b * t - a;
    if (bernoulliExp({ num: diff * diff, den: 2n * a * b * t * t }, rng)) return y;
  }
}
