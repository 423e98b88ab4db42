/**
 * What every fit of the process shares: its error trackers, resource monitors and breaker books
 * (one per setting and home), the metrics' view of backend registries, and backend selection.
 */
import type { Backend, BackendRegistry, SelectionContext } from '../backends/backend.js';
import { defaultRegistry } from '../backends/index.js';
import { neuroclusterHome } from '../config/home.js';
import { resolveConfig } from '../config/load.js';
import { type Config, durationMs, type EngineConfig } from '../config/schema.js';
import { sweepHome } from '../core/atomic.js';
import { metrics } from '../observability/metrics.js';
import { operations } from '../observability/operations.js';
import { processProbes, ResourceMonitor } from '../observability/resources.js';
import { BreakerBook, type BreakerSettings, breakerFile } from '../resilience/breakers.js';
import { ErrorTracker } from '../resilience/tracker.js';

/** One error tracker per `errorTracking` setting, shared by every clusterer of the process. */
const trackers = new Map<string, ErrorTracker>();

/**
 * The process-wide error tracker of a configuration: counts over `errorTracking.window`, and an
 * `'alert'` event (rule `error-rate`) when `errorTracking.alertThreshold` errors fall within it.
 */
export function errorTrackerFor(config: Config = resolveConfig()): ErrorTracker {
  const { window, alertThreshold } = config.errorTracking;
  const windowMs = durationMs(window);
  const key = `${windowMs}|${alertThreshold}`;
  let tracker = trackers.get(key);
  if (!tracker) {
    const created = new ErrorTracker({
      windowMs,
      rules: [{ name: 'error-rate', threshold: alertThreshold, windowMs }],
    });
    trackers.set(key, created);
    metrics.watch({ errors: { counts: () => created.counts(), alertThreshold } });
    tracker = created;
  }
  return tracker;
}

/** The resource monitor of a configuration's `monitoring` section (one per settings and home). */
const monitors = new Map<string, ResourceMonitor>();

export function resourceMonitorFor(config: Config, home: string = neuroclusterHome()): ResourceMonitor {
  const m = config.monitoring;
  const key = `${home}\n${JSON.stringify(m)}`;
  let monitor = monitors.get(key);
  if (!monitor) {
    const thresholds = {
      ...m,
      memoryBudgetBytes: m.memoryBudgetMB === undefined ? undefined : m.memoryBudgetMB * 2 ** 20,
    };
    monitor = new ResourceMonitor(
      thresholds,
      home,
      processProbes(() => devicePool(defaultRegistry)),
    );
    monitors.set(key, monitor);
    metrics.watch({ resources: monitor });
  }
  return monitor;
}

/** The device memory a GPU backend reports (see WebGpuBackend.memoryStats). */
interface DeviceMemory {
  readonly used: number;
  readonly total: number;
  readonly allocated: number;
  readonly peak: number;
}

/** Device memory of the WebGPU backend, when it is live in this registry. */
function devicePool(registry: BackendRegistry): DeviceMemory | undefined {
  const gpu = registry.live('webgpu') as (Backend & { memoryStats?(): DeviceMemory }) | undefined;
  return gpu?.memoryStats?.();
}

/** The registries whose backends the metrics see (kernel calls, starts, device memory). */
const observedRegistries = new WeakSet<BackendRegistry>();

/**
 * Lets the metrics see `registry`'s backends, once: every clusterer's registry, and the default
 * one from the CLI's start, which also runs backends without a clusterer (bench, health, score).
 */
export function observeRegistry(registry: BackendRegistry): void {
  if (observedRegistries.has(registry)) return;
  observedRegistries.add(registry);
  if (!metrics.enabled) return;
  registry.observe(metrics.backendObserver);
  metrics.watch({
    deviceMemory: () => {
      const m = devicePool(registry);
      return m && { inUse: m.used, allocated: m.allocated, peak: m.peak, budget: m.total };
    },
  });
}
metrics.watch({ operations });

/** One breaker book per state file and settings, shared by every clusterer of the process. */
const breakerBooks = new Map<string, BreakerBook>();

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

/** The breaker book of a configuration, over `$NEUROCLUSTER_HOME/state/breakers.json`. */
export function breakerBook(config: Config, home: string = neuroclusterHome()): BreakerBook {
  const settings = breakerSettings(config);
  // The engine starts on its home: temporaries of processes killed mid-write go (once).
  sweepHome(home);
  const file = breakerFile(home);
  const key = `${file}\n${JSON.stringify(settings)}`;
  let book = breakerBooks.get(key);
  if (!book) {
    book = new BreakerBook(settings, file);
    breakerBooks.set(key, book);
    metrics.watch({ breakers: book });
  }
  return book;
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
