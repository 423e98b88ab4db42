/**
 * Differential privacy and k-anonymity through the clusterer and the library API: DP K-means
 * charges exactly its epsilon, refuses an overspend before anything runs, refuses what it cannot
 * make private; k-anonymity merges or suppresses; anonymizeClusteringResults releases DP statistics.
 */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import type { ConfigOverrides } from '../../src/config/schema.js';
import { createLogger } from '../../src/observability/logger.js';
import { metrics } from '../../src/observability/metrics.js';
import { OperationTracker } from '../../src/observability/operations.js';
import { anonymizeClusteringResults, getPrivacyBudgetStatus } from '../../src/security/privacy/api.js';
import { failure, ROOT, tempDir } from '../helpers.js';

const IRIS = join(ROOT, 'examples/iris.csv');
const quiet = createLogger({ level: 'silent' });

/** Every test spends budgets in a home of its own, under one directory removed at the end. */
const root = tempDir();
beforeEach(() => {
  process.env.NEUROCLUSTER_HOME = mkdtempSync(join(root, 'home-'));
});

function dp(privacy: ConfigOverrides['privacy'], extra: ConfigOverrides = {}, operations?: OperationTracker) {
  return new NeuromorphicClusterer({
    method: 'kmeans',
    nClusters: 3,
    seed: 1,
    logger: quiet,
    config: { data: { labelColumn: 'species' }, privacy, ...extra },
    ...(operations ? { operations } : {}),
  });
}

describe('DP K-means through the clusterer', () => {
  it('charges exactly the declared epsilon to the dataset and says what is left', async () => {
    const first = await dp({ epsilon: 1, bounds: '0:10', dataset: 'iris' }).fit(IRIS);
    expect(first.privacy).toMatchObject({ dataset: 'iris', epsilon: 1, spent: 1, remaining: 9, budget: 10 });
    expect(first.privacy!.steps.reduce((a, s) => a + s.cost, 0)).toBeCloseTo(1, 12);
    expect(first.labels).toHaveLength(150);
    const second = await dp({ epsilon: 2.5, bounds: '0:10', dataset: 'iris' }).fit(IRIS);
    expect(second.privacy).toMatchObject({ spent: 3.5, remaining: 6.5 });
    expect(getPrivacyBudgetStatus('iris')).toMatchObject({ spent: 3.5, remaining: 6.5, charges: 2 });
    // By default the dataset is the content hash of the parsed matrix.
    const hashed = await dp({ epsilon: 1, bounds: '0:10' }).fit(IRIS);
    expect(hashed.privacy!.dataset).toMatch(/^sha256:/);
  });

  it('charged ahead (chargePrivacy, as a service does), charges nothing more, and refuses a charge for other data or epsilon', async () => {
    const charge = await dp({ epsilon: 2, bounds: '0:10' }).chargePrivacy(IRIS);
    expect(charge.report).toMatchObject({ epsilon: 2, spent: 2, remaining: 8 });
    expect(charge.report.dataset).toMatch(/^sha256:/);
    const fitted = await dp({ epsilon: 2, bounds: '0:10' }).fit(IRIS, { privacyCharge: charge });
    expect(fitted.privacy).toMatchObject({ dataset: charge.report.dataset, epsilon: 2, spent: 2 });
    expect(fitted.labels).toHaveLength(150);
    expect(getPrivacyBudgetStatus(charge.report.dataset)).toMatchObject({ spent: 2, charges: 1 });
    const refused = async (privacy: ConfigOverrides['privacy'], made = charge) =>
      (await failure(dp(privacy).fit(IRIS, { privacyCharge: made }))).code;
    expect(await refused({ epsilon: 1, bounds: '0:10' })).toBe('NEUROCLUSTER_ERR_SECURITY');
    const forOther = { ...charge, report: { ...charge.report, dataset: 'sha256:other' } };
    expect(await refused({ epsilon: 2, bounds: '0:10' }, forOther)).toBe('NEUROCLUSTER_ERR_SECURITY');
    expect(getPrivacyBudgetStatus(charge.report.dataset)).toMatchObject({ spent: 2, charges: 1 });
    // Nothing to charge without an epsilon.
    expect((await failure(dp(undefined).chargePrivacy(IRIS))).code).toBe('NEUROCLUSTER_ERR_INVALID_ARGUMENT');
  });

  it('refuses a fit that would overspend before anything is clustered', async () => {
    const ops = new OperationTracker();
    const budget = { budget: { epsilon: 1.5, delta: 1e-5 } };
    await dp({ epsilon: 1, bounds: '0:10', dataset: 'small', ...budget }).fit(IRIS);
    const e = await failure(
      dp({ epsilon: 1, bounds: '0:10', dataset: 'small', ...budget }, {}, ops).fit(IRIS, {
        correlationId: 'over',
      }),
    );
    expect(e.code).toBe('NEUROCLUSTER_ERR_PRIVACY_BUDGET');
    expect(e.message).toMatch(/past its budget of 1\.5/);
    expect(Object.keys(ops.get('over')!.phases)).not.toContain('cluster');
    expect(getPrivacyBudgetStatus('small')).toMatchObject({ spent: 1, refusals: 1 });
  });

  it('puts the budget of each dataset and the refusals in the metrics', async () => {
    const value = async (name: string, labels: Record<string, string> = {}) => {
      const { values } = await metrics.registry.getSingleMetric(name)!.get();
      return values
        .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
        .reduce((a, v) => a + v.value, 0);
    };
    const refusals = await value('neurocluster_privacy_refusals_total');
    const charges = await value('neurocluster_privacy_charges_total', { mechanism: 'laplace' });
    const budget = { budget: { epsilon: 2, delta: 1e-5 } };
    await dp({ epsilon: 1.5, bounds: '0:10', dataset: 'metered', ...budget }).fit(IRIS);
    await dp({ epsilon: 1, bounds: '0:10', dataset: 'metered', ...budget })
      .fit(IRIS)
      .catch(() => undefined);
    expect(await value('neurocluster_privacy_budget_spent_epsilon', { dataset: 'metered' })).toBe(1.5);
    expect(await value('neurocluster_privacy_budget_remaining_epsilon', { dataset: 'metered' })).toBe(0.5);
    expect(await value('neurocluster_privacy_refusals_total')).toBe(refusals + 1);
    expect(await value('neurocluster_privacy_charges_total', { mechanism: 'laplace' })).toBe(charges + 1);
    expect(await value('neurocluster_privacy_budget_remaining_ratio')).toBeLessThanOrEqual(0.25);
  });

  it('uses Gaussian noise under zCDP with a delta, never spending more than the epsilon asked', async () => {
    const r = await dp({ epsilon: 1, delta: 1e-6, bounds: '0:10', dataset: 'z' }).fit(IRIS);
    expect(r.privacy!.mechanism).toBe('gaussian');
    expect(r.privacy!.spent).toBeLessThanOrEqual(1);
    expect(r.privacy!.steps.every((s) => s.mechanism === 'gaussian')).toBe(true);
  });

  it('refuses what it cannot make private: the encoders, mean imputation', async () => {
    const esn = new NeuromorphicClusterer({
      method: 'esn',
      nClusters: 3,
      logger: quiet,
      config: { data: { labelColumn: 'species' }, privacy: { epsilon: 1 } },
    });
    expect((await failure(esn.fit(IRIS))).message).toMatch(/kmeans method only/);
    const impute = dp({ epsilon: 1 }, { data: { labelColumn: 'species', nanPolicy: 'impute-mean' } });
    expect((await failure(impute.fit(IRIS))).message).toMatch(/impute-mean is refused/);
  });

  it('enforces k-anonymity on the release (5 by default), merging small clusters', async () => {
    // k = 3 on iris: about 50 rows each; a minimum of 60 forces merges.
    const r = await dp({ epsilon: 5, bounds: '0:10', dataset: 'anon', minClusterSize: 60 }).fit(IRIS);
    expect(r.labels).toHaveLength(150);
    expect(r.anonymity!.minClusterSize).toBe(60);
    expect(r.k).toBeLessThan(3);
    for (const a of r.getClusterAssignments()) expect(a.size).toBeGreaterThanOrEqual(60);
    expect(r.centroids).toHaveLength(r.k);
  });

  it('predicts with the DP model', async () => {
    const c = dp({ epsilon: 2, bounds: '0:10', dataset: 'p' });
    const r = await c.fit(IRIS);
    const labels = await c.predict([[5.1, 3.5, 1.4, 0.2]]);
    expect(labels[0]).toBeGreaterThanOrEqual(0);
    expect(labels[0]).toBeLessThan(r.k);
  });
});

describe('k-anonymity without DP', () => {
  it('suppresses small clusters when asked: N labels, -1 for the suppressed, quality on the rest', async () => {
    const c = new NeuromorphicClusterer({
      method: 'kmeans',
      nClusters: 8,
      seed: 0,
      logger: quiet,
      config: {
        data: { labelColumn: 'species' },
        privacy: { minClusterSize: 20, smallClusters: 'suppress' },
      },
    });
    const r = await c.fit(IRIS);
    expect(r.labels).toHaveLength(150);
    expect(r.anonymity!.suppressedRows).toBeGreaterThan(0);
    expect(r.labels.filter((l) => l === -1)).toHaveLength(r.anonymity!.suppressedRows);
    for (const a of r.getClusterAssignments()) expect(a.size).toBeGreaterThanOrEqual(20);
    expect(r.quality.silhouette).not.toBeNull();
    expect(r.toJSON().anonymity).toEqual(r.anonymity);
  });
});

describe('anonymizeClusteringResults', () => {
  it('releases noisy per-cluster sizes and means, charged to the dataset, after k-anonymity', async () => {
    const plain = await new NeuromorphicClusterer({
      method: 'kmeans',
      nClusters: 3,
      seed: 0,
      logger: quiet,
      config: { data: { labelColumn: 'species' } },
    }).fit(IRIS);
    const release = await anonymizeClusteringResults(plain.labels, plain.features, {
      correlationId: 'anon-1',
      epsilon: 2,
      bounds: '-5:5',
      dataset: 'iris-features',
    });
    expect(release.clusters).toHaveLength(3);
    expect(release.privacy).toMatchObject({ dataset: 'iris-features', epsilon: 2, spent: 2, remaining: 8 });
    expect(release.steps.reduce((a, s) => a + s.cost, 0n)).toBe(2_000_000_000_000n);
    const sizes = plain.getClusterAssignments().map((a) => a.size);
    release.clusters.forEach((c, i) => {
      expect(Math.abs(c.count - sizes[i]!)).toBeLessThan(40);
      expect(c.mean).toHaveLength(plain.features.cols);
    });
    const strict = await anonymizeClusteringResults(plain.labels, plain.features, {
      epsilon: 1,
      bounds: '-5:5',
      dataset: 'iris-features',
      minClusterSize: 1000,
      smallClusters: 'suppress',
    });
    expect(strict.clusters).toHaveLength(0);
    expect([...strict.labels].every((l) => l === -1)).toBe(true);
  });
});
