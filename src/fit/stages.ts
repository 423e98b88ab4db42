/**
 * The fit as a plan of stages, each a function from its inputs to its outputs that the clusterer
 * composes (src/clusterer.ts):
 *
 *   load -> prepare (clean, canonical order, scaler) -> [admit] -> encode (fit the encoders'
 *   scalers, run them, reduce) -> cluster (K-means) -> release (k-anonymity, privacy)
 *   -> judge (quality, gates, baselines) -> persist (src/fit/persistence.ts)
 *
 * A stage reads only what it is given (the StageContext: configuration, logger, metrics, signal),
 * never the clusterer, so the same stages can run elsewhere: over chunks, or on another machine.
 * The last three stages are in src/fit/finish.ts; the private path (DP K-means) in private.ts.
 */
import type { Backend } from '../backends/backend.js';
import { type KMeansFit, kmeans } from '../cluster/kmeans.js';
import { settleConfig } from '../config/auto.js';
import type { Config, RunConfig } from '../config/schema.js';
import type { Matrix } from '../core/matrix.js';
import { applyScaler, fitScaler, type Scaler } from '../data/clean.js';
import type { Dataset } from '../data/dataset.js';
import { type PaddedSeries, splitPadded } from '../data/lengths.js';
import { datasetFromRows } from '../data/load.js';
import { canonicalOrder, permuteRows } from '../data/order.js';
import { sampleKeys } from '../encoders/drive.js';
import { createPipeline, fitPipeline, type PipelineState } from '../encoders/pipeline.js';
import type { Logger } from '../observability/logger.js';
import type { EngineMetrics } from '../observability/metrics.js';
import type { Keyring } from '../security/keyring.js';
import { loadWithinLimits } from '../security/secure-load.js';
import { checkRowQuota, type FitProgress, type PhaseClock, type RowQuota } from './result.js';
import { checkShape, isDataset, rawMatrix } from './rows.js';

/** What `fit` and `predict` accept: a file path, rows, a dense matrix, or a loaded Dataset. */
export type DataInput =
  | string
  | readonly (readonly number[])[]
  | { readonly rows: number; readonly cols: number; readonly data: ArrayLike<number> }
  | Dataset;

/** What reading the input may read: the job's configuration and where it reports. */
export interface LoadContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: EngineMetrics;
  /** The keyring an encrypted input is read with: the runtime's (its environment's). */
  readonly keyring: () => Keyring;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: FitProgress | undefined;
  /** The caller's cap on the rows read (a service tenant's). */
  readonly rowQuota?: RowQuota | undefined;
}

/** What every stage after the load may read: the job's settled configuration and where it reports. */
export interface StageContext extends LoadContext {
  readonly config: RunConfig;
}

/**
 * The stages' context for an input that is (or is not) a series: every `auto` setting made what
 * it is for that kind of input (settleConfig).
 */
export function settle(ctx: LoadContext, series: boolean): StageContext {
  return { ...ctx, config: settleConfig(ctx.config, series) };
}

/** Reads or wraps the input as a Dataset, validated (a file within the security limits). */
export async function loadStage(ctx: LoadContext, data: DataInput): Promise<Dataset> {
  if (isDataset(data)) return data;
  const opts = { ...ctx.config.data };
  const dataset =
    typeof data === 'string'
      ? await loadWithinLimits(data, opts, ctx.config.security, ctx.logger, ctx.keyring)
      : datasetFromRows(data, opts, ctx.logger);
  checkRowQuota(ctx.rowQuota, dataset.n);
  const dropped = dataset.droppedRows?.length ?? 0;
  ctx.metrics.rowsRead.inc({ source: typeof data === 'string' ? 'file' : 'memory' }, dataset.n + dropped);
  if (dropped > 0) ctx.metrics.rowsDropped.inc(dropped);
  return dataset;
}

/** A dataset ready to encode: its sample keys, canonical order, fitted scaler and cleaned input. */
export interface Prepared {
  /** Each row's identity (its id, else its content): what the spike generator is keyed by. */
  readonly keys: Uint32Array;
  /** The canonical row order: every statistic is fitted over the rows in it. */
  readonly order: Int32Array;
  readonly scaler: Scaler;
  /** The cleaned input, in file order (series of unequal lengths resampled to the longest). */
  readonly cleaned: Matrix;
  /** Series of unequal lengths, cleaned, as the reservoirs read them: each to its own end. */
  readonly padded?: PaddedSeries | undefined;
  readonly keyedBy: 'id' | 'content';
}

/**
 * Checks the shape, fixes the canonical row order (every statistic is fitted over the rows in
 * it, so labels ignore row order) and cleans the input.
 */
export function prepareStage(ctx: StageContext, dataset: Dataset, k: number): Prepared {
  checkShape(dataset, k);
  const keys = sampleKeys(rawMatrix(dataset), dataset.ids);
  const order = canonicalOrder(rawMatrix(dataset), keys);
  const scaler = fitScaler(dataset, ctx.config.data.standardize, ctx.logger, order);
  const values: Matrix = { rows: dataset.n, cols: scaler.keep.length, data: applyScaler(dataset, scaler) };
  const { cleaned, padded } = splitPadded(values, dataset.series, dataset.lengths);
  if (scaler.keep.length < dataset.width) ctx.metrics.columnsDropped.inc(dataset.width - scaler.keep.length);
  return { keys, order, scaler, cleaned, padded, keyedBy: dataset.ids ? 'id' : 'content' };
}

/** What the encode stage hands to K-means: the features in canonical order, and the fitted encoders. */
export interface Encoded {
  readonly ordered: Matrix;
  readonly pipeline: PipelineState | undefined;
}

/**
 * The features K-means clusters, rows in the canonical order: the cleaned input for `kmeans`,
 * else the fitted encoders' output (their block scalers and, for `hybrid`, the PCA fitted here).
 */
export async function encodeStage(
  ctx: StageContext,
  backend: Backend,
  prepared: Prepared,
  clock: PhaseClock,
  k: number,
): Promise<Encoded> {
  const { config, signal, onProgress } = ctx;
  const method = config.engine.method;
  const { cleaned, padded, scaler, keys, order, keyedBy } = prepared;
  if (method === 'kmeans') return { ordered: permuteRows(cleaned, order), pipeline: undefined };
  const input = { points: cleaned, padded, series: scaler.series, sampleKeys: keys, signal, onProgress };
  const inputDim = input.series?.dims ?? cleaned.cols;
  const created = { ...createPipeline(method, config.encoders, inputDim, config.engine.seed), keyedBy };
  const { state, ordered } = await fitPipeline(
    backend,
    created,
    input,
    config.encoders.hybrid.components,
    order,
    (work) => clock.time('reduce', work, 'encode'),
    // The members of a co-association consensus, each clustered with a seed of its own.
    async (features, member) => {
      const fit = await clusterStage({ ...ctx, onProgress: undefined }, backend, features, k, member);
      return { centroids: fit.centroids, labels: fit.labels, k: fit.k };
    },
  );
  return { ordered, pipeline: state };
}

/** `seed + offset`, wrapped to stay a safe integer (seeds go up to Number.MAX_SAFE_INTEGER). */
function offsetSeed(seed: number, offset: number): number {
  return seed + offset > Number.MAX_SAFE_INTEGER
    ? seed - (Number.MAX_SAFE_INTEGER + 1 - offset)
    : seed + offset;
}

/**
 * K-means on `points` with the configuration's `kmeans` section and seed (plus `seedOffset`: a
 * consensus member's own).
 */
export async function clusterStage(
  ctx: StageContext,
  backend: Backend,
  points: Matrix,
  k: number,
  seedOffset = 0,
): Promise<KMeansFit> {
  const { config, signal, onProgress } = ctx;
  const o = config.kmeans;
  const fit = await kmeans(
    backend,
    points,
    {
      k,
      nInit: o.nInit,
      maxIter: o.maxIter,
      tol: o.tol,
      algorithm: o.algorithm,
      miniBatchThreshold: o.miniBatchThreshold,
      batchSize: o.batchSize,
      maxNoImprovement: o.maxNoImprovement,
      seed: offsetSeed(config.engine.seed, seedOffset),
    },
    { ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}) },
  );
  ctx.metrics.kmeansIterations.observe({ algorithm: fit.algorithm }, fit.iterations);
  return fit;
}
