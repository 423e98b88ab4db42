/**
 * PCA of wide features from the n x n Gram matrix (issue 18, item 9): the same components and
 * variances as the d x d covariance path, in a fraction of its memory.
 */
import { describe, expect, it } from 'vitest';
import { JsBackend } from '../../src/backends/js/js-backend.js';
import { Random } from '../../src/core/random.js';
import { fitPca, pcaAllocations, pcaPath, pcaTransform } from '../../src/linalg/pca.js';

const backend = new JsBackend();

/** n rows of d columns with a few strong directions, so the leading eigenvalues are well apart. */
function wide(n: number, d: number) {
  const rng = new Random(11);
  const directions = Array.from({ length: 4 }, () => Array.from({ length: d }, () => rng.normal()));
  const data = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const weights = [8, 4, 2, 1].map((w) => w * rng.normal());
    for (let t = 0; t < d; t++) {
      let v = 0.1 * rng.normal();
      for (let c = 0; c < 4; c++) v += weights[c]! * directions[c]![t]!;
      data[i * d + t] = v;
    }
  }
  return { rows: n, cols: d, data };
}

describe('PCA from the Gram matrix', () => {
  it('takes the Gram path exactly when there are fewer rows than columns', () => {
    expect(pcaPath(20, 20_000)).toBe('gram');
    expect(pcaPath(20_000, 20)).toBe('covariance');
    expect(pcaPath(50, 50)).toBe('covariance');
  });

  it.each([
    [40, 120, 6],
    [30, 400, 5],
    [300, 500, 8],
  ])('gives the covariance path’s components and variances (%i x %i, %i components)', async (n, d, m) => {
    const points = wide(n, d);
    const cov = await fitPca(backend, points, m, undefined, 'covariance');
    const gram = await fitPca(backend, points, m, undefined, 'gram');
    expect(Array.from(gram.mean)).toEqual(Array.from(cov.mean));
    // The four planted directions: components equal up to rounding (signs fixed the same way).
    for (let c = 0; c < 4; c++) {
      expect(gram.explainedVariance[c]! / cov.explainedVariance[c]!).toBeCloseTo(1, 6);
      expect(gram.explainedVarianceRatio[c]! / cov.explainedVarianceRatio[c]!).toBeCloseTo(1, 6);
      for (let t = 0; t < d; t++) {
        expect(Math.abs(gram.components[c * d + t]! - cov.components[c * d + t]!)).toBeLessThan(1e-6);
      }
    }
    // Every component a unit vector, orthogonal to the others.
    for (let a = 0; a < m; a++) {
      for (let b = 0; b <= a; b++) {
        let dot = 0;
        for (let t = 0; t < d; t++) dot += gram.components[a * d + t]! * gram.components[b * d + t]!;
        expect(Math.abs(dot - (a === b ? 1 : 0))).toBeLessThan(1e-9);
      }
    }
    // The projections agree on the planted directions.
    const pg = await pcaTransform(backend, gram, points);
    const pc = await pcaTransform(backend, cov, points);
    for (let i = 0; i < n; i++)
      for (let c = 0; c < 4; c++) {
        expect(Math.abs(pg.data[i * m + c]! - pc.data[i * m + c]!)).toBeLessThan(
          1e-5 * Math.sqrt(cov.explainedVariance[0]!),
        );
      }
  });

  it('completes components past the data’s rank with unit vectors orthogonal to the rest', async () => {
    const points = wide(5, 60);
    const pca = await fitPca(backend, points, 8);
    expect(pca.nComponents).toBe(8);
    // 5 centred rows span 4 directions at most.
    for (let c = 4; c < 8; c++) expect(pca.explainedVariance[c]).toBe(0);
    for (let a = 0; a < 8; a++) {
      for (let b = 0; b <= a; b++) {
        let dot = 0;
        for (let t = 0; t < 60; t++) dot += pca.components[a * 60 + t]! * pca.components[b * 60 + t]!;
        expect(Math.abs(dot - (a === b ? 1 : 0))).toBeLessThan(1e-9);
      }
    }
  });

  it('needs n x d and n x n where the covariance needs d x d', () => {
    const largest = (list: ReturnType<typeof pcaAllocations>) => Math.max(...list.map((a) => a.elements));
    // The reported case: 20 rows of 20,000 features (3.2 GB of covariance, twice).
    expect(largest(pcaAllocations(20, 20_000, 10, 4))).toBe(20 * 20_000);
    const tall = pcaAllocations(30_000, 20_000, 10, 4);
    expect(tall.find((a) => a.what.startsWith('the PCA covariance'))).toMatchObject({
      elements: 20_000 * 20_000,
      count: 2,
    });
    expect(pcaAllocations(20, 20_000, 10, 4).some((a) => a.elements === 20_000 * 20_000)).toBe(false);
  });
});
