import { describe, expect, it } from 'vitest';
import { Random } from '../../src/core/random.js';

describe('seeded random numbers', () => {
  it('repeat for a seed and differ across seeds', () => {
    const a = new Random(42);
    const b = new Random(42);
    const c = new Random(43);
    const xs = Array.from({ length: 5 }, () => a.uint32());
    expect(Array.from({ length: 5 }, () => b.uint32())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.uint32())).not.toEqual(xs);
    expect(new Random(2 ** 32).uint32()).not.toBe(new Random(0).uint32());
  });

  it('floats are uniform in [0, 1): mean and variance of 100k draws', () => {
    const r = new Random(7);
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < 100_000; i++) {
      const v = r.float();
      expect(v >= 0 && v < 1).toBe(true);
      sum += v;
      sq += v * v;
    }
    expect(sum / 1e5).toBeCloseTo(0.5, 2);
    expect(sq / 1e5 - (sum / 1e5) ** 2).toBeCloseTo(1 / 12, 2);
  });

  it('int(n) is unbiased over a range that does not divide 2^32', () => {
    const r = new Random(1);
    const counts = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) counts[r.int(3)]!++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(400);
  });

  it('sample gives distinct indices in range, dense and sparse', () => {
    const r = new Random(3);
    for (const [n, m] of [
      [10, 10],
      [1000, 5],
      [50, 30],
    ] as const) {
      const s = Array.from(r.sample(n, m));
      expect(new Set(s).size).toBe(m);
      expect(s.every((v) => v >= 0 && v < n)).toBe(true);
    }
    expect(() => r.sample(3, 4)).toThrow();
  });

  it('normal deviates have mean 0 and variance 1', () => {
    const r = new Random(5);
    const xs = Array.from({ length: 50_000 }, () => r.normal());
    const mean = xs.reduce((s, v) => s + v, 0) / xs.length;
    const variance = xs.reduce((s, v) => s + (v - mean) ** 2, 0) / xs.length;
    expect(mean).toBeCloseTo(0, 1);
    expect(variance).toBeCloseTo(1, 1);
  });
});
