/**
 * DP K-means: it spends exactly its budget, step by step; no released centroid is an input row;
 * the count/sum split favours the sums; bounds are public or estimated under DP; with enough
 * epsilon it finds well-separated clusters.
 */
import { describe, expect, it } from 'vitest';
import { externalQuality } from '../../src/cluster/metrics.js';
import { PrivacyBudgetError } from '../../src/core/errors.js';
import { Random } from '../../src/core/random.js';
import { countShare, dpKMeans, splitCost } from '../../src/security/privacy/dp-kmeans.js';
import { PICO, toPico } from '../../src/security/privacy/mechanisms.js';

/** Three well-separated 2-D blobs of `per` points each, and their labels. */
function blobs(per: number, seed = 1) {
  const rng = new Random(seed);
  const centres = [
    [-4, -4],
    [0, 4],
    [4, -2],
  ];
  const data: number[] = [];
  const truth: number[] = [];
  centres.forEach((c, label) => {
    for (let i = 0; i < per; i++) {
      data.push(c[0]! + rng.normal() * 0.5, c[1]! + rng.normal() * 0.5);
      truth.push(label);
    }
  });
  return { matrix: { rows: 3 * per, cols: 2, data: Float64Array.from(data) }, truth };
}

const base = {
  k: 3,
  kind: 'pure' as const,
  iterations: 8,
  standardize: false,
  rangeShare: 0.1,
  standardizeShare: 0.2,
  seed: 7,
};

describe('the budget', () => {
  it('is split into whole pico-units that add up to the whole, the last part taking the remainder', () => {
    const whole = toPico(0.7);
    const parts = splitCost(whole, [0.1, 0.2, 0.7]);
    expect(parts.reduce((a, b) => a + b, 0n)).toBe(whole);
    expect(parts.every((p) => p > 0n)).toBe(true);
    expect(() => splitCost(2n, [0.2, 0.2, 0.2, 0.2, 0.2])).toThrow(PrivacyBudgetError);
  });

  it('gives the sums the larger share of an iteration in every dimension past one', () => {
    for (const d of [2, 4, 5, 8, 64]) {
      expect(countShare('pure', d)).toBeLessThan(0.5);
      expect(countShare('zcdp', d)).toBeLessThan(0.5);
    }
    expect(countShare('pure', 8)).toBeCloseTo(1 / (1 + 4), 12); // 8^(2/3) = 4
  });

  for (const options of [
    { label: 'public bounds, no standardization', bounds: { lo: [-8, -8], hi: [8, 8] }, standardize: false },
    { label: 'DP bounds and DP standardization', bounds: undefined, standardize: true },
  ]) {
    it(`is spent exactly, step by step (${options.label})`, () => {
      const { matrix } = blobs(1000);
      const cost = toPico(2);
      const out = dpKMeans(matrix, { ...base, ...options, cost });
      expect(out.steps.reduce((a, s) => a + s.cost, 0n)).toBe(cost);
      expect(out.steps.every((s) => s.mechanism === 'laplace')).toBe(true);
      const names = out.steps.map((s) => s.step);
      expect(names.filter((n) => n.endsWith('counts'))).toHaveLength(8);
      expect(names.includes('bounds')).toBe(options.bounds === undefined);
      expect(names.includes('standardize: count')).toBe(options.standardize);
    });
  }

  it('under zCDP uses the Gaussian mechanism for every step', () => {
    const { matrix } = blobs(200);
    const out = dpKMeans(matrix, {
      ...base,
      kind: 'zcdp',
      cost: PICO / 10n,
      bounds: { lo: [-8, -8], hi: [8, 8] },
    });
    expect(out.steps.every((s) => s.mechanism === 'gaussian')).toBe(true);
    expect(out.steps.reduce((a, s) => a + s.cost, 0n)).toBe(PICO / 10n);
  });
});

describe('DP K-means', () => {
  it('releases no centroid equal to an input row', () => {
    // Few, distinct points and k = n: the centroid most at risk of being one row is released noisy.
    const { matrix } = blobs(4);
    const out = dpKMeans(matrix, { ...base, k: 12, cost: toPico(1), bounds: { lo: [-8, -8], hi: [8, 8] } });
    for (let c = 0; c < out.k; c++) {
      for (let i = 0; i < matrix.rows; i++) {
        const same = [0, 1].every((j) => out.centroids[c * 2 + j] === matrix.data[i * 2 + j]);
        expect(same, `centroid ${c} equals row ${i}`).toBe(false);
      }
    }
  });

  it('finds well-separated clusters at epsilon 5 and bounds of its own', () => {
    const { matrix, truth } = blobs(1000);
    const out = dpKMeans(matrix, { ...base, cost: toPico(5), standardize: true });
    expect(out.boundsSource).toBe('dp-estimate');
    expect(externalQuality(truth, out.labels).ari).toBeGreaterThan(0.9);
  });

  it('draws its noise from the source it is given (a seeded one reproduces a run; the default is the OS CSPRNG)', () => {
    const { matrix } = blobs(100);
    const run = () =>
      dpKMeans(matrix, {
        ...base,
        cost: toPico(1),
        bounds: { lo: [-8, -8], hi: [8, 8] },
        noise: new Random(3),
      });
    expect([...run().centroids]).toEqual([...run().centroids]);
    const a = dpKMeans(matrix, { ...base, cost: toPico(1), bounds: { lo: [-8, -8], hi: [8, 8] } });
    const b = dpKMeans(matrix, { ...base, cost: toPico(1), bounds: { lo: [-8, -8], hi: [8, 8] } });
    expect([...a.centroids]).not.toEqual([...b.centroids]);
  });

  it('refuses a DP range estimate that finds nothing above its noise with a code of its own (exit 2), naming --bounds', () => {
    const { matrix } = blobs(3);
    let error: unknown;
    try {
      dpKMeans(matrix, { ...base, cost: toPico(0.1) });
    } catch (e) {
      error = e;
    }
    // Not a budget refusal: nothing was overspent, the data are too few for the range estimate.
    expect(error).toMatchObject({ code: 'NEUROCLUSTER_ERR_PRIVACY_DATA', exitCode: 2 });
    expect((error as Error).message).toMatch(/too few rows.*--bounds/);
  });
});
