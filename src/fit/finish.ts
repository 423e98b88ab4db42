/**
 * The last stages of every fit (neuromorphic, fallback or private): release (k-anonymity: small
 * clusters merged or suppressed), judge (the quality of what is released, suppressed rows left
 * out; the gates; the performance baseline) and the result with the model it leaves.
 */
import type { Backend, BackendAttempt } from '../backends/backend.js';
import { builtinGates, evaluateGates, type QualityGate } from '../cluster/gates.js';
import { externalQuality, internalQuality } from '../cluster/metrics.js';
import type { Method } from '../config/schema.js';
import { currentCorrelationId } from '../core/context.js';
import { QualityGateError } from '../core/errors.js';
import type { Matrix } from '../core/matrix.js';
import type { Scaler } from '../data/clean.js';
import type { Dataset } from '../data/dataset.js';
import type { PipelineState } from '../encoders/pipeline.js';
import {
  baselineFile,
  type PerformanceAnomaly,
  recordRun,
  shapeKey,
  type WorkloadShape,
} from '../observability/baselines.js';
import type { FallbackReason } from '../resilience/policy.js';
import { type AnonymityReport, enforceMinClusterSize } from '../security/kanonymity.js';
import type { PrivacyResult } from '../security/privacy/api.js';
import type { FittedModel } from './persistence.js';
import {
  ClusteringResult,
  type ClusteringResultFields,
  formatGateValue,
  observeFit,
  type PhaseClock,
  type Timings,
} from './result.js';
import { inertiaOf, keptRows, takeLabels, takeRows, unpermute } from './rows.js';
import type { StageContext } from './stages.js';

/** What a fit's clustering hands to {@link finishFit}. */
export interface Clustered {
  /** The backend that ran (it also scores). */
  readonly backend: Backend;
  /** The matrix K-means clustered, in file order, and in canonical order. */
  readonly features: Matrix;
  readonly ordered: Matrix;
  /** The cleaned input in canonical order (inputQuality). */
  readonly input: Matrix;
  readonly order: Int32Array;
  /** Labels in canonical order, k x d centroids, and the K-means objective. */
  readonly labels: Int32Array;
  readonly centroids: Float64Array;
  readonly k: number;
  readonly d: number;
  readonly inertia: number;
  readonly iterations: number;
  readonly tried: readonly BackendAttempt[];
  readonly fallback: FallbackReason | undefined;
  readonly pipeline: PipelineState | undefined;
  readonly scaler: Scaler;
  /** The shape of the cleaned input (the performance baseline's key). */
  readonly shape: { readonly rows: number; readonly cols: number };
  /** Weights of the centroids when k-anonymity merges (DP: the noisy counts). */
  readonly weights?: readonly number[];
  readonly privacy?: PrivacyResult;
}

/** Labels, centroids and k as released, and the k-anonymity report when it is on. */
interface Released {
  readonly labels: Int32Array;
  readonly centroids: Float64Array;
  readonly k: number;
  readonly inertia: number;
  readonly anonymity: AnonymityReport | undefined;
}

/** k-anonymity when it is on (always under DP): clusters under `minClusterSize` merged or suppressed. */
export async function releaseStage(ctx: StageContext, run: Clustered, clock: PhaseClock): Promise<Released> {
  const { labels, centroids, k, inertia, d } = run;
  const privacy = ctx.config.privacy;
  const minClusterSize = privacy.minClusterSize ?? (run.privacy ? 5 : undefined);
  if (minClusterSize === undefined) return { labels, centroids, k, inertia, anonymity: undefined };
  const out = await clock.time('privacy', async () =>
    enforceMinClusterSize(
      labels,
      centroids,
      k,
      d,
      { minClusterSize, strategy: privacy.smallClusters },
      run.weights,
    ),
  );
  const anonymity = out.report;
  const changes = out.report.merged.length + out.report.suppressed.length;
  if (changes > 0) {
    ctx.logger.info({ anonymity }, `k-anonymity: ${out.report.clustersBefore} clusters released as ${out.k}`);
  }
  if (changes === 0 && out.k === k) return { labels, centroids, k, inertia, anonymity };
  return {
    labels: out.labels,
    centroids: out.centroids,
    k: out.k,
    inertia: inertiaOf(run.ordered, out.labels, out.centroids, d),
    anonymity,
  };
}

/**
 * The quality of the released clustering: of the clustered features and of the cleaned input,
 * judged in the canonical order (so a sampled silhouette ignores row order too), suppressed rows
 * (label -1) left out; against the dataset's labels when it has them.
 */
async function judgeStage(
  ctx: StageContext,
  run: Clustered,
  released: Released,
  labels: Int32Array,
  truth: readonly string[] | undefined,
) {
  const { engine } = ctx.config;
  const canonical = released.labels;
  const options = {
    silhouetteExactMaxSamples: engine.silhouetteExactMaxSamples,
    seed: engine.seed,
    signal: ctx.signal,
  };
  const kept = keptRows(canonical);
  const judge = (m: Matrix) =>
    kept
      ? internalQuality(run.backend, takeRows(m, kept), takeLabels(canonical, kept), options)
      : internalQuality(run.backend, m, canonical, options);
  const inputQuality = await judge(run.input);
  // For plain K-means the clustered matrix is the cleaned input: judge it once.
  const judged = run.ordered === run.input ? inputQuality : await judge(run.ordered);
  const keptInFile = keptRows(labels);
  const external = !truth
    ? undefined
    : keptInFile
      ? externalQuality(
          Array.from(keptInFile, (i) => truth[i]!),
          takeLabels(labels, keptInFile),
        )
      : externalQuality(truth, labels);
  return { quality: { ...judged, inertia: released.inertia }, inputQuality, external };
}

/**
 * Judges the run's phase durations against the baseline of its shape and adds them to it (see
 * src/observability/baselines.ts); a baseline that cannot be written costs a warning, not the
 * request.
 */
function judgePerformance(
  ctx: StageContext,
  home: string,
  shape: WorkloadShape,
  timings: Timings,
): PerformanceAnomaly[] {
  const p = ctx.config.performance;
  const { load: _load, validate: _validate, ...phases } = timings;
  try {
    const anomalies = recordRun(baselineFile(home), shape, phases, {
      enabled: p.baselines,
      anomalyFactor: p.anomalyFactor,
      window: p.window,
      minSamples: p.minSamples,
      minSeconds: p.minPhaseSeconds,
    });
    for (const a of anomalies) {
      ctx.metrics.anomalies.inc({ phase: a.phase });
      ctx.logger.warn(
        { anomaly: a, shape: shapeKey(shape) },
        `performance anomaly: ${a.phase} took ${a.seconds.toFixed(3)} s, ${a.factor.toFixed(1)}x its baseline of ${a.baseline.toFixed(3)} s`,
      );
    }
    return anomalies;
  } catch (error) {
    ctx.logger.warn({ err: error }, 'the performance baseline could not be updated');
    return [];
  }
}

/**
 * The end of every fit: release, judge, the gates, the result and the model it leaves. A result
 * that fails its gates in `fail` mode is thrown (QualityGateError) and leaves no model.
 */
export async function finishFit(
  ctx: StageContext,
  run: Clustered,
  dataset: Dataset,
  clock: PhaseClock,
  extra: {
    readonly home: string;
    readonly gates: readonly QualityGate[];
    readonly labelsOut?: string | undefined;
  },
): Promise<{ result: ClusteringResult; model: FittedModel }> {
  const { config } = ctx;
  const { backend, features, tried, fallback, pipeline, d } = run;
  const released = await releaseStage(ctx, run, clock);
  const { k, centroids, anonymity } = released;
  const labels = unpermute(released.labels, run.order);
  const { quality, inputQuality, external } = await clock.time('score', () =>
    judgeStage(ctx, run, released, labels, dataset.truth),
  );

  const method: Method = fallback ? 'kmeans' : config.engine.method;
  const result = concludeFit(
    ctx,
    {
      labels,
      rows: labels.length,
      clusterSizes: undefined,
      labelsFile: extra.labelsOut,
      streamed: undefined,
      k,
      centroids: Array.from({ length: k }, (_, j) => Array.from(centroids.subarray(j * d, (j + 1) * d))),
      features,
      method: config.engine.method,
      backend: backend.name,
      backendsTried: tried,
      quality,
      inputQuality,
      external,
      seed: config.engine.seed,
      parameters: config,
      ids: dataset.ids,
      droppedRows: dataset.droppedRows,
      iterations: run.iterations,
      fallback,
      correlationId: currentCorrelationId(),
      privacy: run.privacy,
      anonymity,
    },
    { method, backend: backend.name, n: run.shape.rows, d: run.shape.cols },
    clock,
    extra,
  );
  return { result, model: { method, scaler: run.scaler, pipeline, centroids, k, d } };
}

/** A result's fields before it is judged: what the gates, the timings and the baseline add. */
export type UnjudgedFields = Omit<
  ClusteringResultFields,
  'timings' | 'qualityGates' | 'performanceAnomalies'
>;

/**
 * Judges a fit's outcome (in memory or streamed): its quality gates (the built-in ones and the
 * caller's), its phase durations against the performance baseline of its shape; makes the result.
 * A result that fails its gates in `fail` mode is thrown (QualityGateError).
 */
export function concludeFit(
  ctx: StageContext,
  fields: UnjudgedFields,
  shape: WorkloadShape,
  clock: PhaseClock,
  extra: { readonly home: string; readonly gates: readonly QualityGate[] },
): ClusteringResult {
  const { config, logger } = ctx;
  const { labels, k, quality, inputQuality } = fields;
  const gates = config.qualityGates;
  const failedGates = gates.enabled
    ? evaluateGates([...builtinGates(gates), ...extra.gates], {
        labels: labels.filter((l) => l >= 0),
        ...(fields.clusterSizes ? { sizes: fields.clusterSizes } : {}),
        k,
        quality,
        inputQuality,
      })
    : [];
  const timings = clock.timings();
  logger.debug({ backend: fields.backend, k, n: fields.rows, d: fields.features.cols, timings }, 'fit done');
  const anomalies = judgePerformance(ctx, extra.home, shape, timings);
  const result = new ClusteringResult({
    ...fields,
    timings,
    qualityGates: failedGates.length > 0 ? failedGates : undefined,
    performanceAnomalies: anomalies.length > 0 ? anomalies : undefined,
  });
  if (failedGates.length > 0) {
    for (const g of failedGates) ctx.metrics.gateFailures.inc({ gate: g.gate });
    const what = failedGates.map((g) => `${g.gate} ${formatGateValue(g.value)} < ${g.threshold}`).join('; ');
    if (gates.mode === 'fail') {
      observeFit(result, ctx.metrics);
      throw new QualityGateError(`quality gates failed: ${what}`, failedGates, result);
    }
    logger.warn({ qualityGates: failedGates }, `quality gates failed: ${what}`);
  }
  return result;
}
