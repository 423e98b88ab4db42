/**
 * NeuromorphicClusterer: the one class most users touch. It loads and cleans the data, picks a
 * backend, clusters, judges the result, and saves or reloads the fitted model.
 */
import type { Backend, BackendAttempt, BackendRegistry } from './backends/backend.js';
import { defaultRegistry } from './backends/index.js';
import { builtinGates, evaluateGates, type QualityGate } from './cluster/gates.js';
import { type KMeansFit, kmeans } from './cluster/kmeans.js';
import { externalQuality, internalQuality } from './cluster/metrics.js';
import { parseFault } from './config/faults.js';
import { neuroclusterHome } from './config/home.js';
import { type ConfigLevel, environmentDefaults } from './config/levels.js';
import { resolveConfig, resolveConfigChecked } from './config/load.js';
import {
  type Config,
  type ConfigOverrides,
  type DataConfig,
  durationMs,
  type EngineConfig,
  type KMeansConfig,
  type Method,
} from './config/schema.js';
import { throwIfAborted } from './core/cancel.js';
import { currentCorrelationId, withCorrelationId } from './core/context.js';
import {
  isNeuroclusterError,
  QualityGateError,
  requireFinite,
  toNeuroclusterError,
  UsageError,
  withContext,
} from './core/errors.js';
import type { BackendName, Matrix } from './core/matrix.js';
import { applyScaler, fitScaler, type Scaler } from './data/clean.js';
import type { Dataset } from './data/dataset.js';
import { datasetFromRows } from './data/load.js';
import { canonicalOrder, permuteRows, unpermuteRows } from './data/order.js';
import { sampleKeys } from './encoders/drive.js';
import { createPipeline, fitPipeline, type PipelineState, transformPipeline } from './encoders/pipeline.js';
import { admitJob, jobMemory } from './fit/admission.js';
import {
  breakerBook,
  errorTrackerFor,
  observeRegistry,
  resourceMonitorFor,
  selectionContext,
} from './fit/engine.js';
import { type FittedModel, fittedFrom, writeFitted } from './fit/persistence.js';
import {
  ClusteringResult,
  type FitOptions,
  formatGateValue,
  observeFit,
  PhaseClock,
  type Timings,
} from './fit/result.js';
import {
  checkShape,
  inertiaOf,
  isDataset,
  keptRows,
  rawMatrix,
  takeLabels,
  takeRows,
  unpermute,
} from './fit/rows.js';
import {
  baselineFile,
  type PerformanceAnomaly,
  recordRun,
  shapeKey,
  type WorkloadShape,
} from './observability/baselines.js';
import { createLogger, type Logger, operationLogger } from './observability/logger.js';
import { metrics } from './observability/metrics.js';
import {
  type OperationKind,
  type OperationRecord,
  type OperationTracker,
  operations,
} from './observability/operations.js';
import type { ResourceMonitor } from './observability/resources.js';
import { inSpan } from './observability/tracing.js';
import { type FallbackReason, Resilience, type ResilienceSettings } from './resilience/policy.js';
import type { ErrorTracker } from './resilience/tracker.js';
import { type AnonymityReport, enforceMinClusterSize } from './security/kanonymity.js';
import { readModelFile } from './security/model-file.js';
import { datasetId } from './security/privacy/accountant.js';
import {
  chargeRelease,
  type PrivacyResult,
  privacyAccountant,
  resolveBounds,
} from './security/privacy/api.js';
import { dpKMeans } from './security/privacy/dp-kmeans.js';
import { fromPico } from './security/privacy/mechanisms.js';
import { loadWithinLimits } from './security/secure-load.js';

/** What `fit` and `predict` accept: a file path, rows, a dense matrix, or a loaded Dataset. */
export type DataInput =
  | string
  | readonly (readonly number[])[]
  | { readonly rows: number; readonly cols: number; readonly data: ArrayLike<number> }
  | Dataset;

export interface ClustererOptions {
  /** Clustering method (`kmeans` in this version). */
  readonly method?: Method;
  /** Number of clusters k. */
  readonly nClusters?: number;
  readonly backend?: BackendName | 'auto';
  readonly seed?: number;
  /** Any other option, by section, as in a configuration file. */
  readonly config?: ConfigOverrides;
  readonly logger?: Logger;
  /** Backends to choose from; the process-wide registry by default. */
  readonly registry?: BackendRegistry;
  /** Where fits and predicts are tracked as operations; the process-wide `operations` by default. */
  readonly operations?: OperationTracker;
  /** Gates of your own, checked after the built-in ones (see `qualityGates` in the configuration). */
  readonly qualityGates?: readonly QualityGate[];
  /** How strictly `config` is checked (see docs/configuration.md); strict by default. */
  readonly configLevel?: ConfigLevel;
  /** Where errors are counted and alerts raised; the process-wide {@link errorTrackerFor} one by default. */
  readonly tracker?: ErrorTracker;
  /**
   * false runs the neuromorphic path bare: no deadline, retries, breakers, degradation or
   * fallback. For measuring what the resilience layer costs; production code leaves it on.
   */
  readonly resilience?: boolean;
}

/** What a fit's clustering hands to {@link NeuromorphicClusterer.finish}. */
interface Clustered {
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
    const { config, warnings } = resolveConfigChecked(
      [
        // NEUROCLUSTER_WASM_THREADS, NEUROCLUSTER_FAULT...: defaults under `config`, checked with it.
        environmentDefaults(),
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
    this.registry = options.registry ?? defaultRegistry;
    observeRegistry(this.registry);
    this.tracker = options.tracker ?? errorTrackerFor(this.config);
    this.ops = options.operations ?? operations;
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

  private get engine(): EngineConfig {
    return this.config.engine;
  }

  private get dataOptions(): DataConfig {
    return this.config.data;
  }

  private get kmeansOptions(): KMeansConfig {
    return this.config.kmeans;
  }

  /** Reads or wraps the input as a Dataset, validated. */
  async loadData(data: DataInput): Promise<Dataset> {
    const opts = { ...this.dataOptions };
    if (isDataset(data)) return data;
    const dataset =
      typeof data === 'string'
        ? await loadWithinLimits(data, opts, this.config.security, this.logger)
        : datasetFromRows(data, opts, this.logger);
    const dropped = dataset.droppedRows?.length ?? 0;
    metrics.rowsRead.inc({ source: typeof data === 'string' ? 'file' : 'memory' }, dataset.n + dropped);
    if (dropped > 0) metrics.rowsDropped.inc(dropped);
    return dataset;
  }

  /**
   * Clusters the data; the fitted model is kept for `predict` and `save`. The neuromorphic path
   * (encoders and the K-means on their output) runs under the resilience layer: one deadline,
   * retries, per-backend breakers, degradation under `auto`, and CPU K-means when it fails.
   */
  fit(data: DataInput, options: FitOptions = {}): Promise<ClusteringResult> {
    return this.operation('fit', options.correlationId, async (op) => {
      const result =
        this.config.privacy.epsilon === undefined
          ? await this.fitHere(data, options, op)
          : await this.fitPrivately(data, options, op);
      observeFit(result);
      const degraded = result.fallback?.reason ?? (result.qualityGates ? 'quality-gate' : undefined);
      this.ops.end(op, degraded ? 'degraded' : 'succeeded', {
        phases: { ...result.timings },
        backend: result.backend,
        sizes: { rows: result.labels.length, columns: result.features.cols, k: result.k },
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
      const attributes = { 'neurocluster.correlation_id': id, 'neurocluster.method': this.engine.method };
      return inSpan(`neurocluster.${kind}`, attributes, async (span) => {
        const op = this.ops.begin(id, kind);
        op.method = this.engine.method;
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

  private async fitHere(
    data: DataInput,
    { signal, onProgress }: FitOptions,
    op: OperationRecord,
  ): Promise<ClusteringResult> {
    const k = this.kmeansOptions.nClusters;
    if (k === undefined) throw new UsageError('the number of clusters is required (nClusters, --k)');
    const clock = new PhaseClock(op.phases);
    const dataset = await clock.time('load', () => this.loadData(data));
    const prepared = await clock.time('validate', async () => this.prepare(dataset, k));
    throwIfAborted(signal);

    // Input is read and validated before any backend starts, and the job admitted by its memory.
    admitJob(this.config, this.resourceMonitor(), this.logger, prepared, k);
    const problemSize = prepared.cleaned.data.length;
    const sizes = { rows: prepared.cleaned.rows, columns: prepared.cleaned.cols, k };
    const path = async (backend: Backend, pathSignal: AbortSignal | undefined) => {
      const { ordered, pipeline } = await clock
        .time('encode', () => this.encode(backend, prepared, pathSignal, onProgress, clock))
        .catch((error: unknown) => {
          if (isNeuroclusterError(error)) withContext(error, { sizes });
          throw error;
        });
      requireFinite(ordered.data, 'the encoders');
      return clock.time('cluster', async () => {
        const fit = await this.runKMeans(backend, ordered, k, pathSignal, onProgress);
        requireFinite(fit.centroids, 'K-means');
        requireFinite([fit.inertia], 'K-means');
        return { backend, pipeline, ordered, fit };
      });
    };
    let ran: Awaited<ReturnType<typeof path>>;
    let tried: readonly BackendAttempt[];
    let fallback: FallbackReason | undefined;
    if (!this.resilient) {
      const selected = await this.selectBackend(problemSize);
      ran = await path(selected.backend, signal);
      tried = selected.tried;
    } else {
      // The last line of defence: CPU K-means on the cleaned input, never a target of faults.
      const rescue = () =>
        clock.time('cluster', async () => {
          const backend = await this.registry.get('js');
          const ordered = permuteRows(prepared.cleaned, prepared.order);
          const fit = await this.runKMeans(backend, ordered, k, signal, onProgress);
          return { backend, pipeline: undefined, ordered, fit };
        });
      const outcome = await this.resilience(problemSize).run(this.engine.backend, path, rescue, signal);
      ran = outcome.value;
      tried = outcome.fallback
        ? [...outcome.tried, { name: 'js', ok: true, reason: 'fallback: CPU K-means' }]
        : outcome.tried;
      if (outcome.fallback) fallback = outcome.reason;
    }
    const { backend, pipeline, ordered, fit } = ran;
    // Without encoders the clustered matrix is the cleaned input: one matrix, judged once.
    return this.finish(
      {
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
      },
      dataset,
      clock,
      signal,
    );
  }

  /**
   * The end of every fit: k-anonymity when it is on (small clusters merged or suppressed), the
   * quality of what is released (suppressed rows left out), the gates, the result and the model.
   */
  private async finish(
    run: Clustered,
    dataset: Dataset,
    clock: PhaseClock,
    signal: AbortSignal | undefined,
  ): Promise<ClusteringResult> {
    const { backend, features, tried, fallback, pipeline } = run;
    let { labels: canonical, centroids, k, inertia } = run;
    const { d } = run;
    let anonymity: AnonymityReport | undefined;
    const minClusterSize = this.config.privacy.minClusterSize ?? (run.privacy ? 5 : undefined);
    if (minClusterSize !== undefined) {
      const out = await clock.time('privacy', async () =>
        enforceMinClusterSize(
          canonical,
          centroids,
          k,
          d,
          { minClusterSize, strategy: this.config.privacy.smallClusters },
          run.weights,
        ),
      );
      anonymity = out.report;
      if (out.report.merged.length > 0 || out.report.suppressed.length > 0 || out.k !== k) {
        canonical = out.labels;
        centroids = out.centroids;
        k = out.k;
        inertia = inertiaOf(run.ordered, canonical, centroids, d);
      }
      if (out.report.merged.length + out.report.suppressed.length > 0) {
        this.logger.info(
          { anonymity },
          `k-anonymity: ${out.report.clustersBefore} clusters released as ${k}`,
        );
      }
    }
    const labels = unpermute(canonical, run.order);
    const { quality, inputQuality, external } = await clock.time('score', async () => {
      const options = {
        silhouetteExactMaxSamples: this.engine.silhouetteExactMaxSamples,
        seed: this.engine.seed,
        signal,
      };
      // Judged in the canonical order too, so a sampled silhouette ignores row order as well;
      // suppressed rows (label -1) are not part of what is judged.
      const kept = keptRows(canonical);
      const judge = (m: Matrix) =>
        kept
          ? internalQuality(backend, takeRows(m, kept), takeLabels(canonical, kept), options)
          : internalQuality(backend, m, canonical, options);
      const inputQuality = await judge(run.input);
      // For plain K-means the clustered matrix is the cleaned input: judge it once.
      const judged = run.ordered === run.input ? inputQuality : await judge(run.ordered);
      const truth = dataset.truth;
      const keptInFile = keptRows(labels);
      const external = !truth
        ? undefined
        : keptInFile
          ? externalQuality(
              Array.from(keptInFile, (i) => truth[i]),
              takeLabels(labels, keptInFile),
            )
          : externalQuality(truth, labels);
      return { quality: { ...judged, inertia }, inputQuality, external };
    });

    const gates = this.config.qualityGates;
    const failedGates = gates.enabled
      ? evaluateGates([...builtinGates(gates), ...this.customGates], {
          labels: labels.filter((l) => l >= 0),
          k,
          quality,
          inputQuality,
        })
      : [];
    const timings = clock.timings();
    this.logger.debug({ backend: backend.name, k, n: dataset.n, d: features.cols, timings }, 'fit done');
    const method: Method = fallback ? 'kmeans' : this.engine.method;
    const anomalies = this.judgePerformance(
      { method, backend: backend.name, n: run.shape.rows, d: run.shape.cols },
      timings,
    );
    const result = new ClusteringResult({
      labels,
      k,
      centroids: Array.from({ length: k }, (_, j) => Array.from(centroids.subarray(j * d, (j + 1) * d))),
      features,
      method: this.engine.method,
      backend: backend.name,
      backendsTried: tried,
      quality,
      inputQuality,
      external,
      timings,
      seed: this.engine.seed,
      parameters: this.config,
      ids: dataset.ids,
      droppedRows: dataset.droppedRows,
      iterations: run.iterations,
      fallback,
      correlationId: currentCorrelationId(),
      qualityGates: failedGates.length > 0 ? failedGates : undefined,
      performanceAnomalies: anomalies.length > 0 ? anomalies : undefined,
      privacy: run.privacy,
      anonymity,
    });
    if (failedGates.length > 0) {
      for (const g of failedGates) metrics.gateFailures.inc({ gate: g.gate });
      const what = failedGates
        .map((g) => `${g.gate} ${formatGateValue(g.value)} < ${g.threshold}`)
        .join('; ');
      if (gates.mode === 'fail') {
        observeFit(result);
        throw new QualityGateError(`quality gates failed: ${what}`, failedGates, result);
      }
      this.logger.warn({ qualityGates: failedGates }, `quality gates failed: ${what}`);
    }
    // The model is kept only for a result that stands (not one that failed its gates).
    this.model = { method, scaler: run.scaler, pipeline, centroids, k, d };
    return result;
  }

  /**
   * DP K-means (src/security/privacy/dp-kmeans.ts) on the raw values: the budget is charged before
   * any noise is drawn; bounds, standardization and centroids come from DP releases or public
   * parameters only. Runs on the CPU, outside the resilience layer (it has no kernels to fail).
   */
  private async fitPrivately(
    data: DataInput,
    { signal }: FitOptions,
    op: OperationRecord,
  ): Promise<ClusteringResult> {
    const p = this.config.privacy;
    const k = this.kmeansOptions.nClusters;
    if (k === undefined) throw new UsageError('the number of clusters is required (nClusters, --k)');
    const method = this.engine.method;
    if (method !== 'kmeans') {
      throw new UsageError(
        `differential privacy (--epsilon) runs the kmeans method only: the ${method} encoders fit block scalers${method === 'hybrid' ? ' and a PCA' : ''} on the data without noise (use --method kmeans)`,
      );
    }
    if (this.dataOptions.nanPolicy === 'impute-mean') {
      throw new UsageError(
        '--nan-policy impute-mean is refused under --epsilon: the column means it imputes are not private (use drop-rows or error)',
      );
    }
    const clock = new PhaseClock(op.phases);
    const dataset = await clock.time('load', () => this.loadData(data));
    const raw = rawMatrix(dataset);
    await clock.time('validate', async () => checkShape(dataset, k));
    throwIfAborted(signal);
    const d = raw.cols;
    const bounds = p.bounds === undefined ? undefined : resolveBounds(p.bounds, dataset.columns);
    const name = p.dataset ?? datasetId(raw);
    const charged = await clock.time('privacy', async () =>
      chargeRelease(privacyAccountant(this.config), name, p.epsilon!, p.delta, 'dp-kmeans'),
    );
    const dp = await clock.time('cluster', async () =>
      dpKMeans(raw, {
        k,
        cost: charged.cost,
        kind: charged.kind,
        iterations: p.iterations,
        bounds,
        standardize: this.dataOptions.standardize,
        rangeShare: p.rangeShare,
        standardizeShare: p.standardizeShare,
        seed: this.engine.seed,
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
    return this.finish(
      {
        backend: await this.registry.get('js'),
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
      },
      dataset,
      clock,
      signal,
    );
  }

  /**
   * Judges the run's phase durations against the baseline of its shape and adds them to it (see
   * src/observability/baselines.ts); a baseline that cannot be written costs a warning, not the
   * request.
   */
  private judgePerformance(shape: WorkloadShape, timings: Timings): PerformanceAnomaly[] {
    const p = this.config.performance;
    const { load: _load, validate: _validate, ...phases } = timings;
    try {
      const anomalies = recordRun(baselineFile(neuroclusterHome()), shape, phases, {
        enabled: p.baselines,
        anomalyFactor: p.anomalyFactor,
        window: p.window,
        minSamples: p.minSamples,
        minSeconds: p.minPhaseSeconds,
      });
      for (const a of anomalies) {
        metrics.anomalies.inc({ phase: a.phase });
        this.logger.warn(
          { anomaly: a, shape: shapeKey(shape) },
          `performance anomaly: ${a.phase} took ${a.seconds.toFixed(3)} s, ${a.factor.toFixed(1)}x its baseline of ${a.baseline.toFixed(3)} s`,
        );
      }
      return anomalies;
    } catch (error) {
      this.logger.warn({ err: error }, 'the performance baseline could not be updated');
      return [];
    }
  }

  /** The resource monitor of this configuration (thresholds, budget, NEUROCLUSTER_HOME's disk). */
  resourceMonitor(): ResourceMonitor {
    return resourceMonitorFor(this.config);
  }

  /**
   * The memory a fit of `data` would need at its peak, estimated from its shape (see
   * `estimateJob`): what the job is admitted by. Reads and cleans the data, runs nothing.
   */
  async estimateMemory(data: DataInput): Promise<number> {
    const k = this.kmeansOptions.nClusters;
    if (k === undefined) throw new UsageError('the number of clusters is required (nClusters, --k)');
    return jobMemory(this.config, this.prepare(await this.loadData(data), k), k, this.logger).bytes;
  }

  /** The resilience layer for a job of `problemSize` input values, from the configuration. */
  private resilience(problemSize: number): Resilience {
    const c = this.config;
    const settings: ResilienceSettings = {
      timeoutMs: durationMs(c.timeout),
      retry: {
        maxRetries: c.retry.maxRetries,
        baseDelayMs: durationMs(c.retry.baseDelay),
        maxDelayMs: durationMs(c.retry.maxDelay),
      },
      fallback: { enabled: c.fallback.enabled, degradeOrder: c.fallback.degradeOrder },
      fault: parseFault(c.faults.inject),
    };
    return new Resilience(settings, {
      registry: this.registry,
      breakers: breakerBook(c),
      tracker: this.tracker,
      logger: this.logger,
      selection: selectionContext(this.engine, problemSize),
    });
  }

  /**
   * Checks the shape, fixes the canonical row order (every statistic is fitted over the rows in
   * it, so labels ignore row order) and cleans the input.
   */
  private prepare(dataset: Dataset, k: number) {
    checkShape(dataset, k);
    const keys = sampleKeys(rawMatrix(dataset), dataset.ids);
    const order = canonicalOrder(rawMatrix(dataset), keys);
    const scaler = fitScaler(dataset, this.dataOptions.standardize, this.logger, order);
    const cleaned: Matrix = { rows: dataset.n, cols: scaler.keep.length, data: applyScaler(dataset, scaler) };
    if (scaler.keep.length < dataset.width) metrics.columnsDropped.inc(dataset.width - scaler.keep.length);
    return { keys, order, scaler, cleaned, keyedBy: dataset.ids ? ('id' as const) : ('content' as const) };
  }

  /**
   * The features K-means clusters, rows in the canonical order: the cleaned input for `kmeans`,
   * else the fitted encoders' output.
   */
  private async encode(
    backend: Backend,
    prepared: ReturnType<NeuromorphicClusterer['prepare']>,
    signal: AbortSignal | undefined,
    onProgress: FitOptions['onProgress'],
    clock: PhaseClock,
  ): Promise<{ ordered: Matrix; pipeline: PipelineState | undefined }> {
    const method = this.engine.method;
    const { cleaned, scaler, keys, order, keyedBy } = prepared;
    if (method === 'kmeans') return { ordered: permuteRows(cleaned, order), pipeline: undefined };
    const input = { points: cleaned, series: scaler.series, sampleKeys: keys, signal, onProgress };
    const inputDim = input.series?.dims ?? cleaned.cols;
    const created = { ...createPipeline(method, this.config.encoders, inputDim, this.engine.seed), keyedBy };
    const { state, ordered } = await fitPipeline(
      backend,
      created,
      input,
      this.config.encoders.hybrid.components,
      order,
      (work) => clock.time('reduce', work, 'encode'),
    );
    return { ordered, pipeline: state };
  }

  private async runKMeans(
    backend: Backend,
    points: Matrix,
    k: number,
    signal: AbortSignal | undefined,
    onProgress: FitOptions['onProgress'],
  ): Promise<KMeansFit> {
    const o = this.kmeansOptions;
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
        seed: this.engine.seed,
      },
      { ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}) },
    );
    metrics.kmeansIterations.observe({ algorithm: fit.algorithm }, fit.iterations);
    return fit;
  }

  /**
   * The configured backend; under `auto`, a problem of fewer input values than
   * `engine.smallProblemSize` runs on the plain JS backend.
   */
  private selectBackend(problemSize: number) {
    return this.registry.select(this.engine.backend, this.logger, selectionContext(this.engine, problemSize));
  }

  private fitted() {
    if (!this.model) throw new UsageError('the clusterer is not fitted: call fit() or load() first');
    return this.model;
  }

  /** Labels of new data under the fitted model (same columns, cleaned the same way). */
  predict(data: DataInput, options: { correlationId?: string } = {}): Promise<Int32Array> {
    return this.operation('predict', options.correlationId, async (op) => {
      const model = this.fitted();
      op.method = model.method;
      const clock = new PhaseClock(op.phases);
      const { labels, backend } = await this.predictHere(data, model, clock);
      const { load, validate, encode, cluster, total } = clock.timings();
      this.ops.end(op, 'succeeded', {
        phases: { load, validate, encode, cluster, total },
        backend: backend.name,
        sizes: { rows: labels.length, columns: model.d, k: model.k },
        outcome: 'succeeded',
      });
      return labels;
    });
  }

  private async predictHere(
    data: DataInput,
    model: FittedModel,
    clock: PhaseClock,
  ): Promise<{ labels: Int32Array; backend: Backend }> {
    const dataset = await clock.time('load', () => this.loadData(data));
    const cleaned = await clock.time('validate', async () => applyScaler(dataset, model.scaler));
    const points: Matrix = { rows: dataset.n, cols: cleaned.length / dataset.n, data: cleaned };
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
    return { labels, backend };
  }

  /** Writes the fitted model as a versioned, checksummed file (atomically). */
  save(path: string, options: { correlationId?: string } = {}): Promise<void> {
    return this.operation('save', options.correlationId, async (op) => {
      const model = this.fitted();
      op.method = model.method;
      const clock = new PhaseClock(op.phases);
      try {
        const bytes = await clock.time('persist', () => writeFitted(path, this.config, model, this.logger));
        metrics.modelOperations.inc({ operation: 'save', outcome: 'ok' });
        metrics.modelBytes.observe(bytes);
      } catch (error) {
        metrics.modelOperations.inc({ operation: 'save', outcome: 'error' });
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
   * `options.security`, or the defaults, never what the file stored.
   */
  static async load(
    path: string,
    options: Pick<ClustererOptions, 'logger' | 'registry' | 'backend'> & {
      data?: Partial<DataConfig>;
      security?: ConfigOverrides['security'];
    } = {},
  ): Promise<NeuromorphicClusterer> {
    const security = options.security ?? {};
    const trust = resolveConfig({ security }).security;
    let body: Awaited<ReturnType<typeof readModelFile>>;
    try {
      body = await readModelFile(path, undefined, {
        allowUnauthenticated: trust.allowUnauthenticatedModels,
        maxFileBytes: trust.maxFileBytes,
      });
      metrics.modelOperations.inc({ operation: 'load', outcome: 'ok' });
    } catch (error) {
      metrics.modelOperations.inc({ operation: 'load', outcome: 'error' });
      throw error;
    }
    // What the running configuration governs is never taken from the file: the security section,
    // and the logging one (a stored transport would be a module loaded on the file's say-so).
    const { security: _stored, logging: _logging, ...stored } = body.parameters as ConfigOverrides;
    const { labelColumn: _label, idColumn: _id, ...trainingData } = stored.data ?? {};
    const clusterer = new NeuromorphicClusterer({
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.registry ? { registry: options.registry } : {}),
      config: { ...stored, security, data: { ...trainingData, ...options.data } },
      ...(options.backend ? { backend: options.backend } : {}),
    });
    clusterer.model = fittedFrom(body);
    return clusterer;
  }
}
