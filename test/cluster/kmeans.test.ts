import { describe, expect, it } from 'vitest';
import { JsBackend } from '../../src/backends/js/js-backend.js';
import { makeBlobs } from '../../src/bench/workloads.js';
import { type KMeansOptions, kmeans, kmeansSteps, numberedByFirstRow } from '../../src/cluster/kmeans.js';
import { externalQuality } from '../../src/cluster/metrics.js';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { isNeuroclusterError } from '../../src/core/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { hasSharedTs, ROOT, SHARED_TS, sklearn } from '../helpers.js';

const backend = new JsBackend();
const quiet = createLogger({ level: 'silent' });
const defaults: KMeansOptions = {
  k: 3,
  nInit: 10,
  maxIter: 300,
  tol: 1e-4,
  algorithm: 'lloyd',
  miniBatchThreshold: 100_000,
  batchSize: 1024,
  maxNoImprovement: 10,
  seed: 0,
};

function pathOf(source: string): string {
  return source.startsWith('../shared/data/ts/')
    ? `${SHARED_TS}/${source.slice('../shared/data/ts/'.length)}`
    : `${ROOT}/${source}`;
}

describe('K-means matches scikit-learn on every data set', () => {
  const cases = sklearn.kmeans.filter((c) => !c.source.startsWith('../shared/') || hasSharedTs);
  it.each(cases.map((c) => [c.name, c] as const))('%s: inertia within 2%% of scikit-learn', async (_t, c) => {
    const clusterer = new NeuromorphicClusterer({
      method: 'kmeans',
      nClusters: c.k,
      seed: 0,
      backend: 'js',
      logger: quiet,
      config: { data: { labelColumn: c.labelColumn } },
    });
    const result = await clusterer.fit(pathOf(c.source));
    expect(result.quality.inertia).toBeLessThanOrEqual(c.inertia * 1.02);
    // Never better than the optimum by more than rounding: the objective is the same one.
    expect(result.quality.inertia).toBeGreaterThan(c.inertia * 0.9);
  });

  it('reaches scikit-learn ARI on standardized iris (0.620 with 10 restarts) at least as often over seeds', async () => {
    // scikit-learn itself lands in a worse local optimum for some seeds (0.592 on 4 of 20).
    const best = sklearn.kmeans.find((c) => c.name === 'iris')!;
    const sklearnHits = sklearn.irisSeeds.filter((r) => r.ari >= best.ari! - 1e-3).length;
    let hits = 0;
    for (const r of sklearn.irisSeeds) {
      const clusterer = new NeuromorphicClusterer({
        method: 'kmeans',
        nClusters: 3,
        seed: r.seed,
        logger: quiet,
        config: { data: { labelColumn: 'species' } },
      });
      const result = await clusterer.fit(`${ROOT}/examples/iris.csv`);
      if (result.external!.ari >= best.ari! - 1e-3) hits++;
      expect(result.quality.inertia).toBeLessThanOrEqual(best.inertia * 1.02);
    }
    expect(sklearnHits).toBeGreaterThanOrEqual(10);
    expect(hits).toBeGreaterThanOrEqual(sklearnHits);
  });
});

describe('K-means behaviour', () => {
  const { points, truth } = makeBlobs(2000, 3, 5, 11);

  it('gives the same labels for the same seed, and may differ for another', async () => {
    const a = await kmeans(backend, points, { ...defaults, k: 5, seed: 3 });
    const b = await kmeans(backend, points, { ...defaults, k: 5, seed: 3 });
    expect(Array.from(a.labels)).toEqual(Array.from(b.labels));
    expect(a.inertia).toBe(b.inertia);
  });

  it('keeps the run with the lowest inertia over restarts', async () => {
    const runs: number[] = [];
    const steps = kmeansSteps(backend, points, { ...defaults, k: 5, nInit: 6 });
    let next = await steps.next();
    while (!next.done) {
      if (next.value.type === 'run') runs.push(next.value.inertia);
      next = await steps.next();
    }
    expect(runs).toHaveLength(6);
    expect(next.value.inertia).toBe(Math.min(...runs));
  });

  it('labels and inertia describe the returned centroids', async () => {
    const fit = await kmeans(backend, points, { ...defaults, k: 5 });
    const assigned = await backend.kmeansAssign(points, { rows: 5, cols: 3, data: fit.centroids });
    expect(Array.from(assigned.labels)).toEqual(Array.from(fit.labels));
    expect(assigned.distances.reduce((s, v) => s + v, 0)).toBeCloseTo(fit.inertia, 6);
  });

  it('stops at the first Lloyd iteration whose labels did not change', async () => {
    const events: number[] = [];
    await kmeans(
      backend,
      points,
      { ...defaults, k: 5, nInit: 1, tol: 0 },
      {
        onProgress: (p) => {
          if (p.type === 'iteration') events.push(p.changed);
        },
      },
    );
    expect(events.at(-1)).toBe(0);
    expect(events.slice(1, -1).every((c) => c > 0)).toBe(true);
  });

  it('repairs empty clusters: every cluster has members even with duplicated points', async () => {
    // 40 copies of 3 points, k = 3 with random init drawing duplicates: empty clusters must be refilled.
    const data = new Float64Array(120 * 2);
    for (let i = 0; i < 120; i++) data.set([i % 3, (i % 3) * 2], i * 2);
    const fit = await kmeans(
      backend,
      { rows: 120, cols: 2, data },
      { ...defaults, init: 'random', nInit: 5 },
    );
    const counts = [0, 0, 0];
    for (const l of fit.labels) counts[l]!++;
    expect(counts.every((c) => c === 40)).toBe(true);
    expect(fit.inertia).toBe(0);
  });

  it('runs mini-batch for large N under auto, close to Lloyd', async () => {
    const big = makeBlobs(30_000, 4, 8, 5);
    const lloyd = await kmeans(backend, big.points, { ...defaults, k: 8, nInit: 3 });
    const mb = await kmeans(backend, big.points, {
      ...defaults,
      k: 8,
      nInit: 3,
      algorithm: 'auto',
      miniBatchThreshold: 10_000,
    });
    expect(mb.algorithm).toBe('minibatch');
    expect(mb.inertia).toBeLessThan(lloyd.inertia * 1.05);
    expect(externalQuality(big.truth, mb.labels).ari).toBeGreaterThan(0.9);
  });

  it('stops when the signal aborts, with NEUROCLUSTER_ERR_ABORTED', async () => {
    const controller = new AbortController();
    const run = kmeans(
      backend,
      points,
      { ...defaults, k: 5 },
      {
        signal: controller.signal,
        onProgress: () => controller.abort(new Error('user cancelled')),
      },
    );
    await expect(run).rejects.toSatisfy(
      (e) => isNeuroclusterError(e) && e.code === 'NEUROCLUSTER_ERR_ABORTED',
    );
  });

  it('refuses k < 1 and k > n', async () => {
    await expect(kmeans(backend, points, { ...defaults, k: 0 })).rejects.toThrow(/k must be an integer >= 1/);
    await expect(kmeans(backend, points, { ...defaults, k: 2001 })).rejects.toThrow(
      /larger than the number of rows/,
    );
  });

  it('numbers a partition one way: clusters in the order of their first rows, centroids alike', () => {
    const fitOf = (labels: number[], centroids: number[]) => ({
      k: 3,
      d: 1,
      labels: Int32Array.from(labels),
      centroids: Float64Array.from(centroids),
      inertia: 1,
      iterations: 1,
      algorithm: 'lloyd' as const,
    });
    // The same clusters under two numberings (and a suppressed row, -1) give one answer.
    const a = numberedByFirstRow(fitOf([2, 2, -1, 0, 1, 0], [10, 20, 30]));
    const b = numberedByFirstRow(fitOf([1, 1, -1, 2, 0, 2], [20, 30, 10]));
    expect([...a.labels]).toEqual([0, 0, -1, 1, 2, 1]);
    expect([...b.labels]).toEqual([...a.labels]);
    expect([...a.centroids]).toEqual([30, 10, 20]);
    expect([...b.centroids]).toEqual([...a.centroids]);
    // A cluster left empty goes last.
    expect([...numberedByFirstRow(fitOf([1, 1, 2], [10, 20, 30])).centroids]).toEqual([20, 30, 10]);
  });

  it('returns its labels numbered by first rows, whichever restart won', async () => {
    const { points } = makeBlobs(600, 2, 4, 3);
    for (const seed of [0, 1, 2]) {
      const { labels } = await kmeans(backend, points, { ...defaults, k: 4, nInit: 5, seed });
      const firsts = [0, 1, 2, 3].map((j) => labels.indexOf(j));
      expect(firsts).toEqual([...firsts].sort((x, y) => x - y));
      expect(labels[0]).toBe(0);
    }
  });

  it('recovers the blobs it was given', async () => {
    const fit = await kmeans(backend, points, { ...defaults, k: 5 });
    expect(externalQuality(truth, fit.labels).ari).toBeGreaterThan(0.95);
  });
});

describe('points whose squared distances leave float64', () => {
  const blobs = (scale: number) => {
    const data = Float64Array.from([0, 0, 0.1, 0.2, 5, 5, 5.1, 4.9, 10, 0, 9.8, 0.3], (v) => v * scale);
    return { rows: 6, cols: 2, data };
  };

  it('cluster the same at ordinary scales', async () => {
    const fit = await kmeans(backend, blobs(1), defaults);
    expect(new Set(fit.labels).size).toBe(3);
  });

  it.each([
    ['tiny (every distance underflows to 0)', 1e-300],
    ['huge (every distance overflows)', 1e300],
  ])('are refused with NEUROCLUSTER_ERR_NUMERICAL when %s', async (_t, scale) => {
    const error = await kmeans(backend, blobs(scale), defaults).catch((e: unknown) => e);
    expect(isNeuroclusterError(error) && error.code).toBe('NEUROCLUSTER_ERR_NUMERICAL');
  });
});
