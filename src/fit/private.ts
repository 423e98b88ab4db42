/**
 * The private path: DP K-means (src/security/privacy/dp-kmeans.ts) on the raw values. The budget
 * is charged before any noise is drawn; bounds, standardization and centroids come from DP
 * releases or public parameters only. Runs on the CPU, outside the resilience layer (it has no
 * kernels to fail), and hands its clustering to the same release and judge stages as every fit.
 */
import type { Backend } from '../backends/backend.js';
import { throwIfAborted } from '../core/cancel.js';
import { UsageError } from '../core/errors.js';
import type { Scaler } from '../data/clean.js';
import type { Dataset } from '../data/dataset.js';
import type { PrivacyAccountant } from '../security/privacy/accountant.js';
import { budgetName, datasetId } from '../security/privacy/accountant.js';
import { chargeRelease, resolveBounds } from '../security/privacy/api.js';
import { dpKMeans } from '../security/privacy/dp-kmeans.js';
import { fromPico } from '../security/privacy/mechanisms.js';
import type { Clustered } from './finish.js';
import type { PhaseClock } from './result.js';
import { checkShape, inertiaOf, rawMatrix } from './rows.js';
import type { StageContext } from './stages.js';

/** Refuses what the private path cannot release privately, before anything is read. */
export function checkPrivateFit(ctx: StageContext): void {
  const method = ctx.config.engine.method;
  if (method !== 'kmeans') {
    throw new UsageError(
      `differential privacy (--epsilon) runs the kmeans method only: the ${method} encoders fit block scalers${method === 'hybrid' ? ' and a PCA' : ''} on the data without noise (use --method kmeans)`,
    );
  }
  if (ctx.config.data.nanPolicy === 'impute-mean') {
    throw new UsageError(
      '--nan-policy impute-mean is refused under --epsilon: the column means it imputes are not private (use drop-rows or error)',
    );
  }
}

/** DP K-means on `dataset`, its budget charged to `accountant` first; run on `backend` (js) for scoring. */
export async function privateClusterStage(
  ctx: StageContext,
  dataset: Dataset,
  k: number,
  clock: PhaseClock,
  on: { readonly accountant: PrivacyAccountant; readonly backend: () => Promise<Backend> },
): Promise<Clustered> {
  const p = ctx.config.privacy;
  const raw = rawMatrix(dataset);
  await clock.time('validate', async () => checkShape(dataset, k));
  throwIfAborted(ctx.signal);
  const d = raw.cols;
  const bounds = p.bounds === undefined ? undefined : resolveBounds(p.bounds, dataset.columns);
  const name = budgetName(p.namespace, p.dataset ?? datasetId(raw));
  const charged = await clock.time('privacy', async () =>
    chargeRelease(on.accountant, name, p.epsilon!, p.delta, 'dp-kmeans'),
  );
  const dp = await clock.time('cluster', async () =>
    dpKMeans(raw, {
      k,
      cost: charged.cost,
      kind: charged.kind,
      iterations: p.iterations,
      bounds,
      standardize: ctx.config.data.standardize,
      rangeShare: p.rangeShare,
      standardizeShare: p.standardizeShare,
      seed: ctx.config.engine.seed,
    }),
  );
  const identity = Int32Array.from({ length: dataset.n }, (_, i) => i);
  const scaler: Scaler = {
    kind: 'tabular',
    inputColumns: [...dataset.columns],
    keep: Array.from({ length: d }, (_, j) => j),
    means: dp.standardization?.means ?? new Array<number>(d).fill(0),
    scales: dp.standardization?.scales ?? new Array<number>(d).fill(1),
    standardize: dp.standardization !== undefined,
  };
  return {
    backend: await on.backend(),
    features: dp.working,
    ordered: dp.working,
    input: dp.working,
    order: identity,
    labels: dp.labels,
    centroids: dp.workingCentroids,
    k,
    d,
    inertia: inertiaOf(dp.working, dp.labels, dp.workingCentroids, d),
    iterations: p.iterations,
    tried: [{ name: 'js', ok: true }],
    fallback: undefined,
    pipeline: undefined,
    scaler,
    shape: { rows: dataset.n, cols: d },
    weights: dp.noisyCounts,
    privacy: {
      ...charged.report,
      iterations: p.iterations,
      boundsSource: dp.boundsSource,
      bounds: dp.bounds,
      standardized: dp.standardization !== undefined,
      noisyCounts: dp.noisyCounts,
      steps: dp.steps.map((s) => ({ step: s.step, mechanism: s.mechanism, cost: fromPico(s.cost) })),
    },
  };
}
