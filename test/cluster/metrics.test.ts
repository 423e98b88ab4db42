import { describe, expect, it } from 'vitest';
import { JsBackend } from '../../src/backends/js/js-backend.js';
import {
  encodeLabels,
  externalQuality,
  internalQuality,
  silhouetteScore,
} from '../../src/cluster/metrics.js';
import { applyScaler, fitScaler } from '../../src/data/clean.js';
import { loadDataset } from '../../src/data/load.js';
import { ROOT, relErr, sklearn } from '../helpers.js';

const backend = new JsBackend();
const iris = await loadDataset(`${ROOT}/examples/iris.csv`, { labelColumn: 'species', nanPolicy: 'error' });
const raw = { rows: iris.n, cols: iris.width, data: iris.values };
const standardized = { rows: iris.n, cols: iris.width, data: applyScaler(iris, fitScaler(iris, true)) };
const exact = { silhouetteExactMaxSamples: 100_000, seed: 0 };

describe('internal metrics agree with scikit-learn to 1e-6', () => {
  it.each(sklearn.internal.map((c) => [`${c.labels} on ${c.space} iris`, c] as const))(
    '%s',
    async (_t, c) => {
      const { codes } = encodeLabels(sklearn.labellings[c.labels]!);
      const q = await internalQuality(backend, c.space === 'raw' ? raw : standardized, codes, exact);
      expect(relErr(q.silhouette!, c.silhouette)).toBeLessThan(1e-6);
      expect(relErr(q.calinskiHarabasz!, c.calinskiHarabasz)).toBeLessThan(1e-6);
      expect(relErr(q.daviesBouldin!, c.daviesBouldin)).toBeLessThan(1e-6);
    },
  );
});

describe('external metrics agree with scikit-learn to 1e-6', () => {
  it.each(sklearn.external.map((c) => [c.name, c] as const))('%s', (_t, c) => {
    const q = externalQuality(c.truth, c.predicted);
    expect(Math.abs(q.ari - c.ari)).toBeLessThan(1e-6 * Math.max(1, Math.abs(c.ari)));
    expect(Math.abs(q.nmi - c.nmi)).toBeLessThan(1e-6 * Math.max(1, Math.abs(c.nmi)));
    expect(Math.abs(q.randIndex - c.randIndex)).toBeLessThan(1e-6);
  });
});

describe('metrics outside their domain', () => {
  it('reports null internal metrics for a single cluster, and keeps inertia', async () => {
    const q = await internalQuality(backend, raw, new Int32Array(iris.n), exact);
    expect(q).toMatchObject({ silhouette: null, calinskiHarabasz: null, daviesBouldin: null });
    expect(q.inertia).toBeGreaterThan(0);
  });

  it('refuses labellings of different lengths', () => {
    expect(() => externalQuality([1, 2], [1])).toThrow(/lengths differ/);
  });
});

describe('silhouette sampling', () => {
  const { codes } = encodeLabels(sklearn.labellings.species!);

  it('is exact at or below the exact limit', async () => {
    const q = await silhouetteScore(backend, raw, codes, { silhouetteExactMaxSamples: 150, seed: 1 });
    const expected = sklearn.internal.find((c) => c.labels === 'species' && c.space === 'raw')!.silhouette;
    expect(relErr(q!, expected)).toBeLessThan(1e-6);
  });

  it('samples with the seed above the limit: same seed, same value; near the exact one', async () => {
    const a = await silhouetteScore(backend, raw, codes, { silhouetteExactMaxSamples: 100, seed: 7 });
    const b = await silhouetteScore(backend, raw, codes, { silhouetteExactMaxSamples: 100, seed: 7 });
    const c = await silhouetteScore(backend, raw, codes, { silhouetteExactMaxSamples: 100, seed: 8 });
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    expect(Math.abs(a! - 0.5035)).toBeLessThan(0.05);
  });
});
