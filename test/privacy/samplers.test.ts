/**
 * The samplers against their exact distributions: chi-square goodness of fit over large samples,
 * failing only below p = 1e-6 (OpenDP's threshold), so a correct sampler fails about once in a
 * million runs and a wrong one fails every time. The mechanisms' calibration: the noise variance
 * their cost and sensitivity imply.
 */
import { describe, expect, it } from 'vitest';
import {
  gaussianMechanism,
  gaussianVariance,
  laplaceMechanism,
  laplaceScale,
  mechanism,
  PICO,
  registerMechanism,
} from '../../src/security/privacy/mechanisms.js';
import {
  bernoulliExp,
  isqrt,
  sampleDiscreteGaussian,
  sampleDiscreteLaplace,
  uniformBelow,
} from '../../src/security/privacy/samplers.js';
import { chiSquarePValue } from './stats.js';

const P_MIN = 1e-6;
const N = 100_000;

function draw(n: number, sample: () => bigint): number[] {
  return Array.from({ length: n }, () => Number(sample()));
}

/** Two-sided p-value of a binomial proportion (normal approximation; n p (1 - p) is large here). */
function binomialP(successes: number, n: number, p: number): number {
  const z = Math.abs(successes - n * p) / Math.sqrt(n * p * (1 - p));
  // erfc(z / sqrt 2) via the complementary error function's continued fraction is overkill: for
  // z > 0, 2 Q(z) < exp(-z^2 / 2), and we only compare with 1e-6.
  return Math.exp((-z * z) / 2);
}

describe('uniform integers', () => {
  it('are uniform below a small and below a 60-bit bound', () => {
    const small = draw(N, () => uniformBelow(7n));
    expect(chiSquarePValue(small, (x) => (x >= 0 && x < 7 ? 1 / 7 : 0)).p).toBeGreaterThan(P_MIN);
    const big = (1n << 60n) + 12345n;
    const deciles = draw(N, () => (uniformBelow(big) * 10n) / big);
    expect(chiSquarePValue(deciles, (x) => (x >= 0 && x < 10 ? 0.1 : 0)).p).toBeGreaterThan(P_MIN);
  });
});

describe('Bernoulli(exp(-gamma))', () => {
  for (const [num, den] of [
    [3n, 10n],
    [1n, 1n],
    [27n, 10n],
  ] as const) {
    it(`has mean exp(-${num}/${den})`, () => {
      let ones = 0;
      for (let i = 0; i < N; i++) if (bernoulliExp({ num, den })) ones++;
      expect(binomialP(ones, N, Math.exp(-Number(num) / Number(den)))).toBeGreaterThan(P_MIN);
    });
  }
});

describe('discrete Laplace', () => {
  for (const [num, den] of [
    [1n, 1n],
    [3n, 2n],
    [10n, 1n],
  ] as const) {
    const b = Number(num) / Number(den);
    it(`of scale ${b} fits P(x) = (1 - q) / (1 + q) q^|x|, q = exp(-1/${b})`, () => {
      const q = Math.exp(-1 / b);
      const pmf = (x: number) => ((1 - q) / (1 + q)) * q ** Math.abs(x);
      const samples = draw(N, () => sampleDiscreteLaplace({ num, den }));
      expect(chiSquarePValue(samples, pmf).p).toBeGreaterThan(P_MIN);
    });
  }
});

describe('discrete Gaussian', () => {
  for (const [num, den] of [
    [1n, 1n],
    [5n, 2n],
    [100n, 1n],
  ] as const) {
    const s2 = Number(num) / Number(den);
    it(`of sigma^2 ${s2} fits P(x) proportional to exp(-x^2 / (2 sigma^2))`, () => {
      let z = 0;
      const span = Math.ceil(Math.sqrt(s2) * 40) + 10;
      for (let x = -span; x <= span; x++) z += Math.exp((-x * x) / (2 * s2));
      const pmf = (x: number) => Math.exp((-x * x) / (2 * s2)) / z;
      const samples = draw(N, () => sampleDiscreteGaussian({ num, den }));
      expect(chiSquarePValue(samples, pmf).p).toBeGreaterThan(P_MIN);
    });
  }
});

describe('mechanisms', () => {
  it('calibrate the Laplace scale to Delta_1 / epsilon and the Gaussian variance to Delta_2^2 / (2 rho), exactly', () => {
    // epsilon 0.5, L1 sensitivity 3: scale 6. rho 0.25, L2^2 4: variance 8.
    expect(laplaceScale({ l1: 3n, l2Squared: 9n }, PICO / 2n)).toEqual({ num: 3n * PICO, den: PICO / 2n });
    expect(gaussianVariance({ l1: 2n, l2Squared: 4n }, PICO / 4n)).toEqual({
      num: 4n * PICO,
      den: PICO / 2n,
    });
  });

  it('add noise of the calibrated variance to integers, and return integers', () => {
    const cost = PICO / 2n; // epsilon 0.5 or rho 0.5
    const sens = { l1: 1n, l2Squared: 1n };
    for (const m of [laplaceMechanism, gaussianMechanism]) {
      const out = m.release(new Array<bigint>(20_000).fill(100n), sens, cost);
      expect(out.every((v) => typeof v === 'bigint')).toBe(true);
      const noise = out.map((v) => Number(v - 100n));
      const mean = noise.reduce((a, b) => a + b, 0) / noise.length;
      const variance = noise.reduce((a, b) => a + (b - mean) ** 2, 0) / noise.length;
      const expected = m.noiseStd(sens, cost) ** 2;
      // The sample variance of 20,000 draws is within 10% of the truth for these distributions.
      expect(Math.abs(variance / expected - 1), m.name).toBeLessThan(0.1);
      expect(Math.abs(mean), m.name).toBeLessThan(0.2);
    }
  });

  it('are registered by name, and a user can add one', () => {
    expect(mechanism('laplace')).toBe(laplaceMechanism);
    expect(() => mechanism('nope')).toThrow(/known: laplace, gaussian/);
    registerMechanism({ ...laplaceMechanism, name: 'my-laplace' });
    expect(mechanism('my-laplace').kind).toBe('pure');
    expect(() => registerMechanism(laplaceMechanism)).toThrow(/already registered/);
  });
});

describe('integer square root', () => {
  it('is exact on squares, their neighbours and large values', () => {
    for (const n of [0n, 1n, 2n, 3n, 4n, 15n, 16n, 17n, (1n << 80n) - 1n, 1n << 80n, 10n ** 30n + 7n]) {
      const r = isqrt(n);
      expect(r * r <= n && (r + 1n) * (r + 1n) > n, String(n)).toBe(true);
    }
  });
});
