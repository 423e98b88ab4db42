/**
 * The private path: DP K-means (src/security/privacy/dp-kmeans.ts) on the raw values. The budget
 * is charged before any noise is drawn; bounds, standardization and centroids come from DP
 * releases or public parameters only. Runs on the CPU, outside the resilience layer (it has no
 * kernels to fail), and hands its clustering to the same release and judge stages as every fit.
 */
import type { Backend } from '../backends/backend.js';
import { throwIfAborted } from '../core/cancel.js';
import { SecurityError, UsageError } from '../core/errors.js';
import type { Scaler } from '../data/clean.js';
import type { Dataset } from '../data/dataset.js';
import type { PrivacyAccountant } from '../security/privacy/accountant.js';
import { budgetName, datasetId } from '../security/privacy/accountant.js';
import { chargeRelease, type PrivacyReport, resolveBounds } from '../security/privacy/api.js';
import { dpKMeans } from '../security/privacy/dp-kmeans.js';
import { fromPico, type PrivacyKind } from '../security/privacy/mechanisms.js';
import type { Clustered } from './finish.js';
import type { PhaseClock } from './result.js';
import { checkShape, inertiaOf, rawMatrix } from './rows.js';
import type { LoadContext, StageContext } from './stages.js';

/** Refuses what the private path cannot release privately, before anything is read. */
export function checkPrivateFit(ctx: LoadContext): void {
  const method = ctx.config.engine.method;
  // `auto` settles on kmeans for a private fit (stages.ts, settle).
  if (method !== 'kmeans' && method !== 'auto') {
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

/**
 * A private fit's charge, made ahead of it: by a service on its own ledger before a worker fits
 * (docs/distributed.md), which then charges nothing (`FitOptions.privacyCharge`).
 */
export interface PrivacyCharge {
  readonly kind: PrivacyKind;
  /** The charge in millionths of millionths (epsilon, or rho under zCDP), as a decimal string. */
  readonly cost: string;
  readonly report: PrivacyReport;
}

/** The budget a private fit of `dataset` is charged to: the dataset's id in the namespace. */
function budgetOf(ctx: StageContext, dataset: Dataset): string {
  const p = ctx.config.privacy;
  return budgetName(p.namespace, p.dataset ?? datasetId(rawMatrix(dataset)));
}

/** Charges a private fit of `dataset` to `accountant` now, as {@link privateClusterStage} would. */
export function chargePrivateFit(
  ctx: StageContext,
  dataset: Dataset,
  k: number,
  accountant: PrivacyAccountant,
): PrivacyCharge {
  checkShape(dataset, k);
  const p = ctx.config.privacy;
  const charged = chargeRelease(accountant, budgetOf(ctx, dataset), p.epsilon!, p.delta, 'dp-kmeans');
  return { kind: charged.kind, cost: charged.cost.toString(), report: charged.report };
}

/**
 * Where a private fit's budget comes from: charged to a ledger now, or charged ahead of the fit
 * for this very data and release (anything else is refused: NEUROCLUSTER_ERR_SECURITY).
 */
export type PrivacyBudget = { readonly accountant: PrivacyAccountant } | { readonly charged: PrivacyCharge };

function spend(ctx: StageContext, name: string, budget: PrivacyBudget) {
  const p = ctx.config.privacy;
  if ('accountant' in budget) return chargeRelease(budget.accountant, name, p.epsilon!, p.delta, 'dp-kmeans');
  const { report, kind, cost } = budget.charged;
  if (report.dataset !== name || report.epsilon !== p.epsilon || (report.delta ?? undefined) !== p.delta)
    throw new SecurityError(
      `the privacy budget charged ahead of this fit was for ${report.dataset} at epsilon ${report.epsilon}, not ${name} at epsilon ${p.epsilon}: the data or the options changed since`,
    );
  return { kind, cost: BigInt(cost), report };
}

/** DP K-means on `dataset`, its budget charged first; run on `backend` (js) for scoring. */
export async function privateClusterStage(
  ctx: StageContext,
  dataset: Dataset,
  k: number,
  clock: PhaseClock,
  on: { readonly budget: PrivacyBudget; readonly backend: () => Promise<Backend> },
): Promise<Clustered> {
  const p = ctx.config.privacy;
  const raw = rawMatrix(dataset);
  await clock.time('validate', async () => checkShape(dataset, k));
  throwIfAborted(ctx.signal);
  const d = raw.cols;
  const bounds = p.bounds === undefined ? undefined : resolveBounds(p.bounds, dataset.columns);
  const charged = await clock.time('privacy', async () => spend(ctx, budgetOf(ctx, dataset), on.budget));
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
