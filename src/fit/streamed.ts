/**
 * The fit of a file too large to hold, as passes over chunks of its rows. Every pass maps each
 * chunk to a small state and merges the states (src/linalg/running.ts, src/data/sample.ts,
 * src/cluster/streamed.ts), so memory is bounded by the chunk and the sample, never the file:
 *
 *   survey    read every chunk: the columns' running moments (the scaler, exact over all rows), the
 *             row count, and a seeded sample of `stream.sampleRows` rows by identity key
 *   sample    the in-memory stages on the sample (src/fit/stages.ts): the encoders' block scalers
 *             and PCA, and K-means (k-means++ with restarts) for the starting centres
 *   features  every chunk cleaned and encoded with what the sample fitted, spilled as float32 to an
 *             owner-only file (src/data/spill.ts)
 *   lloyd     exact Lloyd passes over the spill until the centres move less than `kmeans.tol` times
 *             the features' mean variance (scikit-learn's test)
 *   assign    the last pass: every row's label (written chunk by chunk to the labels file), the
 *             per-cluster moments of inertia, Calinski-Harabasz and Davies-Bouldin, and the
 *             contingency with the ground truth
 *
 * A file of at most `stream.sampleRows` rows is its own sample, in the canonical order, so the
 * streamed fit then fits what the in-memory one does (up to float32 features). The silhouette and
 * the input's quality are judged on the sample. The spill is removed when the fit ends, fails or
 * is aborted.
 */
import type { Backend, BackendAttempt } from '../backends/backend.js';
import type { QualityGate } from '../cluster/gates.js';
import { type ExternalQuality, type InternalQuality, internalQuality } from '../cluster/metrics.js';
import { ClusterMoments, ContingencyCounts, nextCentres, streamedQuality } from '../cluster/streamed.js';
import type { Method } from '../config/schema.js';
import { throwIfAborted } from '../core/cancel.js';
import { currentCorrelationId } from '../core/context.js';
import { DataError, requireFinite } from '../core/errors.js';
import type { Matrix } from '../core/matrix.js';
import type { ChunkedFile } from '../data/chunked.js';
import { applyScaler, type Scaler, seriesScaler, tabularScaler } from '../data/clean.js';
import type { Dataset, SeriesLayout } from '../data/dataset.js';
import { type LabelsSink, writeLabelsFile } from '../data/labels-file.js';
import { canonicalOrder, permuteRows } from '../data/order.js';
import { KeySample } from '../data/sample.js';
import { SpillDir } from '../data/spill.js';
import { sampleKeys } from '../encoders/drive.js';
import type { PipelineState } from '../encoders/pipeline.js';
import { RunningMoments } from '../linalg/running.js';
import type { ResourceMonitor } from '../observability/resources.js';
import type { FallbackReason } from '../resilience/policy.js';
import { admitJob } from './admission.js';
import {
  chunkRowsFor,
  chunkRowsOfJob,
  imputationMeans,
  PassMeter,
  type Plan,
  readOptions,
  tooManyToHold,
} from './chunks.js';
import { concludeFit, type UnjudgedFields } from './finish.js';
import type { FittedModel } from './persistence.js';
import {
  localRanges,
  type PlannedRange,
  type RangeJob,
  type RangePass,
  RangePlanner,
  type RangeRunner,
  type SplitRanges,
} from './ranges.js';
import { type ClusteringResult, checkRowQuota, type PhaseClock } from './result.js';
import { checkShape } from './rows.js';
import {
  clusterStage,
  encodeStage,
  type LoadContext,
  type Prepared,
  type StageContext,
  settle,
} from './stages.js';

/** What the survey learnt of the whole file. */
interface Survey {
  readonly source: string;
  readonly rows: number;
  readonly columns: readonly string[];
  readonly series: SeriesLayout | undefined;
  readonly hasIds: boolean;
  readonly hasTruth: boolean;
  readonly droppedRows: readonly number[];
  readonly moments: RunningMoments;
  readonly sample: KeySample;
  /** The file's records in ranges of about `distributed.taskRows`. */
  readonly ranges: readonly PlannedRange[];
}

/** What {@link streamedFit} needs from its caller. */
export interface StreamedDeps {
  readonly monitor: ResourceMonitor;
  /**
   * Runs `work` on a backend under the resilience layer, `rescue` (CPU K-means) when it fails;
   * the same policies as the in-memory fit.
   */
  readonly resilient: <T>(
    problemSize: number,
    work: (backend: Backend, signal: AbortSignal | undefined) => Promise<T>,
    rescue: () => Promise<T>,
  ) => Promise<{ value: T; tried: readonly BackendAttempt[]; fallback: FallbackReason | undefined }>;
  readonly cpu: () => Promise<Backend>;
  /**
   * Where the passes over the ranges run when not here: tasks on a queue for a file large enough
   * to split (src/distributed/split.ts). Undefined, or answering undefined: in this process.
   */
  readonly split?: SplitRanges | undefined;
  /** Where the labels are written, a chunk at a time. */
  readonly labelsOut?: string | undefined;
  /** The engine's home (the performance baselines) and the caller's quality gates. */
  readonly home: string;
  readonly gates: readonly QualityGate[];
}

/**
 * Pass 1: the columns' moments, the rows' keys and the seeded sample, in bounded memory; the
 * ranges of `perRange` chunks that the later passes map.
 */
async function survey(
  ctx: LoadContext,
  file: ChunkedFile,
  chunkRows: number,
  perRange: number,
): Promise<Survey> {
  const { config, signal } = ctx;
  const sample = new KeySample(config.stream.sampleRows);
  const planner = new RangePlanner(perRange);
  const meter = new PassMeter(ctx, 'survey', file.records);
  let moments: RunningMoments | undefined;
  let first: Dataset | undefined;
  const droppedRows: number[] = [];
  let rows = 0;
  // Deferred imputation: a missing value is imputed with the mean over the whole file, known after this pass.
  for await (const { data, records, start, offset, line } of file.chunks(
    chunkRows,
    readOptions(config, 'defer'),
    signal,
    ctx.logger,
  )) {
    throwIfAborted(signal);
    planner.add({ start, offset, line, records, rows: data.n });
    first ??= data;
    moments ??= new RunningMoments(data.width);
    moments.add(data.values, data.n);
    if (data.droppedRows) for (const r of data.droppedRows) droppedRows.push(r);
    const keys = sampleKeys({ rows: data.n, cols: data.width, data: data.values }, data.ids);
    for (let i = 0; i < data.n; i++) {
      const key = keys[i]!;
      if (!sample.admits(key)) continue;
      sample.add({
        key,
        index: rows + i,
        values: data.values.slice(i * data.width, (i + 1) * data.width),
        id: data.ids?.[i],
        truth: data.truth?.[i],
      });
    }
    rows += data.n;
    checkRowQuota(ctx.rowQuota, rows, true);
    const limits = config.security;
    if (rows > limits.maxRows || data.width > limits.maxColumns) {
      throw new DataError(
        'NEUROCLUSTER_ERR_DATA_SHAPE',
        `${rows} rows x ${data.width} columns so far is over the limits (security.maxRows ${limits.maxRows}, security.maxColumns ${limits.maxColumns})`,
        { location: { file: file.source } },
      );
    }
    meter.add(records);
  }
  ctx.metrics.rowsRead.inc({ source: 'file' }, rows + droppedRows.length);
  if (droppedRows.length > 0) ctx.metrics.rowsDropped.inc(droppedRows.length);
  return {
    source: file.source,
    rows,
    columns: first!.columns,
    series: first!.series,
    hasIds: first!.ids !== undefined,
    hasTruth: first!.truth !== undefined,
    droppedRows,
    moments: moments!,
    sample,
    ranges: planner.planned,
  };
}

/** The scaler over all rows, from the survey's moments (what `fitScaler` fits in memory). */
function scalerOf(ctx: StageContext, s: Survey): { scaler: Scaler; imputeWith: number[] | undefined } {
  const { standardize, nanPolicy } = ctx.config.data;
  const ds = { source: s.source, columns: s.columns };
  const imputeWith =
    nanPolicy === 'impute-mean' ? imputationMeans(s.moments, s.columns, s.source) : undefined;
  if (s.series) return { scaler: seriesScaler(ds, s.series, standardize), imputeWith };
  // Imputed values sit at their column's mean: they count in the variance's denominator as in memory.
  const stds = imputeWith ? s.moments.m2.map((m) => Math.sqrt(m / s.rows)) : s.moments.stds();
  return { scaler: tabularScaler(ds, s.moments.mean, stds, standardize, ctx.logger), imputeWith };
}

/** The sample as a Dataset in key order, missing values imputed with the file's means. */
function sampleDataset(s: Survey, imputeWith: readonly number[] | undefined): Dataset {
  const rows = s.sample.sorted();
  const width = s.columns.length;
  const values = new Float64Array(rows.length * width);
  for (const [i, r] of rows.entries()) values.set(r.values, i * width);
  if (imputeWith) {
    for (let i = 0; i < values.length; i++)
      if (!Number.isFinite(values[i]!)) values[i] = imputeWith[i % width]!;
  }
  return {
    source: s.source,
    n: rows.length,
    width,
    values,
    columns: s.columns,
    ...(s.series ? { series: s.series } : {}),
    ...(s.hasIds ? { ids: rows.map((r) => r.id!) } : {}),
    ...(s.hasTruth ? { truth: rows.map((r) => r.truth!) } : {}),
  };
}

/** The sample prepared as the in-memory fit prepares a dataset, with the scaler of all rows. */
function prepareSample(ds: Dataset, scaler: Scaler): Prepared {
  const raw = { rows: ds.n, cols: ds.width, data: ds.values };
  const keys = sampleKeys(raw, ds.ids);
  return {
    keys,
    order: canonicalOrder(raw, keys),
    scaler,
    cleaned: { rows: ds.n, cols: scaler.keep.length, data: applyScaler(ds, scaler) },
    keyedBy: ds.ids ? 'id' : 'content',
  };
}

/** What the sample fit and the passes over the spill produced on one backend. */
interface Streamed {
  readonly backend: Backend;
  readonly method: Method;
  readonly pipeline: PipelineState | undefined;
  readonly centres: Float64Array;
  readonly d: number;
  /** Iterations of the sample's K-means, then the Lloyd passes over all rows. */
  readonly iterations: number;
  readonly lloydPasses: number;
  /** The sample's features and cleaned input in canonical order, and its labels under the final centres. */
  readonly sampleFeatures: Matrix;
  readonly sampleInput: Matrix;
  readonly sampleLabels: Int32Array;
  /** Where the ranges' features are kept, for the last pass. */
  readonly runner: RangeRunner;
}

/**
 * Streams a fit of `file`: the survey, the sample fit, the features spilled, Lloyd passes and the
 * last pass that labels every row. The result carries the labels when there are at most
 * `output.inlineLabelsMax` rows; past that they are only in the labels file, which is then required.
 */
export async function streamedFit(
  loading: LoadContext,
  file: ChunkedFile,
  k: number,
  clock: PhaseClock,
  deps: StreamedDeps,
): Promise<{ result: ClusteringResult; model: FittedModel }> {
  const { config: asked } = loading;
  const inlineMax = asked.output.inlineLabelsMax;
  // Known up front for NPY (unless rows may be dropped): refused before the file is read.
  if (file.records !== undefined && asked.data.nanPolicy !== 'drop-rows') {
    tooManyToHold(file.records, inlineMax, deps.labelsOut);
  }
  // Until the survey says how wide a row is, a chunk is sized by the bytes of a record in the file
  // (a value takes at least two of them): eight bytes a value, in four copies.
  const memoryRows = chunkRowsFor(asked, deps.monitor, Math.max(64, (file.bytesPerRecord / 2) * 8 * 4));
  // Ranges are whole survey chunks: the survey knows where each chunk starts in the file.
  const { taskRows } = asked.distributed;
  const surveyRows = Math.min(memoryRows, taskRows);
  const perRange = Math.max(1, Math.floor(taskRows / surveyRows));
  const s = await clock.time('load', () => survey(loading, file, surveyRows, perRange));
  const ctx = settle(loading, s.series !== undefined);
  const { config } = ctx;
  checkShape({ n: s.rows, source: s.source }, k);
  tooManyToHold(s.rows, inlineMax, deps.labelsOut);
  const inline = s.rows <= inlineMax;
  const { scaler, imputeWith } = await clock.time('validate', async () => scalerOf(ctx, s));
  if (scaler.keep.length < s.columns.length)
    ctx.metrics.columnsDropped.inc(s.columns.length - scaler.keep.length);
  const sample = sampleDataset(s, imputeWith);
  const prepared = prepareSample(sample, scaler);
  // The sample is fitted in memory: admitted by its memory as any fit is.
  admitJob(config, deps.monitor, ctx.logger, prepared, k, ctx.metrics);
  // Where each sampled row stands in the file, in the canonical order the sample fit uses.
  const inFile = s.sample.sorted();
  const sampleIndex = Int32Array.from(prepared.order, (r) => inFile[r]!.index);
  const chunkRows = Math.min(surveyRows, chunkRowsOfJob(ctx, deps.monitor, scaler, k));
  const spillDir = new SpillDir();
  try {
    const run = (backend: Backend, method: Method, signal: AbortSignal | undefined) =>
      streamOn(
        {
          ...ctx,
          config:
            method === config.engine.method ? config : { ...config, engine: { ...config.engine, method } },
          signal,
        },
        backend,
        file,
        s,
        { scaler, imputeWith },
        prepared,
        k,
        chunkRows,
        spillDir,
        clock,
        deps.split,
      );
    const sizes = s.rows * scaler.keep.length;
    const outcome = await deps.resilient(
      sizes,
      (backend, signal) => run(backend, config.engine.method, signal),
      async () => run(await deps.cpu(), 'kmeans', ctx.signal),
    );
    const { value } = outcome;
    const shape = { method: value.method, backend: value.backend.name, n: s.rows, d: scaler.keep.length };
    try {
      // Judged before the labels file is committed: a fit that fails its gates leaves no file.
      const { result, centres } = await judge(
        ctx,
        file,
        s,
        outcome,
        sampleIndex,
        k,
        chunkRows,
        inline,
        deps.labelsOut,
        clock,
        (fields) => concludeFit(ctx, fields, shape, clock, deps),
      );
      const { method, pipeline, d } = value;
      return { result, model: { method, scaler, pipeline, centroids: centres, k, d } };
    } finally {
      await value.runner.remove();
    }
  } finally {
    await spillDir.remove();
  }
}

/** The sample fit, the features pass and the Lloyd passes, on one backend. */
async function streamOn(
  ctx: StageContext,
  backend: Backend,
  file: ChunkedFile,
  s: Survey,
  fitted: Omit<Plan, 'pipeline'>,
  prepared: Prepared,
  k: number,
  chunkRows: number,
  spillDir: SpillDir,
  clock: PhaseClock,
  split: SplitRanges | undefined,
): Promise<Streamed> {
  const { config } = ctx;
  const method = config.engine.method;
  // The sample fit: encoders, PCA and K-means' starting centres, as the in-memory fit makes them.
  const { ordered, pipeline } = await clock.time('encode', () =>
    encodeStage(ctx, backend, prepared, clock, k),
  );
  requireFinite(ordered.data, 'the encoders');
  const start = await clock.time('cluster', () => clusterStage(ctx, backend, ordered, k));
  const job: RangeJob = {
    file,
    options: readOptions(config, fitted.imputeWith, s.columns),
    plan: { ...fitted, pipeline },
    method,
    k,
    d: start.d,
    rereads: s.hasIds || s.hasTruth,
    hasTruth: s.hasTruth,
  };
  // The features of every row, kept as float32: spilled here, or by the tasks that computed them.
  const runner =
    (await split?.(backend, job, s.ranges)) ??
    localRanges(
      backend,
      job,
      s.ranges,
      await spillDir.file(`features-${method}-${backend.name}-${Date.now()}.f32`, start.d * 4),
    );
  try {
    return await passes(ctx, backend, s, job.plan, prepared, ordered, start, chunkRows, runner, clock);
  } catch (error) {
    // A retry or the rescue spills again: this attempt's features go now, not with the directory.
    await runner.remove();
    throw error;
  }
}

/** The features pass and the Lloyd passes over the ranges (here or on workers), from the sample fit's centres. */
async function passes(
  ctx: StageContext,
  backend: Backend,
  s: Survey,
  plan: Plan,
  prepared: Prepared,
  ordered: Matrix,
  start: {
    readonly centroids: Float64Array;
    readonly k: number;
    readonly d: number;
    readonly iterations: number;
  },
  chunkRows: number,
  runner: RangeRunner,
  clock: PhaseClock,
): Promise<Streamed> {
  const { config } = ctx;
  const method = config.engine.method;
  const { k, d } = start;
  const { pipeline } = plan;
  const featureMoments = await clock.time('encode', () =>
    runner.features(passOf(ctx, 'features', s.rows, chunkRows)),
  );

  // Exact Lloyd passes over all rows, from the sample's centres. `minibatch` keeps the sample's.
  let centres = start.centroids;
  let iterations = 0;
  if (config.kmeans.algorithm !== 'minibatch') {
    const variance = featureMoments.m2.reduce((a, m) => a + m / s.rows, 0) / d;
    const tolAbs = config.kmeans.tol * variance;
    await clock.time('cluster', async () => {
      for (let it = 1; it <= config.kmeans.maxIter; it++) {
        const pass = passOf(ctx, 'lloyd', s.rows, chunkRows, it);
        const next = nextCentres(await runner.lloyd(it, centres, pass), centres);
        centres = next.centres;
        iterations = it;
        if (next.shift <= tolAbs) break;
      }
    });
  }
  const sampleLabels = (await backend.kmeansAssign(ordered, { rows: k, cols: d, data: centres })).labels;
  const sampleInput = pipeline ? permuteRows(prepared.cleaned, prepared.order) : ordered;
  return {
    backend,
    method,
    pipeline,
    centres,
    d,
    iterations: iterations + start.iterations,
    lloydPasses: iterations,
    sampleFeatures: ordered,
    sampleInput,
    sampleLabels,
    runner,
  };
}

/** How every range of a pass is read, its progress metered. */
function passOf(
  ctx: StageContext,
  name: 'features' | 'lloyd' | 'assign',
  rows: number,
  chunkRows: number,
  iteration?: number,
): RangePass {
  const meter = new PassMeter(ctx, name, rows, iteration);
  return { chunkRows, signal: ctx.signal, onRows: (n) => meter.add(n) };
}

/** The sample's rows in the order they stand in the file (what `features` of a result holds). */
function inFileOrder(m: Matrix, index: Int32Array): Matrix {
  const order = Int32Array.from(index.keys()).sort((a, b) => index[a]! - index[b]!);
  return permuteRows(m, order);
}

/**
 * Clusters numbered as the in-memory fit numbers them: in the order their first rows come in the
 * canonical order (the sample's), clusters no sample row joined after them.
 */
function numbering(sampleLabels: Int32Array, k: number): Int32Array {
  const newOf = new Int32Array(k).fill(-1);
  let next = 0;
  for (const l of sampleLabels) if (newOf[l] === -1) newOf[l] = next++;
  for (let j = 0; j < k; j++) if (newOf[j] === -1) newOf[j] = next++;
  return newOf;
}

/** The last pass: every row labelled, the moments of the clusters, the labels file; the result's fields. */
async function judge(
  ctx: StageContext,
  _file: ChunkedFile,
  s: Survey,
  outcome: { value: Streamed; tried: readonly BackendAttempt[]; fallback: FallbackReason | undefined },
  sampleIndex: Int32Array,
  k: number,
  chunkRows: number,
  inline: boolean,
  labelsOut: string | undefined,
  clock: PhaseClock,
  conclude: (fields: UnjudgedFields) => ClusteringResult,
): Promise<{ result: ClusteringResult; centres: Float64Array }> {
  const { config, signal } = ctx;
  const run = outcome.value;
  const { backend, d, runner } = run;
  const newOf = numbering(run.sampleLabels, k);
  const centres = new Float64Array(k * d);
  for (let j = 0; j < k; j++) centres.set(run.centres.subarray(j * d, (j + 1) * d), newOf[j]! * d);
  const moments = new ClusterMoments(k, d);
  const contingency = s.hasTruth ? new ContingencyCounts(k) : undefined;
  const labels = inline ? new Int32Array(s.rows) : undefined;
  const ids: string[] | undefined = inline && s.hasIds ? [] : undefined;

  let at = 0;
  /** Every range labelled under the final centres, its state merged in range order. */
  const pass = (sink: LabelsSink | undefined) =>
    runner.assign(centres, passOf(ctx, 'assign', s.rows, chunkRows), async (range) => {
      moments.merge(range.moments);
      if (contingency && range.contingency) contingency.merge(range.contingency);
      labels?.set(range.labels, at);
      if (ids && range.ids) for (const id of range.ids) ids.push(id);
      await sink?.(range.labels, range.ids);
      at += range.labels.length;
    });
  const judged = async (): Promise<UnjudgedFields> => {
    const full = streamedQuality(moments, centres);
    const options = {
      silhouetteExactMaxSamples: config.engine.silhouetteExactMaxSamples,
      seed: config.engine.seed,
      signal,
    };
    const sampleLabels = run.sampleLabels.map((l) => newOf[l]!);
    const onSample = await internalQuality(backend, run.sampleFeatures, sampleLabels, options);
    const quality: InternalQuality = {
      silhouette: onSample.silhouette,
      calinskiHarabasz: full.calinskiHarabasz,
      daviesBouldin: full.daviesBouldin,
      inertia: full.inertia,
    };
    const inputQuality =
      run.sampleInput === run.sampleFeatures
        ? quality
        : await internalQuality(backend, run.sampleInput, sampleLabels, options);
    const external: ExternalQuality | undefined = contingency?.quality();
    const fields: UnjudgedFields = {
      labels: labels ?? new Int32Array(0),
      rows: s.rows,
      clusterSizes: Array.from(moments.counts),
      labelsFile: labelsOut,
      streamed: {
        sampleRows: run.sampleFeatures.rows,
        chunkRows,
        lloydPasses: run.lloydPasses,
        spilledBytes: runner.spilledBytes,
      },
      k,
      centroids: Array.from({ length: k }, (_, j) => Array.from(centres.subarray(j * d, (j + 1) * d))),
      features: inFileOrder(run.sampleFeatures, sampleIndex),
      method: config.engine.method,
      backend: backend.name,
      backendsTried: outcome.tried,
      quality,
      inputQuality,
      external,
      seed: config.engine.seed,
      parameters: config,
      ids,
      droppedRows: s.droppedRows.length > 0 ? s.droppedRows : undefined,
      iterations: run.iterations,
      fallback: outcome.fallback,
      correlationId: currentCorrelationId(),
      privacy: undefined,
      anonymity: undefined,
    };
    return fields;
  };
  let result: ClusteringResult | undefined;
  if (labelsOut) {
    await writeLabelsFile(labelsOut, s.hasIds, async (sink) => {
      result = conclude(await clock.time('score', () => pass(sink).then(judged)));
    });
  } else {
    result = conclude(await clock.time('score', () => pass(undefined).then(judged)));
  }
  return { result: result!, centres };
}
