/**
 * Metrics: every `neurocluster_*` family the engine exports, in one prom-client registry of its
 * own (never prom-client's global one, so an embedding program's metrics and ours do not collide;
 * merge them with `Registry.merge`). Names follow Prometheus: base units, `_total` counters,
 * `_seconds` histograms. Label values are bounded: backend, kernel, phase, method, category, code,
 * reason and gate names come from fixed lists in the code, never from data or requests.
 *
 * Counters and histograms are fed where things happen (operations, kernels, the resilience layer,
 * the error tracker). Gauges of state (breakers, resources, device memory, the health score) are
 * read when the registry is scraped, from the sources the clusterers register with `watch`.
 */
import { collectDefaultMetrics } from 'prom-client';
import type { BackendObserver } from '../backends/backend.js';
import { metricsEnabled } from '../config/home.js';
import { VERSION } from '../core/version.js';
import { MetricFactory } from './metric-factory.js';

/** Kernel calls: 100 µs to a minute. */
const KERNEL_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];
/** Phases and operations: a millisecond to twenty minutes (the default deadline is ten). */
const JOB_BUCKETS = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200,
];
/** Sizes (rows, bytes): powers of ten. */
const decades = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => 10 ** (from + i));

/** A breaker's state as a number: closed 0, half-open 1, open (or isolated) 2. */
export const BREAKER_STATE_VALUE = { closed: 0, 'half-open': 1, open: 2, isolated: 2 } as const;

/** What the scrape-time gauges read; a clusterer registers its sources with {@link EngineMetrics.watch}. */
export interface MetricSources {
  /** Breakers by key `<backend>|<adapter>` and their state. */
  readonly breakers?: { list(): readonly { key: string; state: keyof typeof BREAKER_STATE_VALUE }[] };
  readonly resources?: {
    sample(): {
      memory: { used: number; total: number; fraction: number; level: string };
      cpu: { fraction: number };
      disk: { used: number; total: number; level: string } | undefined;
      device: { level: string } | undefined;
    };
  };
  /** Device memory of the live GPU backend, when there is one. */
  readonly deviceMemory?: () =>
    | { inUse: number; allocated: number; peak: number; budget: number }
    | undefined;
  /** The latest operations, newest first. */
  readonly operations?: { recent(n: number): readonly { state: string }[] };
  /** Errors within the tracker's window, and the count that raises the error-rate alert. */
  readonly errors?: { counts(): { total: number }; alertThreshold: number };
  /** The service's jobs by state (`neurocluster serve`). */
  readonly jobs?: { counts(): Readonly<Record<string, number>> };
  /**
   * The service's jobs by tenant and state, and how many tenants may be label values (the rest
   * are summed as `other`): only where `metrics.tenantLabels` allows it (cardinality).
   */
  readonly tenantJobs?: {
    byTenant(): Readonly<Record<string, Readonly<Record<string, number>>>>;
    readonly maxTenants: number;
  };
}

/** The parts of the system health score, each in [0, 1]. */
export interface HealthParts {
  /** Of the last 20 finished operations: (succeeded + degraded / 2) / finished; 1 when none. */
  readonly operations: number;
  /** Breakers closed (half-open counts 1/2); 1 when none. */
  readonly breakers: number;
  /** Worst of memory, disk and device memory: ok 1, warning 1/2, critical 0. */
  readonly resources: number;
  /** 1 - errors in the tracker's window / the alert threshold, at least 0. */
  readonly errors: number;
}

/** The weights of {@link healthScore}; they sum to 1. */
export const HEALTH_WEIGHTS: Readonly<HealthParts> = {
  operations: 0.4,
  breakers: 0.2,
  resources: 0.2,
  errors: 0.2,
};

/** `neurocluster_system_health_score`: the weighted mean of the parts, in [0, 1]. */
export function healthScore(parts: HealthParts): number {
  let score = 0;
  for (const key of Object.keys(HEALTH_WEIGHTS) as (keyof HealthParts)[]) {
    score += HEALTH_WEIGHTS[key] * Math.min(1, Math.max(0, parts[key]));
  }
  return score;
}

/** prom-client default metrics whose names break Prometheus naming (gauges ending in _total). */
const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

const LEVEL_SCORE: Record<string, number> = { ok: 1, warning: 0.5, critical: 0 };

export class EngineMetrics extends MetricFactory {
  private readonly sources = new Set<MetricSources>();
  private processMetrics = false;
  /**
   * The parts of the health score read by the gauges collected before it (a registry collects in
   * registration order, and the health score is registered after the breaker and resource gauges).
   */
  private readonly parts = { breakers: 1, resources: 1 };

  // Operations ------------------------------------------------------------------------------------
  readonly operations = this.counter(
    'neurocluster_operations_total',
    'Operations (fit, predict, save) ended, by method, the backend that answered and outcome (succeeded, degraded, failed).',
    ['method', 'backend', 'outcome'],
  );
  readonly operationDuration = this.histogram(
    'neurocluster_operation_duration_seconds',
    'Wall time of operations, from start to end, by kind (fit, predict, save) and outcome.',
    JOB_BUCKETS,
    ['kind', 'outcome'],
  );
  readonly operationsInFlight = this.gauge(
    'neurocluster_operations_in_flight',
    'Operations started and not yet ended, by kind.',
    ['kind'],
  );
  readonly phaseDuration = this.histogram(
    'neurocluster_phase_duration_seconds',
    'Wall time of operation phases: load, validate, encode, reduce, cluster, score, privacy, persist.',
    JOB_BUCKETS,
    ['phase'],
  );
  readonly samplesProcessed = this.counter(
    'neurocluster_samples_processed_total',
    'Rows clustered by fit or labelled by predict.',
  );
  readonly operationRows = this.histogram(
    'neurocluster_operation_rows',
    'Rows per operation, by kind.',
    decades(1, 8),
    ['kind'],
  );
  readonly lastSuccess = this.gauge(
    'neurocluster_last_success_timestamp_seconds',
    'Unix time of the last operation of each kind that succeeded or degraded (for batch-job staleness alerts).',
    ['kind'],
  );

  // Data ------------------------------------------------------------------------------------------
  readonly rowsRead = this.counter(
    'neurocluster_data_rows_read_total',
    'Rows read by the data loaders (dropped ones included), by source (file, memory).',
    ['source'],
  );
  readonly rowsDropped = this.counter(
    'neurocluster_data_rows_dropped_total',
    'Rows dropped by the missing-value policy.',
  );
  readonly columnsDropped = this.counter(
    'neurocluster_data_columns_dropped_total',
    'Constant columns dropped when the scaler was fitted.',
  );

  // Clustering and quality -------------------------------------------------------------------------
  readonly kmeansIterations = this.histogram(
    'neurocluster_kmeans_iterations',
    'Lloyd iterations (mini-batch: steps) of the kept K-means run, by algorithm.',
    [1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 1000],
    ['algorithm'],
  );
  readonly kmeansClusters = this.gauge('neurocluster_kmeans_clusters', 'k of the last fit, by method.', [
    'method',
  ]);
  readonly silhouette = this.gauge(
    'neurocluster_quality_silhouette',
    'Silhouette coefficient (-1 to 1, higher is better) of the last fit, by method.',
    ['method'],
  );
  readonly calinskiHarabasz = this.gauge(
    'neurocluster_quality_calinski_harabasz',
    'Calinski-Harabasz index (higher is better) of the last fit, by method.',
    ['method'],
  );
  readonly daviesBouldin = this.gauge(
    'neurocluster_quality_davies_bouldin',
    'Davies-Bouldin index (lower is better) of the last fit, by method.',
    ['method'],
  );
  readonly inertia = this.gauge(
    'neurocluster_quality_inertia',
    'K-means inertia (sum of squared distances to the centroids) of the last fit, by method.',
    ['method'],
  );
  readonly adjustedRand = this.gauge(
    'neurocluster_quality_adjusted_rand_index',
    'Adjusted Rand index against the ground-truth labels of the last fit that had them, by method.',
    ['method'],
  );
  readonly mutualInfo = this.gauge(
    'neurocluster_quality_normalized_mutual_info',
    'Normalized mutual information against the ground-truth labels of the last fit that had them, by method.',
    ['method'],
  );
  readonly smallestCluster = this.gauge(
    'neurocluster_cluster_smallest_size',
    'Rows in the smallest cluster of the last fit, by method (k-anonymity watches this).',
    ['method'],
  );
  readonly gateFailures = this.counter(
    'neurocluster_quality_gate_failures_total',
    'Quality gates failed, by gate.',
    ['gate'],
  );

  // Kernels and backends --------------------------------------------------------------------------
  readonly kernelDispatches = this.counter(
    'neurocluster_kernel_dispatches_total',
    'Kernel calls, by backend and kernel.',
    ['backend', 'kernel'],
  );
  readonly kernelDuration = this.histogram(
    'neurocluster_kernel_duration_seconds',
    'Host-observed time of kernel calls (WebGPU: submission to readback), by backend and kernel.',
    KERNEL_BUCKETS,
    ['backend', 'kernel'],
  );
  readonly kernelFailures = this.counter(
    'neurocluster_kernel_failures_total',
    'Kernel calls that threw, by backend and kernel.',
    ['backend', 'kernel'],
  );
  readonly kernelSamples = this.counter(
    'neurocluster_kernel_samples_total',
    'Rows (samples, points) passed to kernels, by backend and kernel: rate over duration is throughput.',
    ['backend', 'kernel'],
  );
  readonly backendStarts = this.histogram(
    'neurocluster_backend_start_duration_seconds',
    'Time to start a backend (GPU device request, WASM compile and workers), by backend.',
    KERNEL_BUCKETS,
    ['backend'],
  );
  readonly backendStartFailures = this.counter(
    'neurocluster_backend_start_failures_total',
    'Backends that failed to start, by backend.',
    ['backend'],
  );
  readonly backendSkips = this.counter(
    'neurocluster_backend_skips_total',
    'Backends passed over when acquired for a job (cannot start; under auto also a small problem or a software GPU), by backend.',
    ['backend'],
  );
  readonly degradations = this.counter(
    'neurocluster_backend_degradations_total',
    'Backends given up on under auto after they failed (the next in the degradation order, or the fallback, answered), by backend.',
    ['backend'],
  );

  // Resilience ------------------------------------------------------------------------------------
  readonly fallbacks = this.counter(
    'neurocluster_fallbacks_total',
    'Operations answered by CPU K-means instead of the neuromorphic path, by reason (the error category).',
    ['reason'],
  );
  readonly breakerState = this.gauge(
    'neurocluster_circuit_breaker_state',
    'Circuit breaker state by backend (the worst over its adapters): 0 closed, 1 half-open, 2 open.',
    ['backend'],
    () => this.collectBreakers(),
  );
  readonly breakerTransitions = this.counter(
    'neurocluster_circuit_breaker_transitions_total',
    'Circuit breaker state changes, by backend and the state entered.',
    ['backend', 'state'],
  );
  readonly breakerRejections = this.counter(
    'neurocluster_circuit_breaker_rejections_total',
    'Requests refused by an open circuit breaker, by backend.',
    ['backend'],
  );
  readonly retries = this.counter(
    'neurocluster_retries_total',
    'Retries of a failed attempt on the same backend.',
  );
  readonly retryBackoff = this.histogram(
    'neurocluster_retry_backoff_seconds',
    'Backoff slept before each retry.',
    KERNEL_BUCKETS,
  );
  readonly timeouts = this.counter(
    'neurocluster_timeouts_total',
    'Operations whose neuromorphic path passed its deadline.',
  );
  readonly deviceResets = this.counter(
    'neurocluster_device_resets_total',
    'Backends discarded and started again after their device was lost, by backend.',
    ['backend'],
  );
  readonly memoryReplans = this.counter(
    'neurocluster_memory_replans_total',
    'Attempts run again in smaller chunks after running out of device memory, by backend.',
    ['backend'],
  );
  readonly faultsInjected = this.counter(
    'neurocluster_faults_injected_total',
    'Faults injected by NEUROCLUSTER_FAULT or faults.inject, by kind.',
    ['kind'],
  );

  // Errors ----------------------------------------------------------------------------------------
  readonly errors = this.counter(
    'neurocluster_errors_total',
    'Errors recorded by the error tracker (each once), by category.',
    ['category'],
  );
  readonly errorsByCode = this.counter(
    'neurocluster_errors_by_code_total',
    'Errors recorded by the error tracker (each once), by stable error code.',
    ['code'],
  );
  readonly errorAlerts = this.counter(
    'neurocluster_error_alerts_total',
    'Error-rate alerts raised by the error tracker, by rule.',
    ['rule'],
  );

  // Resources -------------------------------------------------------------------------------------
  readonly deviceMemory = this.gauge(
    'neurocluster_device_memory_bytes',
    'WebGPU buffer pool: bytes in_use, allocated (in use and idle), peak allocated, and the budget.',
    ['state'],
    () => this.collectDeviceMemory(),
  );
  readonly memoryUsed = this.gauge(
    'neurocluster_memory_used_bytes',
    'Resident memory of the process, as the resource monitor reads it.',
    [],
    () => this.collectResources(),
  );
  readonly memoryBudget = this.gauge(
    'neurocluster_memory_budget_bytes',
    'The memory budget jobs are admitted against (monitoring.memoryBudgetMB, or the machine).',
  );
  readonly memoryUtilization = this.gauge(
    'neurocluster_memory_utilization_ratio',
    'Resident memory over the memory budget.',
  );
  readonly cpuUtilization = this.gauge(
    'neurocluster_cpu_utilization_ratio',
    'Share of all cores busy in this process since the previous reading.',
  );
  readonly diskUtilization = this.gauge(
    'neurocluster_disk_utilization_ratio',
    "Share of NEUROCLUSTER_HOME's disk in use.",
  );
  readonly diskFree = this.gauge('neurocluster_disk_free_bytes', "Free bytes on NEUROCLUSTER_HOME's disk.");
  readonly jobMemoryEstimate = this.histogram(
    'neurocluster_job_memory_estimate_bytes',
    'Peak memory estimated for each fit before it starts.',
    decades(5, 12),
  );
  readonly admissions = this.counter(
    'neurocluster_admissions_total',
    'Fits judged by their memory estimate, by verdict (ok, warning, refused).',
    ['verdict'],
  );

  // Performance baselines -------------------------------------------------------------------------
  readonly anomalies = this.counter(
    'neurocluster_performance_anomalies_total',
    'Phases that ran slower than their baseline allows, by phase.',
    ['phase'],
  );

  // Health ----------------------------------------------------------------------------------------
  readonly healthScoreGauge = this.gauge(
    'neurocluster_system_health_score',
    'Health in [0, 1]: 0.4 operations + 0.2 breakers + 0.2 resources + 0.2 errors (see docs/observability.md).',
    [],
    () => this.collectHealth(),
  );
  readonly healthChecks = this.gauge(
    'neurocluster_health_check_status',
    'Last result of each kind of readiness check (backend, breaker, memory, cpu, disk, device-memory, storage): 1 pass, 0.5 warn, 0 fail (the worst of its kind).',
    ['check'],
  );
  readonly healthCheckDuration = this.histogram(
    'neurocluster_health_check_duration_seconds',
    'Time of readiness checks, by kind.',
    KERNEL_BUCKETS,
    ['check'],
  );

  // Models ----------------------------------------------------------------------------------------
  readonly modelOperations = this.counter(
    'neurocluster_model_operations_total',
    'Model files saved or loaded, by operation and outcome (ok, error).',
    ['operation', 'outcome'],
  );
  readonly modelBytes = this.histogram(
    'neurocluster_model_file_bytes',
    'Size of model files written.',
    decades(2, 10),
  );

  // Privacy -----------------------------------------------------------------------------------------
  /** Remaining share of each dataset budget this process charged, for the gauge below. */
  readonly privacyRatios = new Map<string, number>();
  readonly privacyBudgetRemaining = this.gauge(
    'neurocluster_privacy_budget_remaining_ratio',
    'Smallest remaining share of any dataset privacy budget this process has charged (1 when none).',
    [],
    () => this.collectPrivacy(),
  );
  readonly privacySpent = this.gauge(
    'neurocluster_privacy_budget_spent_epsilon',
    'Epsilon spent of a dataset budget (pure plus zCDP converted at its delta), by dataset: the latest 50 this process charged.',
    ['dataset'],
  );
  readonly privacyRemaining = this.gauge(
    'neurocluster_privacy_budget_remaining_epsilon',
    'Epsilon left of a dataset budget, by dataset: the latest 50 this process charged.',
    ['dataset'],
  );
  readonly privacyCharges = this.counter(
    'neurocluster_privacy_charges_total',
    'Privacy budget charges made, by mechanism (laplace, gaussian).',
    ['mechanism'],
  );
  readonly privacyRefusals = this.counter(
    'neurocluster_privacy_refusals_total',
    'Requests refused because they would pass a dataset privacy budget.',
  );

  // Security --------------------------------------------------------------------------------------------
  readonly securityEvents = this.counter(
    'neurocluster_security_events_total',
    'Security anomalies detected, by rule.',
    ['rule'],
  );

  readonly httpRequestDuration = this.histogram(
    'neurocluster_http_request_duration_seconds',
    'HTTP requests to the service, by route (its pattern), method and status.',
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    ['route', 'method', 'status'],
  );
  readonly serviceJobs = this.gauge(
    'neurocluster_service_jobs',
    "The service's jobs by state (in its store).",
    ['state'],
    () => this.collectJobs(),
  );
  readonly serviceTenantJobs = this.gauge(
    'neurocluster_service_tenant_jobs',
    'The service\'s jobs by tenant and state, when metrics.tenantLabels is on: the tenants with the most jobs queued or running, up to metrics.maxTenantLabels, and the rest as tenant="other".',
    ['tenant', 'state'],
    () => this.collectTenantJobs(),
  );
  readonly serviceQueueDepth = this.gauge(
    'neurocluster_service_queue_depth',
    'Jobs accepted by the service and not yet started.',
  );
  readonly serviceJobWait = this.histogram(
    'neurocluster_service_job_wait_seconds',
    'Seconds from a job accepted to its run started.',
    [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800],
  );

  readonly distributedTasks = this.gauge(
    'neurocluster_distributed_tasks',
    "Tasks on the service's BullMQ queue by state (waiting, active, delayed, failed), read at each scrape.",
    ['state'],
  );
  readonly distributedWorkers = this.gauge(
    'neurocluster_distributed_workers',
    'Workers connected to the queue (`neurocluster worker` processes), read at each scrape.',
  );
  readonly distributedRetries = this.counter(
    'neurocluster_distributed_task_retries_total',
    'Tasks started again after their worker died, stalled or lost its thread.',
  );
  readonly distributedStalled = this.counter(
    'neurocluster_distributed_stalled_tasks_total',
    "Tasks whose worker stopped renewing its lock (killed, or its event loop held): BullMQ's stalled check.",
  );

  /** Feeds the kernel and backend-start metrics; every backend registry reports to it. */
  readonly backendObserver: BackendObserver = {
    started: (backend, seconds, ok) => {
      this.backendStarts.observe({ backend }, seconds);
      if (!ok) this.backendStartFailures.inc({ backend });
    },
    skipped: (backend) => this.backendSkips.inc({ backend }),
    kernel: (backend, kernel, seconds, rows, ok) => {
      const labels = { backend, kernel };
      this.kernelDispatches.inc(labels);
      this.kernelDuration.observe(labels, seconds);
      this.kernelSamples.inc(labels, rows);
      if (!ok) this.kernelFailures.inc(labels);
    },
  };

  /**
   * Feeds the resilience metrics: the runtime hands it to the policies, breakers, fault switch and
   * error tracker (src/resilience/events.ts; the same shape, so this module imports nothing of
   * the layer above it).
   */
  readonly resilienceObserver = {
    timeout: () => this.timeouts.inc(),
    fallback: (category: string) => this.fallbacks.inc({ reason: category }),
    breakerRejected: (backend: string) => this.breakerRejections.inc({ backend }),
    degraded: (backend: string) => this.degradations.inc({ backend }),
    retry: (backoffSeconds: number) => {
      this.retries.inc();
      this.retryBackoff.observe(backoffSeconds);
    },
    deviceReset: (backend: string) => this.deviceResets.inc({ backend }),
    memoryReplan: (backend: string) => this.memoryReplans.inc({ backend }),
    faultInjected: (kind: string) => this.faultsInjected.inc({ kind }),
    breakerTransition: (backend: string, state: 'open' | 'half-open' | 'closed') =>
      this.breakerTransitions.inc({ backend, state }),
    error: (category: string, code: string) => {
      this.errors.inc({ category });
      this.errorsByCode.inc({ code });
    },
    alert: (rule: string) => this.errorAlerts.inc({ rule }),
  };

  readonly buildInfo = this.gauge(
    'neurocluster_build_info',
    'Always 1; the labels carry the engine and Node.js versions.',
    ['version', 'node_version'],
  );

  /** `enabled`: false records nothing; by default, what NEUROCLUSTER_METRICS says (see config/home.ts). */
  constructor({ enabled = metricsEnabled() }: { enabled?: boolean } = {}) {
    super(enabled);
    this.buildInfo.set({ version: VERSION, node_version: process.versions.node }, 1);
  }

  /** Adds a clusterer's sources to what the scrape-time gauges read (the same object once). */
  watch(sources: MetricSources): void {
    if (this.enabled) this.sources.add(sources);
  }

  /** Also exports prom-client's default process metrics (`process_*`, `nodejs_*`) from this registry. */
  withProcessMetrics(): this {
    if (!this.processMetrics) {
      collectDefaultMetrics({ register: this.registry });
      // Three of prom-client's are gauges named like counters, which `promtool check metrics`
      // rejects: they are left out (nodejs_active_handles, _requests and _resources).
      for (const misnamed of MISNAMED_DEFAULTS) this.registry.removeSingleMetric(misnamed);
      this.processMetrics = true;
    }
    return this;
  }

  /** The registry in the text exposition format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Every `neurocluster_*` family as a Markdown table (name, type, labels, meaning): the list of
   * metrics in docs/observability.md is this output, and a test keeps the two equal.
   */
  async markdown(): Promise<string> {
    const rows = ['| metric | type | labels | meaning |', '|---|---|---|---|'];
    for (const m of await this.registry.getMetricsAsJSON()) {
      if (!m.name.startsWith('neurocluster_')) continue;
      const labels = (this.registry.getSingleMetric(m.name) as unknown as { labelNames: string[] })
        .labelNames;
      const list = labels.length > 0 ? labels.map((l) => `\`${l}\``).join(', ') : '';
      rows.push(`| \`${m.name}\` | ${m.type} | ${list} | ${m.help.replaceAll('|', '\\|')} |`);
    }
    return `${rows.join('\n')}\n`;
  }

  /** The source of that kind registered last. */
  private latest<K extends keyof MetricSources>(key: K): MetricSources[K] | undefined {
    let found: MetricSources[K] | undefined;
    for (const s of this.sources) if (s[key] !== undefined) found = s[key];
    return found;
  }

  private collectResources(): void {
    const monitor = this.latest('resources');
    if (!monitor) return;
    const r = monitor.sample();
    this.memoryUsed.set(r.memory.used);
    this.memoryBudget.set(r.memory.total);
    this.memoryUtilization.set(r.memory.fraction);
    this.cpuUtilization.set(r.cpu.fraction);
    if (r.disk) {
      this.diskUtilization.set(r.disk.total > 0 ? r.disk.used / r.disk.total : 0);
      this.diskFree.set(r.disk.total - r.disk.used);
    }
    this.parts.resources = Math.min(
      LEVEL_SCORE[r.memory.level] ?? 1,
      LEVEL_SCORE[r.disk?.level ?? 'ok'] ?? 1,
      LEVEL_SCORE[r.device?.level ?? 'ok'] ?? 1,
    );
  }

  private collectPrivacy(): void {
    this.privacyBudgetRemaining.set(Math.min(1, ...this.privacyRatios.values()));
  }

  private collectDeviceMemory(): void {
    this.deviceMemory.reset();
    const read = this.latest('deviceMemory');
    const m = read?.();
    if (!m) return;
    this.deviceMemory.set({ state: 'in_use' }, m.inUse);
    this.deviceMemory.set({ state: 'allocated' }, m.allocated);
    this.deviceMemory.set({ state: 'peak' }, m.peak);
    this.deviceMemory.set({ state: 'budget' }, m.budget);
  }

  /** The breaker gauge, and the breakers' part of the health score. */
  private collectJobs(): void {
    const counts = this.latest('jobs')?.counts();
    if (!counts) return;
    this.serviceJobs.reset();
    for (const [state, n] of Object.entries(counts)) this.serviceJobs.set({ state }, n);
    this.serviceQueueDepth.set(counts.queued ?? 0);
  }

  private collectTenantJobs(): void {
    const source = this.latest('tenantJobs');
    if (!source) return;
    const all = Object.entries(source.byTenant());
    const active = (counts: Readonly<Record<string, number>>) => (counts.queued ?? 0) + (counts.running ?? 0);
    // The busiest tenants by name; the rest, however many, one series per state.
    all.sort(([a, x], [b, y]) => active(y) - active(x) || a.localeCompare(b));
    this.serviceTenantJobs.reset();
    const other: Record<string, number> = {};
    all.forEach(([tenant, counts], i) => {
      for (const [state, n] of Object.entries(counts)) {
        if (i < source.maxTenants) this.serviceTenantJobs.set({ tenant, state }, n);
        else other[state] = (other[state] ?? 0) + n;
      }
    });
    for (const [state, n] of Object.entries(other)) this.serviceTenantJobs.set({ tenant: 'other', state }, n);
  }

  private collectBreakers(): void {
    this.breakerState.reset();
    const book = this.latest('breakers');
    const list = book?.list() ?? [];
    const worst = new Map<string, number>();
    let closed = 0;
    for (const b of list) {
      const value = BREAKER_STATE_VALUE[b.state];
      const backend = b.key.split('|')[0]!;
      worst.set(backend, Math.max(worst.get(backend) ?? 0, value));
      closed += value === 0 ? 1 : value === 1 ? 0.5 : 0;
    }
    for (const [backend, value] of worst) this.breakerState.set({ backend }, value);
    this.parts.breakers = list.length === 0 ? 1 : closed / list.length;
  }

  private collectHealth(): void {
    const recent = (this.latest('operations')?.recent(20) ?? []).filter(
      (o) => o.state === 'succeeded' || o.state === 'degraded' || o.state === 'failed',
    );
    const ops =
      recent.length === 0
        ? 1
        : recent.reduce((s, o) => s + (o.state === 'succeeded' ? 1 : o.state === 'degraded' ? 0.5 : 0), 0) /
          recent.length;
    const tracker = this.latest('errors');
    const errors = tracker ? 1 - tracker.counts().total / Math.max(1, tracker.alertThreshold) : 1;
    this.healthScoreGauge.set(healthScore({ operations: ops, errors, ...this.parts }));
  }
}

/** The process-wide metrics every clusterer, backend and policy of this process feeds. */
export const metrics = new EngineMetrics();
