/**
 * Operation tracking: every fit and predict is an operation with a lifecycle (queued, running,
 * then succeeded, degraded or failed), its phase timings, backend, sizes, quality and outcome.
 * The last `capacity` operations are kept in memory, queryable by correlation ID or as a list.
 *
 * Every operation also feeds the metrics: operations in flight, then at its end its outcome,
 * duration, phase timings and rows.
 */
import { type EngineMetrics, metrics as processMetrics } from './metrics.js';

export type OperationState = 'queued' | 'running' | 'succeeded' | 'degraded' | 'failed';
export type OperationKind = 'fit' | 'predict' | 'save';

export interface OperationRecord {
  /** The operation's correlation ID. */
  readonly id: string;
  readonly kind: OperationKind;
  state: OperationState;
  readonly queuedAt: string;
  startedAt?: string;
  endedAt?: string;
  /** Seconds per phase (load, validate, encode, cluster, score, ...), as far as it got. */
  phases: Record<string, number>;
  method?: string;
  backend?: string;
  sizes?: { rows: number; columns: number; k?: number };
  quality?: { silhouette: number | null; calinskiHarabasz: number | null; daviesBouldin: number | null };
  /** Why it is degraded (the fallback's reason, a failed quality gate) or failed (the error's code). */
  outcome?: string;
  error?: { code: string; message: string };
}

export class OperationTracker {
  private readonly records: OperationRecord[] = [];

  constructor(
    readonly capacity = 100,
    /** Where ended operations are counted and timed. */
    private readonly metrics: EngineMetrics = processMetrics,
  ) {}

  /** A new operation, queued; the oldest is forgotten past `capacity`. */
  begin(id: string, kind: OperationKind): OperationRecord {
    const record: OperationRecord = {
      id,
      kind,
      state: 'queued',
      queuedAt: new Date().toISOString(),
      phases: {},
    };
    this.records.push(record);
    if (this.records.length > this.capacity) this.records.splice(0, this.records.length - this.capacity);
    return record;
  }

  start(record: OperationRecord): void {
    record.state = 'running';
    record.startedAt = new Date().toISOString();
    startedAt.set(record, performance.now());
    this.metrics.operationsInFlight.inc({ kind: record.kind });
  }

  /** Ends an operation: `degraded` when it answered by a fallback or missed a gate. */
  end(
    record: OperationRecord,
    state: 'succeeded' | 'degraded' | 'failed',
    fields: Partial<OperationRecord> = {},
  ): void {
    const wasRunning = record.state === 'running';
    Object.assign(record, fields);
    record.state = state;
    record.endedAt = new Date().toISOString();
    observe(this.metrics, record, wasRunning);
  }

  /** The operation of a correlation ID (the latest, if the ID was reused). */
  get(id: string): OperationRecord | undefined {
    for (let i = this.records.length - 1; i >= 0; i--) if (this.records[i]!.id === id) return this.records[i];
    return undefined;
  }

  /** The last `n` operations, newest first, optionally of one state. */
  recent(n = this.capacity, state?: OperationState): OperationRecord[] {
    const out: OperationRecord[] = [];
    for (let i = this.records.length - 1; i >= 0 && out.length < n; i--) {
      const r = this.records[i]!;
      if (!state || r.state === state) out.push(r);
    }
    return out;
  }
}

/** When each running operation started, on the monotonic clock. */
const startedAt = new WeakMap<OperationRecord, number>();

/** An ended operation in the metrics. */
function observe(metrics: EngineMetrics, record: OperationRecord, wasRunning: boolean): void {
  const { kind, state } = record;
  if (wasRunning) metrics.operationsInFlight.dec({ kind });
  metrics.operations.inc({
    method: record.method ?? 'none',
    backend: record.backend ?? 'none',
    outcome: state,
  });
  const t0 = startedAt.get(record);
  if (t0 !== undefined)
    metrics.operationDuration.observe({ kind, outcome: state }, (performance.now() - t0) / 1000);
  for (const [phase, s] of Object.entries(record.phases)) {
    // A phase the operation did not go through (encode for plain K-means, say) reads 0.
    if (phase !== 'total' && s > 0) metrics.phaseDuration.observe({ phase }, s);
  }
  if (state === 'failed') return;
  const rows = record.sizes?.rows ?? 0;
  if (kind !== 'save') {
    metrics.samplesProcessed.inc(rows);
    metrics.operationRows.observe({ kind }, rows);
  }
  metrics.lastSuccess.set({ kind }, Date.now() / 1000);
}

/** The default runtime's operations (see src/runtime/runtime.ts), counted in the process's `metrics`. */
export const operations = new OperationTracker();
