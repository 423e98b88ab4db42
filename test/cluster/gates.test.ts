import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { QualityGateError } from '../../src/core/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { failure, ROOT } from '../helpers.js';

const IRIS = join(ROOT, 'examples/iris.csv');
const quiet = createLogger({ level: 'silent' });

function kmeansOnIris(k: number, qualityGates: Record<string, unknown> = {}, extra = {}) {
  return new NeuromorphicClusterer({
    method: 'kmeans',
    nClusters: k,
    backend: 'js',
    logger: quiet,
    config: { data: { labelColumn: 'species' }, qualityGates },
    ...extra,
  });
}

describe('quality gates', () => {
  it('pass silently when every minimum is met (iris, k 3)', async () => {
    const result = await kmeansOnIris(3).fit(IRIS);
    expect(result.qualityGates).toBeUndefined();
    expect(result.toJSON()).not.toHaveProperty('qualityGates');
  });

  it('in warn mode report each failed gate with its value and threshold, and change nothing else', async () => {
    const strict = { minSilhouette: 0.9, minCalinskiHarabasz: 1e6, minClusterSize: 100 };
    const plain = await kmeansOnIris(3, { enabled: false }).fit(IRIS);
    const result = await kmeansOnIris(3, strict).fit(IRIS);
    expect(Array.from(result.labels)).toEqual(Array.from(plain.labels));
    expect(result.qualityGates).toEqual([
      { gate: 'silhouette', value: result.quality.silhouette, threshold: 0.9 },
      { gate: 'calinskiHarabasz', value: result.quality.calinskiHarabasz, threshold: 1e6 },
      {
        gate: 'clusterSize',
        value: Math.min(...result.getClusterAssignments().map((a) => a.size)),
        threshold: 100,
      },
    ]);
    expect(result.toJSON().qualityGates).toHaveLength(3);
  });

  it('in fail mode fail the request with the result attached, and keep no model', async () => {
    const clusterer = kmeansOnIris(3, { mode: 'fail', minSilhouette: 0.9 });
    const e = await failure(clusterer.fit(IRIS));
    expect(e).toBeInstanceOf(QualityGateError);
    expect(e.code).toBe('NEUROCLUSTER_ERR_QUALITY_GATE');
    expect(e.message).toMatch(/^quality gates failed: silhouette 0\.\d{3,4} < 0\.9$/);
    expect((e as QualityGateError).failures.map((f) => f.gate)).toEqual(['silhouette']);
    expect(() => clusterer.k).toThrow(/not fitted/);
  });

  it('take gates of the library user: a function of the result', async () => {
    const result = await kmeansOnIris(
      3,
      {},
      {
        qualityGates: [
          (r: { k: number }) => (r.k < 4 ? { gate: 'enoughClusters', value: r.k, threshold: 4 } : undefined),
        ],
      },
    ).fit(IRIS);
    expect(result.qualityGates).toEqual([{ gate: 'enoughClusters', value: 3, threshold: 4 }]);
  });

  it('do not judge a metric that is undefined for the result (k = 1)', async () => {
    const result = await kmeansOnIris(1, { minClusterSize: 0 }).fit(IRIS);
    expect(result.quality.silhouette).toBeNull();
    expect(result.qualityGates).toBeUndefined();
  });
});
