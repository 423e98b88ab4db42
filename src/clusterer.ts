/**
 * NeuromorphicClusterer: the one class most users touch. A facade over the fit's stages
 * (src/fit/stages.ts, finish.ts, private.ts) on a runtime (src/runtime/runtime.ts): it runs them
 * as one tracked operation, the neuromorphic ones under the resilience layer, keeps the fitted
 * model, predicts with it, and saves or reloads it.
 */
import type { Backend, BackendAttempt, BackendRegistry } from './backends/backend.js';
import type { QualityGate } from './cluster/gates.js';
import { clusterSizes } from './cluster/metrics.js';
import type { ConfigLevel } from './config/levels.js';
import { resolveConfig, resolveConfigChecked } from './config/load.js';
import type { Config, ConfigOverrides, DataConfig, Method } from './config/schema.js';
import { throwIfAborted } from './core/cancel.js';
import { currentCorrelationId, withCorrelationId } from './core/context.js';
import {
  isNeuroclusterError,
  requireFinite,
  toNeuroclusterError,
  UsageError,
  withContext,
} from './core/errors.js';
import type { BackendName, Matrix } from './core/matrix.js';
import type { ChunkedFile } from './data/chunked.js';
import { applyScaler } from './data/clean.js';
import type { Dataset } from './data/dataset.js';
import { writeLabelsFile } from './data/labels-file.js';
import { padToLayout, splitPadded } from './data/lengths.js';
import { permuteRows, unpermuteRows } from './data/order.js';
import { sampleKeys } from './encoders/drive.js';
import { transformPipeline } from './encoders/pipeline.js';
import { admitJob, jobMemory } from './fit/admission.js';
import { streams, streamsAtAll } from './fit/chunks.js';
import { type Clustered, finishFit } from './fit/finish.js';
import type { FitOptions } from './fit/options.js';
import { type FittedModel, fittedFrom, writeFitted } from './fit/persistence.js';
import { chargePrivateFit, checkPrivateFit, type PrivacyCharge, privateClusterStage } from './fit/private.js';
import { type ClusteringResult, observeFit, PhaseClock } from './fit/result.js';
import { rawMatrix } from './fit/rows.js';
import {
  clusterStage,
  type DataInput,
  encodeStage,
  type LoadContext,
  loadStage,
  type Prepared,
  prepareStage,
  type StageContext,
  settle,
} from './fit/stages.js';
import { streamedFit } from './fit/streamed.js';
import { type Prediction, streamedPredict } from './fit/streamed-predict.js';
import { createLogger, type Logger, operationLogger } from './observability/logger.js';
import type { OperationKind, OperationRecord, OperationTracker } from './observability/operations.js';
import type { ResourceMonitor } from './observability/resources.js';
import { inSpan } from './observability/tracing.js';
import type { FallbackReason } from './resilience/policy.js';
import type { ErrorTracker } from './resilience/tracker.js';
import { defaultRuntime, type Runtime, selectionContext } from './runtime/runtime.js';
import type { Keyring } from './security/keyring.js';
import { readModelFile } from './security/model-file.js';
import { openChunked } from './security/secure-load.js';

export type { DataInput } from './fit/stages.js';

export interface ClustererOptions {
  /** Clustering method; `auto` (the default): hybrid for time series, K-means for rows. */
  readonly method?: Method | 'auto';
  /** Number of clusters k. */
  readonly nClusters?: number;
  readonly backend?: BackendName | 'auto';
  readonly seed?: number;
  /** Any other option, by section, as in a configuration file. */
  readonly config?: ConfigOverrides;
  readonly logger?: Logger;
  /**
   * What it runs on: backends, metrics, trackers, breakers, the environment its configuration
   * reads (see createRuntime); the process's default runtime when absent.
   */
  readonly runtime?: Runtime;
  /** Backends to choose from; the runtime's registry by default. */
  readonly registry?: BackendRegistry;
  /** Where fits and predicts are tracked as operations; the runtime's by default. */
  readonly operations?: OperationTracker;
  /** Gates of your own, checked after the built-in ones (see `qualityGates` in the configuration). */
  readonly qualityGates?: readonly QualityGate[];
  /** How strictly `config` is checked (see docs/configuration.md); strict by default. */
  readonly configLevel?: ConfigLevel;
  /** Where errors are counted and alerts raised; the runtime's tracker of its configuration by default. */
  readonly tracker?: ErrorTracker;
  /**
   * false runs the neuromorphic path bare: no deadline, retries, breakers, degradation or
   * fallback. For measuring what the resilience layer costs; production code leaves it on.
   */
  readonly resilience?: boolean;
}

/**
 * Clusters data with the configured method and backend.
 *
 * @example
 * ```ts
 * import { NeuromorphicClusterer } from 'neurocluster';
 *
 * const clusterer = new NeuromorphicClusterer({ method: 'kmeans', nClusters: 3, seed: 42 });
 * const result = await clusterer.fit('examples/iris.csv');
 * console.log(result.labels, result.quality.silhouette);
 * const labels = await clusterer.predict([[5.1, 3.5, 1.4, 0.2]]);
 * await clusterer.save('iris.model.json');
 * const again = await NeuromorphicClusterer.load('iris.model.json');
 * ```
 */
export class NeuromorphicClusterer {
  /** The resolved configuration: defaults < short environment aliases < `config` < the named options. */
  readonly config: Config;
  /** What it runs on (see createRuntime). */
  readonly runtime: Runtime;
  private readonly baseLogger: Logger;
  /** The last operation's logger (see {@link logger}). */
  private opLogger: { readonly id: string; readonly logger: Logger } | undefined;
  private readonly registry: BackendRegistry;
  private readonly tracker: ErrorTracker;
  private readonly ops: OperationTracker;
  private readonly resilient: boolean;
  private readonly customGates: readonly QualityGate[];
  private model: FittedModel | undefined;

  constructor(options: ClustererOptions = {}) {
    this.runtime = options.runtime ?? defaultRuntime();
    const { config, warnings } = resolveConfigChecked(
      [
        // NEUROCLUSTER_WASM_THREADS, NEUROCLUSTER_FAULT... of the runtime's environment, then the
        // runtime's own options: defaults under `config`, checked with it.
        ...this.runtime.configLayers(),
        options.config,
        {
          engine: { method: options.method, backend: options.backend, seed: options.seed },
          kmeans: { nClusters: options.nClusters },
        },
      ],
      options.configLevel,
    );
    this.config = config;
    const logging = this.config.logging;
    this.baseLogger =
      options.logger ??
      createLogger({ level: logging.level, pretty: logging.pretty, transport: logging.transport });
    for (const w of warnings) this.logger.warn({ path: w.path }, `configuration: ${w.path}: ${w.message}`);
    this.registry = options.registry ?? this.runtime.registry;
    this.runtime.observe(this.registry);
    this.tracker = options.tracker ?? this.runtime.errorTracker(this.config);
    this.ops = options.operations ?? this.runtime.operations;
    this.resilient = options.resilience ?? true;
    this.customGates = options.qualityGates ?? [];
  }

  /**
   * The logger of the operation this code runs in: every line carries its correlation ID (from
   * AsyncLocalStorage, so lines from the data loader, the registry and the resilience layer do
   * too); outside an operation, the clusterer's own.
   */
  private get logger(): Logger {
    const id = currentCorrelationId();
    if (id === undefined) return this.baseLogger;
    if (this.opLogger?.id !== id) this.opLogger = { id, logger: operationLogger(this.baseLogger, id) };
    return this.opLogger.logger;
  }

  /** What the stages read: the configuration, the operation's logger, the runtime's metrics. */
  private stage(options: Pick<FitOptions, 'signal' | 'onProgress' | 'rowQuota'> = {}): LoadContext {
    return {
      config: this.config,
      logger: this.logger,
      metrics: this.runtime.metrics,
      keyring: () => this.runtime.keyring(),
      signal: options.signal,
      onProgress: options.onProgress,
      rowQuota: options.rowQuota,
    };
  }

  /** The number of clusters asked for; a fit cannot start without one. */
  private requiredK(): number {
    const k = this.config.kmeans.nClusters;
    if (k === undefined) throw new UsageError('the number of clusters is required (nClusters, --k)');
    return k;
  }

  /** Reads or wraps the input as a Dataset, validated. */
  loadData(data: DataInput): Promise<Dataset> {
    return loadStage(this.stage(), data);
  }

  /**
   * Charges the privacy budget of a private fit of `data` now (`privacy.epsilon`), after the
   * checks the fit makes first: a service charges its own ledger so, and hands the charge to the
   * worker that fits (`FitOptions.privacyCharge`), which then charges nothing. A refusal is the
   * fit's (NEUROCLUSTER_ERR_PRIVACY_BUDGET when the budget is spent).
   */
  chargePrivacy(
    data: DataInput,
    options: Pick<FitOptions, 'signal' | 'correlationId' | 'rowQuota'> = {},
  ): Promise<PrivacyCharge> {
    return withCorrelationId(options.correlationId, async () => {
      const ctx = this.stage(options);
      const k = this.requiredK();
      if (this.config.privacy.epsilon === undefined)
        throw new UsageError('no privacy.epsilon: a fit that is not private charges no budget');
      checkPrivateFit(ctx);
      const dataset = await loadStage(ctx, data);
      return chargePrivateFit(
        settle(ctx, dataset.series !== undefined),
        dataset,
        k,
        this.runtime.privacyAccountant(this.config),
      );
    });
  }

  /**
   * Clusters the data; the fitted model is kept for `predict` and `save`. The neuromorphic path
   * (encoders and the K-means on their output) runs under the resilience layer: one deadline,
   * retries, per-backend breakers, degradation under `auto`, and CPU K-means when it fails.
   */
  fit(data: DataInput, options: FitOptions = {}): Promise<ClusteringResult> {
    return this.operation('fit', options.correlationId, async (op) => {
      const ctx = this.stage(options);
      const clock = new PhaseClock(op.phases);
      const k = this.requiredK();
      if (this.config.privacy.epsilon !== undefined) checkPrivateFit(ctx);
      const file = await this.streamedFile(data);
      const { result, model } = file
        ? await this.fitStreamed(ctx, file, k, clock, options)
        : await this.fitInMemory(ctx, data, k, clock, options);
      this.model = model;
      // `auto` is settled by the input: the operation records what ran.
      op.method = result.method;
      observeFit(result, this.runtime.metrics);
      const degraded = result.fallback?.reason ?? (result.qualityGates ? 'quality-gate' : undefined);
      this.ops.end(op, degraded ? 'degraded' : 'succeeded', {
        phases: { ...result.timings },
        backend: result.backend,
        sizes: { rows: result.rows, columns: result.features.cols, k: result.k },
        quality: {
          silhouette: result.quality.silhouette,
          calinskiHarabasz: result.quality.calinskiHarabasz,
          daviesBouldin: result.quality.daviesBouldin,
        },
        outcome: degraded ?? 'succeeded',
      });
      return result;
    });
  }

  /** A fit of data held in memory: load, the stages, finish; the labels file written whole. */
  private async fitInMemory(
    loading: LoadContext,
    data: DataInput,
    k: number,
    clock: PhaseClock,
    options: FitOptions,
  ): Promise<{ result: ClusteringResult; model: FittedModel }> {
    const dataset = await clock.time('load', () => loadStage(loading, data));
    const ctx = settle(loading, dataset.series !== undefined);
    const run =
      this.config.privacy.epsilon === undefined
        ? await this.clusterResiliently(ctx, dataset, k, clock)
        : await privateClusterStage(ctx, dataset, k, clock, {
            budget: options.privacyCharge
              ? { charged: options.privacyCharge }
              : { accountant: this.runtime.privacyAccountant(this.config) },
            backend: () => this.registry.get('js'),
          });
    const done = await finishFit(ctx, run, dataset, clock, {
      home: this.runtime.home,
      gates: this.customGates,
      labelsOut: options.labelsOut,
    });
    const out = options.labelsOut;
    if (out)
      await writeLabelsFile(out, done.result.ids !== undefined, (sink) =>
        sink(done.result.labels, done.result.ids),
      );
    return done;
  }

  /**
   * The file `data` names opened to be fitted in chunks (src/fit/streamed.ts), when the
   * configuration streams it (`stream`); undefined for data in memory, a format read whole
   * (JSON arrays, encrypted files) or a file small enough to hold.
   */
  private async streamedFile(data: DataInput): Promise<ChunkedFile | undefined> {
    if (typeof data !== 'string' || !streamsAtAll(this.config)) return undefined;
    const file = await openChunked(data, this.config.security);
    if (!file || streams(this.config, file)) return file;
    await file.close();
    return undefined;
  }

  /** A fit of a file over chunks of its rows, under the same resilience as in memory. */
  private async fitStreamed(
    ctx: LoadContext,
    file: ChunkedFile,
    k: number,
    clock: PhaseClock,
    options: FitOptions,
  ): Promise<{ result: ClusteringResult; model: FittedModel }> {
    try {
      return await streamedFit(ctx, file, k, clock, {
        monitor: this.resourceMonitor(),
        resilient: (size, path, rescue) => this.resiliently(ctx, size, path, rescue),
        cpu: () => this.registry.get('js'),
        labelsOut: options.labelsOut,
        home: this.runtime.home,
        gates: this.customGates,
        split: options.split,
      });
    } finally {
      await file.close();
    }
  }

  /**
   * Runs `work` as a tracked operation with its correlation ID: queued, running, then ended by
   * `work` (succeeded or degraded) or here (failed, its error recorded by the error tracker).
   */
  private operation<T>(
    kind: OperationKind,
    correlationId: string | undefined,
    work: (op: OperationRecord) => Promise<T>,
  ): Promise<T> {
    return withCorrelationId(correlationId, () => {
      const id = currentCorrelationId()!;
      const method = this.config.engine.method;
      const attributes = { 'neurocluster.correlation_id': id, 'neurocluster.method': method };
      return inSpan(`neurocluster.${kind}`, attributes, async (span) => {
        const op = this.ops.begin(id, kind);
        op.method = method;
        this.ops.start(op);
        try {
          const out = await work(op);
          span.setAttributes({
            'neurocluster.outcome': op.outcome ?? op.state,
            ...(op.backend ? { 'neurocluster.backend': op.backend } : {}),
            ...(op.sizes
              ? { 'neurocluster.rows': op.sizes.rows, 'neurocluster.columns': op.sizes.columns }
              : {}),
          });
          return out;
        } catch (error) {
          const e = toNeuroclusterError(error);
          this.tracker.record(e);
          const backend = typeof e.context.backend === 'string' ? e.context.backend : undefined;
          this.ops.end(op, 'failed', {
            outcome: e.code,
            error: { code: e.code, message: e.message },
            ...(backend ? { backend } : {}),
          });
          span.setAttribute('neurocluster.outcome', e.code);
          throw error;
        }
      });
    });
  }

  /**
   * prepare, admit, then encode and cluster on a backend: under the resilience layer (with CPU
   * K-means on the cleaned input as its rescue), or bare when `resilience: false`.
   */
  private async clusterResiliently(
    ctx: StageContext,
    dataset: Dataset,
    k: number,
    clock: PhaseClock,
  ): Promise<Clustered> {
    const prepared = await clock.time('validate', async () => prepareStage(ctx, dataset, k));
    throwIfAborted(ctx.signal);
    // Input is read and validated before any backend starts, and the job admitted by its memory.
    admitJob(ctx.config, this.resourceMonitor(), this.logger, prepared, k, this.runtime.metrics);
    const problemSize = prepared.cleaned.data.length;
    const sizes = { rows: prepared.cleaned.rows, columns: prepared.cleaned.cols, k };
    const path = async (backend: Backend, signal: AbortSignal | undefined) => {
      const on = { ...ctx, signal };
      const { ordered, pipeline } = await clock
        .time('encode', () => encodeStage(on, backend, prepared, clock, k))
        .catch((error: unknown) => {
          if (isNeuroclusterError(error)) withContext(error, { sizes });
          throw error;
        });
      requireFinite(ordered.data, 'the encoders');
      return clock.time('cluster', async () => {
        const fit = await clusterStage(on, backend, ordered, k);
        requireFinite(fit.centroids, 'K-means');
        requireFinite([fit.inertia], 'K-means');
        return { backend, pipeline, ordered, fit };
      });
    };
    // The last line of defence: CPU K-means on the cleaned input, never a target of faults.
    const rescue = () =>
      clock.time('cluster', async () => {
        const backend = await this.registry.get('js');
        const ordered = permuteRows(prepared.cleaned, prepared.order);
        const fit = await clusterStage(ctx, backend, ordered, k);
        return { backend, pipeline: undefined, ordered, fit };
      });
    const { value: ran, tried, fallback } = await this.resiliently(ctx, problemSize, path, rescue);
    return this.clustered(prepared, ran, tried, fallback);
  }

  /**
   * Runs `path` on a backend under the resilience layer (one deadline, retries, per-backend
   * breakers, degradation under `auto`) with `rescue` (CPU K-means) when it fails; or bare when
   * `resilience: false`.
   */
  private async resiliently<T>(
    ctx: LoadContext,
    problemSize: number,
    path: (backend: Backend, signal: AbortSignal | undefined) => Promise<T>,
    rescue: () => Promise<T>,
  ): Promise<{ value: T; tried: readonly BackendAttempt[]; fallback: FallbackReason | undefined }> {
    if (!this.resilient) {
      const selected = await this.selectBackend(problemSize);
      return { value: await path(selected.backend, ctx.signal), tried: selected.tried, fallback: undefined };
    }
    const resilience = this.runtime.resilience(this.config, problemSize, {
      logger: this.logger,
      tracker: this.tracker,
      registry: this.registry,
    });
    const outcome = await resilience.run(this.config.engine.backend, path, rescue, ctx.signal);
    return outcome.fallback
      ? {
          value: outcome.value,
          tried: [...outcome.tried, { name: 'js', ok: true, reason: 'fallback: CPU K-means' }],
          fallback: outcome.reason,
        }
      : { value: outcome.value, tried: outcome.tried, fallback: undefined };
  }

  /** The neuromorphic path's outcome as the finishing stages take it. */
  private clustered(
    prepared: Prepared,
    ran: {
      backend: Backend;
      pipeline: Clustered['pipeline'];
      ordered: Matrix;
      fit: Awaited<ReturnType<typeof clusterStage>>;
    },
    tried: readonly BackendAttempt[],
    fallback: FallbackReason | undefined,
  ): Clustered {
    const { backend, pipeline, ordered, fit } = ran;
    // Without encoders the clustered matrix is the cleaned input: one matrix, judged once.
    return {
      backend,
      features: pipeline ? unpermuteRows(ordered, prepared.order) : prepared.cleaned,
      ordered,
      input: pipeline ? permuteRows(prepared.cleaned, prepared.order) : ordered,
      order: prepared.order,
      labels: fit.labels,
      centroids: fit.centroids,
      k: fit.k,
      d: fit.d,
      inertia: fit.inertia,
      iterations: fit.iterations,
      tried,
      fallback,
      pipeline,
      scaler: prepared.scaler,
      shape: { rows: prepared.cleaned.rows, cols: prepared.cleaned.cols },
    };
  }

  /** The resource monitor of this configuration (thresholds, budget, the runtime's home's disk). */
  resourceMonitor(): ResourceMonitor {
    return this.runtime.resourceMonitor(this.config);
  }

  /**
   * The memory a fit of `data` would need at its peak, estimated from its shape (see
   * `estimateJob`): what the job is admitted by. Reads and cleans the data, runs nothing.
   */
  async estimateMemory(data: DataInput): Promise<number> {
    const k = this.requiredK();
    const loading = this.stage();
    const dataset = await loadStage(loading, data);
    const ctx = settle(loading, dataset.series !== undefined);
    return jobMemory(ctx.config, prepareStage(ctx, dataset, k), k, this.logger).bytes;
  }

  /**
   * The configured backend; under `auto`, a problem of fewer input values than
   * `engine.smallProblemSize` runs on the plain JS backend.
   */
  private selectBackend(problemSize: number) {
    const { engine } = this.config;
    return this.registry.select(engine.backend, this.logger, selectionContext(engine, problemSize));
  }

  private fitted() {
    if (!this.model) throw new UsageError('the clusterer is not fitted: call fit() or load() first');
    return this.model;
  }

  /**
   * Labels of new data under the fitted model (same columns, cleaned the same way). A file past
   * more rows than `stream.sampleRows` is read in chunks; past `output.inlineLabelsMax` rows use {@link label} with
   * `labelsOut`.
   */
  async predict(
    data: DataInput,
    options: { correlationId?: string; signal?: AbortSignal } = {},
  ): Promise<Int32Array> {
    return (await this.label(data, options)).labels;
  }

  /**
   * {@link predict} with what a caller writing the labels needs: their count, the clusters' sizes,
   * the ids and dropped rows; `labelsOut` writes the labels file (a streamed file's a chunk at a
   * time, and then the labels are held only up to `output.inlineLabelsMax` rows).
   */
  label(
    data: DataInput,
    options: { correlationId?: string; signal?: AbortSignal; labelsOut?: string } = {},
  ): Promise<Prediction> {
    return this.operation('predict', options.correlationId, async (op) => {
      const model = this.fitted();
      op.method = model.method;
      const clock = new PhaseClock(op.phases);
      const file = await this.streamedFile(data);
      let prediction: Prediction;
      let backend: Backend;
      if (file) {
        try {
          ({ backend } = await this.selectBackend(file.bytes));
          const ctx = this.stage(options);
          const deps = { monitor: this.resourceMonitor(), labelsOut: options.labelsOut };
          prediction = await clock.time('cluster', () => streamedPredict(ctx, file, model, backend, deps));
        } finally {
          await file.close();
        }
      } else {
        const here = await this.predictHere(data, model, clock);
        backend = here.backend;
        const { labels, dataset } = here;
        prediction = {
          labels,
          rows: labels.length,
          sizes: clusterSizes(labels, model.k),
          ids: dataset.ids,
          droppedRows: dataset.droppedRows,
          streamed: false,
        };
        const out = options.labelsOut;
        if (out) await writeLabelsFile(out, dataset.ids !== undefined, (sink) => sink(labels, dataset.ids));
      }
      const { load, validate, encode, cluster, total } = clock.timings();
      this.ops.end(op, 'succeeded', {
        phases: { load, validate, encode, cluster, total },
        backend: backend.name,
        sizes: { rows: prediction.rows, columns: model.d, k: model.k },
        outcome: 'succeeded',
      });
      return prediction;
    });
  }

  private async predictHere(
    data: DataInput,
    model: FittedModel,
    clock: PhaseClock,
  ): Promise<{ labels: Int32Array; backend: Backend; dataset: Dataset }> {
    const dataset = padToLayout(await clock.time('load', () => this.loadData(data)), model.scaler.series);
    const cleaned = await clock.time('validate', async () => applyScaler(dataset, model.scaler));
    const values: Matrix = { rows: dataset.n, cols: cleaned.length / dataset.n, data: cleaned };
    const { cleaned: points, padded } = splitPadded(values, model.scaler.series, dataset.lengths);
    const { backend } = await this.selectBackend(cleaned.length);
    if (model.pipeline?.keyedBy === 'id' && !dataset.ids) {
      // Rate-coded spikes are keyed by the sample's identity: the same row keyed by content
      // draws other spikes than it did in fit.
      this.logger.warn(
        {},
        'the model keyed its samples by an id column; without one these rows are keyed by content, so their spikes differ from fit',
      );
    }
    const input = {
      points,
      padded,
      series: model.scaler.series,
      sampleKeys: sampleKeys(rawMatrix(dataset), dataset.ids),
    };
    const { pipeline } = model;
    const features = pipeline
      ? await clock.time('encode', () => transformPipeline(backend, pipeline, input))
      : points;
    const { labels } = await clock.time('cluster', () =>
      backend.kmeansAssign(features, { rows: model.k, cols: model.d, data: model.centroids }),
    );
    return { labels, backend, dataset };
  }

  /**
   * Writes the fitted model as a versioned, checksummed file (atomically); encrypted (as
   * security.encryptModels says) with `keyring`, the runtime's by default.
   */
  save(path: string, options: { correlationId?: string; keyring?: Keyring } = {}): Promise<void> {
    return this.operation('save', options.correlationId, async (op) => {
      const model = this.fitted();
      op.method = model.method;
      const clock = new PhaseClock(op.phases);
      try {
        const bytes = await clock.time('persist', () =>
          writeFitted(
            path,
            this.config,
            model,
            options.keyring ?? this.runtime.keyring((m) => this.logger.warn({}, m)),
          ),
        );
        this.runtime.metrics.modelOperations.inc({ operation: 'save', outcome: 'ok' });
        this.runtime.metrics.modelBytes.observe(bytes);
      } catch (error) {
        this.runtime.metrics.modelOperations.inc({ operation: 'save', outcome: 'error' });
        throw error;
      }
      this.ops.end(op, 'succeeded', {
        sizes: { rows: 0, columns: model.d, k: model.k },
        outcome: 'succeeded',
      });
    });
  }

  /** Number of clusters of the fitted model. */
  get k(): number {
    return this.fitted().k;
  }

  /**
   * Reads a model file written by `save`; refuses corrupt, unauthenticated or newer-version files.
   * The roles of columns in new data (label, id) and its NaN policy are the caller's, not the
   * training file's; so is the security section (data roots, limits, which models are trusted):
   * `options.security`, or the defaults, never what the file stored; and, when given, how new files
   * are streamed and what predictions return (`options.stream`, `options.output`).
   */
  static async load(
    path: string,
    options: Pick<ClustererOptions, 'logger' | 'registry' | 'backend' | 'runtime'> & {
      data?: Partial<DataConfig>;
      security?: ConfigOverrides['security'];
      /** How new files are read in chunks and what predictions return: the caller's, not the training run's. */
      stream?: ConfigOverrides['stream'];
      output?: ConfigOverrides['output'];
    } = {},
  ): Promise<NeuromorphicClusterer> {
    const runtime = options.runtime ?? defaultRuntime();
    const security = options.security ?? {};
    const trust = resolveConfig({ security }).security;
    let body: Awaited<ReturnType<typeof readModelFile>>;
    try {
      body = await readModelFile(path, () => runtime.keyring(), {
        allowUnauthenticated: trust.allowUnauthenticatedModels,
        maxFileBytes: trust.maxFileBytes,
      });
      runtime.metrics.modelOperations.inc({ operation: 'load', outcome: 'ok' });
    } catch (error) {
      runtime.metrics.modelOperations.inc({ operation: 'load', outcome: 'error' });
      throw error;
    }
    // What the running configuration governs is never taken from the file: the security section,
    // and the logging one (a stored transport would be a module loaded on the file's say-so).
    const { security: _stored, logging: _logging, ...stored } = body.parameters as ConfigOverrides;
    // Column roles and the text dialect belong to the new data, not the training file.
    const {
      labelColumn: _label,
      idColumn: _id,
      seriesIdColumn: _series,
      timeColumn: _time,
      delimiter: _delimiter,
      decimal: _decimal,
      header: _header,
      ...trainingData
    } = stored.data ?? {};
    const clusterer = new NeuromorphicClusterer({
      runtime,
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.registry ? { registry: options.registry } : {}),
      config: {
        ...stored,
        security,
        data: { ...trainingData, ...options.data },
        ...(options.stream ? { stream: options.stream } : {}),
        ...(options.output ? { output: options.output } : {}),
      },
      ...(options.backend ? { backend: options.backend } : {}),
    });
    clusterer.model = fittedFrom(body);
    return clusterer;
  }
}
