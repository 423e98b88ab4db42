/**
 * The runtime: the composition root that owns what a process's fits share. Its backend registry,
 * metrics and operation log; its error trackers and resource monitors (one per setting); its
 * breaker books and privacy accountants (one per state file of its home); the environment its
 * configuration reads. Everything is made on first use, so importing the engine starts nothing.
 *
 * The CLI makes one per process ({@link defaultRuntime}, closed when the command ends). A library
 * user may make several with {@link createRuntime}: each has its own registry (so its own
 * backends and devices), metrics and trackers; `new NeuromorphicClusterer({ runtime })` runs on
 * one, and on the default runtime when given none, so the API without one keeps working.
 *
 * Files are the state shared across processes: two runtimes over one home share its breaker
 * states, privacy ledger and audit log exactly as two processes do (and within one process, one
 * open store and one accountant per ledger file: see security/privacy/api.ts).
 */

import type { Backend, BackendRegistry, SelectionContext } from '../backends/backend.js';
import { createBackendRegistry, defaultRegistry } from '../backends/index.js';
import { parseFault } from '../config/faults.js';
import { metricsEnabled, neuroclusterHome } from '../config/home.js';
import { environmentDefaults } from '../config/levels.js';
import { type Layer, resolveConfig } from '../config/load.js';
import { type Config, type ConfigOverrides, durationMs, type EngineConfig } from '../config/schema.js';
import { sweepHome } from '../core/atomic.js';
import { EngineMetrics, metrics as processMetrics } from '../observability/metrics.js';
import { OperationTracker, operations as processOperations } from '../observability/operations.js';
import { processProbes, ResourceMonitor } from '../observability/resources.js';
import { BreakerBook, type BreakerSettings, breakerFile } from '../resilience/breakers.js';
import { Resilience, type ResilienceDeps } from '../resilience/policy.js';
import { ErrorTracker } from '../resilience/tracker.js';
import { Keyring } from '../security/keyring.js';
import type { PrivacyAccountant } from '../security/privacy/accountant.js';
import { privacyAccountant } from '../security/privacy/api.js';
import { recordProcessRuntime } from './process.js';

export interface RuntimeOptions {
  /**
   * The environment its configuration reads (`NEUROCLUSTER_HOME`, `NEUROCLUSTER_WASM_THREADS`,
   * `NEUROCLUSTER_METRICS`...); the process's by default, read by src/config as it is needed.
   */
  readonly env?: NodeJS.ProcessEnv;
  /** Options every clusterer of this runtime starts from, under the clusterer's own. */
  readonly config?: ConfigOverrides;
  /** Its backends; a registry of its own with webgpu, wasm and js by default. */
  readonly registry?: BackendRegistry;
  /** Its metrics; its own by default (on unless its environment says NEUROCLUSTER_METRICS=off). */
  readonly metrics?: EngineMetrics;
  /** Where its operations are logged; its own by default. */
  readonly operations?: OperationTracker;
}

/** The breaker settings of a configuration's `circuitBreaker` section, durations in ms. */
export function breakerSettings(config: Config = resolveConfig()): BreakerSettings {
  const cb = config.circuitBreaker;
  return {
    enabled: cb.enabled,
    failureThreshold: cb.failureThreshold,
    recoveryTimeoutMs: durationMs(cb.recoveryTimeout),
    strategy: cb.strategy,
    samplingWindowMs: durationMs(cb.samplingWindow),
    failureRatio: cb.failureRatio,
    minimumRequests: cb.minimumRequests,
  };
}

/** What backend selection needs from the engine settings, for a job of `problemSize` input values. */
export function selectionContext(engine: EngineConfig, problemSize: number): SelectionContext {
  const { webgpu } = engine;
  return {
    problemSize,
    smallProblemSize: engine.smallProblemSize,
    options: {
      wasm: { threads: engine.wasm.threads },
      webgpu: {
        adapter: webgpu.adapter,
        allowSoftware: webgpu.allowSoftware,
        memoryBudgetBytes:
          webgpu.memoryBudgetMB === undefined ? undefined : webgpu.memoryBudgetMB * 1024 * 1024,
      },
    },
  };
}

/** The device memory a GPU backend reports (see WebGpuBackend.memoryStats). */
interface DeviceMemory {
  readonly used: number;
  readonly total: number;
  readonly allocated: number;
  readonly peak: number;
}

/** Device memory of the WebGPU backend, when it is live in `registry`. */
function devicePool(registry: BackendRegistry): DeviceMemory | undefined {
  const gpu = registry.live('webgpu') as (Backend & { memoryStats?(): DeviceMemory }) | undefined;
  return gpu?.memoryStats?.();
}

export class Runtime {
  readonly registry: BackendRegistry;
  readonly metrics: EngineMetrics;
  readonly operations: OperationTracker;
  private readonly env: NodeJS.ProcessEnv | undefined;
  private readonly overrides: ConfigOverrides | undefined;
  private readonly trackers = new Map<string, ErrorTracker>();
  private readonly monitors = new Map<string, ResourceMonitor>();
  private readonly books = new Map<string, BreakerBook>();
  private readonly observed = new WeakSet<BackendRegistry>();

  constructor(options: RuntimeOptions = {}) {
    this.env = options.env;
    this.overrides = options.config;
    this.registry = options.registry ?? createBackendRegistry();
    this.metrics = options.metrics ?? new EngineMetrics({ enabled: metricsEnabled(this.env) });
    this.operations = options.operations ?? new OperationTracker(100, this.metrics);
    this.metrics.watch({ operations: this.operations });
    this.observe(this.registry);
  }

  /**
   * Lets its metrics see `registry`'s backends (kernel calls, starts, device memory), once: its
   * own, and one a clusterer of it was given in place of its own.
   */
  observe(registry: BackendRegistry): void {
    if (this.observed.has(registry)) return;
    this.observed.add(registry);
    if (!this.metrics.enabled) return;
    registry.observe(this.metrics.backendObserver);
    this.metrics.watch({
      deviceMemory: () => {
        const m = devicePool(registry);
        return m && { inUse: m.used, allocated: m.allocated, peak: m.peak, budget: m.total };
      },
    });
  }

  /** The environment it was given; undefined when it reads the process's. */
  environment(): NodeJS.ProcessEnv | undefined {
    return this.env;
  }

  /** `$NEUROCLUSTER_HOME` of its environment (read each time: a test may move it). */
  get home(): string {
    return neuroclusterHome(this.env);
  }

  /**
   * The layers a clusterer's configuration starts from: the short environment aliases
   * (NEUROCLUSTER_WASM_THREADS, NEUROCLUSTER_FAULT...) of its environment, then its `config`.
   */
  configLayers(): Layer[] {
    return [environmentDefaults(this.env), this.overrides];
  }

  /**
   * The error tracker of a configuration's `errorTracking`: counts over its window, and an
   * `'alert'` event (rule `error-rate`) when `alertThreshold` errors fall within it.
   */
  errorTracker(config: Config): ErrorTracker {
    const { window, alertThreshold } = config.errorTracking;
    const windowMs = durationMs(window);
    const key = `${windowMs}|${alertThreshold}`;
    let tracker = this.trackers.get(key);
    if (!tracker) {
      const created = new ErrorTracker({
        windowMs,
        rules: [{ name: 'error-rate', threshold: alertThreshold, windowMs }],
        observer: this.metrics.resilienceObserver,
      });
      this.trackers.set(key, created);
      this.metrics.watch({ errors: { counts: () => created.counts(), alertThreshold } });
      tracker = created;
    }
    return tracker;
  }

  /** The resource monitor of a configuration's `monitoring` section over its home's disk. */
  resourceMonitor(config: Config): ResourceMonitor {
    const m = config.monitoring;
    const home = this.home;
    const key = `${home}\n${JSON.stringify(m)}`;
    let monitor = this.monitors.get(key);
    if (!monitor) {
      const thresholds = {
        ...m,
        memoryBudgetBytes: m.memoryBudgetMB === undefined ? undefined : m.memoryBudgetMB * 2 ** 20,
      };
      // Device memory is this runtime's GPU's, not another registry's.
      monitor = new ResourceMonitor(
        thresholds,
        home,
        processProbes(() => devicePool(this.registry)),
      );
      this.monitors.set(key, monitor);
      this.metrics.watch({ resources: monitor });
    }
    return monitor;
  }

  /** The breaker book of a configuration, over `$NEUROCLUSTER_HOME/state/breakers.json`. */
  breakers(config: Config): BreakerBook {
    const settings = breakerSettings(config);
    const home = this.home;
    // The engine starts on its home: temporaries of processes killed mid-write go (once).
    sweepHome(home);
    const file = breakerFile(home);
    const key = `${file}\n${JSON.stringify(settings)}`;
    let book = this.books.get(key);
    if (!book) {
      book = new BreakerBook(settings, file, Date.now, this.metrics.resilienceObserver);
      this.books.set(key, book);
      this.metrics.watch({ breakers: book });
    }
    return book;
  }

  /**
   * The privacy accountant of its home's ledger with the configuration's default budget (one per
   * ledger file in the process: the budget spent is the file's, whoever spends it).
   */
  privacyAccountant(config: Config): PrivacyAccountant {
    return privacyAccountant(config, this.home);
  }

  /**
   * The keyring of its environment: NEUROCLUSTER_KEYRING_JSON, NEUROCLUSTER_KEYRING, else the
   * home's (made on first use); `warn` hears about a keyring file that is too open.
   */
  keyring(warn?: (message: string) => void): Keyring {
    return Keyring.open({ ...(this.env ? { env: this.env } : {}), ...(warn ? { warn } : {}) });
  }

  /** The resilience layer for a job of `problemSize` input values under `config`. */
  resilience(
    config: Config,
    problemSize: number,
    deps: Pick<ResilienceDeps, 'logger'> & { tracker?: ErrorTracker; registry?: BackendRegistry },
  ): Resilience {
    const c = config;
    return new Resilience(
      {
        timeoutMs: durationMs(c.timeout),
        retry: {
          maxRetries: c.retry.maxRetries,
          baseDelayMs: durationMs(c.retry.baseDelay),
          maxDelayMs: durationMs(c.retry.maxDelay),
        },
        fallback: { enabled: c.fallback.enabled, degradeOrder: c.fallback.degradeOrder },
        fault: parseFault(c.faults.inject),
      },
      {
        registry: deps.registry ?? this.registry,
        breakers: this.breakers(c),
        tracker: deps.tracker ?? this.errorTracker(c),
        logger: deps.logger,
        selection: selectionContext(c.engine, problemSize),
        observer: this.metrics.resilienceObserver,
      },
    );
  }

  /** Stops its backends (workers, devices). The runtime may be used again: they start on demand. */
  async close(): Promise<void> {
    await this.registry.disposeAll();
  }
}

/** A runtime of its own: its backends, metrics, trackers, and the environment it is given. */
export function createRuntime(options: RuntimeOptions = {}): Runtime {
  return new Runtime(options);
}

let processRuntime: Runtime | undefined;

/** The default runtime's error tracker of a configuration (see {@link Runtime.errorTracker}). */
export function errorTrackerFor(config: Config = resolveConfig()): ErrorTracker {
  return defaultRuntime().errorTracker(config);
}

/**
 * The process's runtime, made on first use: the process's environment, the exported
 * `defaultRegistry`, `metrics` and `operations`. What a clusterer made without a runtime, and the
 * CLI, run on.
 */
export function defaultRuntime(): Runtime {
  if (!processRuntime) {
    processRuntime = new Runtime({
      registry: defaultRegistry,
      metrics: processMetrics,
      operations: processOperations,
    });
    recordProcessRuntime(processRuntime);
  }
  return processRuntime;
}
