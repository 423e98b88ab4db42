import { describe, expect, it } from 'vitest';
import { makeBlobs } from '../../src/bench/workloads.js';
import { Random } from '../../src/core/random.js';
import { columnMoments } from '../../src/linalg/moments.js';
import { RunningMoments } from '../../src/linalg/running.js';

/** Moments of rows [from, to) of a row-major matrix of d columns. */
function momentsOf(data: Float64Array, d: number, from: number, to: number): RunningMoments {
  return new RunningMoments(d).add(data.subarray(from * d, to * d), to - from);
}

describe('RunningMoments', () => {
  const d = 5;
  const { points } = makeBlobs(2_000, d, 4, 11, 30);
  const data = Float64Array.from(points.data, (v, i) => v + (i % d) * 1e6);
  const exact = columnMoments({ rows: 2_000, cols: d, data });

  it('merged over chunks gives the moments of the whole matrix', () => {
    const parts = [0, 7, 300, 301, 1_500, 2_000];
    const merged = new RunningMoments(d);
    for (let p = 0; p + 1 < parts.length; p++) merged.merge(momentsOf(data, d, parts[p]!, parts[p + 1]!));
    for (let j = 0; j < d; j++) {
      expect(merged.mean[j]).toBeCloseTo(exact.means[j]!, 6);
      expect(merged.stds()[j]! / exact.stds[j]!).toBeCloseTo(1, 12);
      expect(merged.count[j]).toBe(2_000);
    }
  });

  it('merges associatively and in any order', () => {
    const rng = new Random(3);
    const chunks = [0, 400, 800, 1_200, 1_600, 2_000].slice(0, -1).map((s) => momentsOf(data, d, s, s + 400));
    const left = chunks.reduce((a, b) => a.merge(RunningMoments.fromJSON(b.toJSON())), new RunningMoments(d));
    const shuffled = rng.sample(chunks.length, chunks.length);
    const right = Array.from(shuffled, (i) => chunks[i]!).reduceRight(
      (a, b) => RunningMoments.fromJSON(b.toJSON()).merge(a),
      new RunningMoments(d),
    );
    for (let j = 0; j < d; j++) {
      expect(right.mean[j]! / left.mean[j]!).toBeCloseTo(1, 12);
      expect(right.m2[j]! / left.m2[j]!).toBeCloseTo(1, 12);
    }
  });

  it('leaves non-finite values out of their column and tracks the largest magnitude', () => {
    const m = new RunningMoments(2).add([1, Number.NaN, 3, 4, -7, Number.POSITIVE_INFINITY], 3);
    expect(Array.from(m.count)).toEqual([3, 1]);
    expect(m.mean[0]).toBeCloseTo(-1, 12);
    expect(m.mean[1]).toBe(4);
    expect(m.stds()[1]).toBe(0);
    expect(m.maxAbs).toBe(7);
    expect(m.squarable).toBe(true);
    expect(new RunningMoments(1).add([1e200], 1).squarable).toBe(false);
  });

  it('refuses to merge moments of another width', () => {
    expect(() => new RunningMoments(2).merge(new RunningMoments(3))).toThrow(RangeError);
  });
});
