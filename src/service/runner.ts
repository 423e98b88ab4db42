import { Worker } from 'node:worker_threads';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { EngineMetrics } from '../observability/metrics.js';
import type { EncryptedFileRegistry } from '../security/encrypted-files.js';
import type { Keyring } from '../security/keyring.js';
import type { FromWorker, ToWorker } from './job-thread.js';
import type { Job, JobStore } from './jobs.js';

type MetricFamilies = MetricObjectWithValues<MetricValue<string>>[];

/**
 * What runs the service's jobs: its own pool of worker threads ({@link JobRunner}), or workers on
 * other machines through a queue (src/distributed/dispatcher.ts). The store is the service's alone.
 */
export interface Runner {
  /** Takes the jobs a stopped service left unfinished, and from then on the jobs accepted. */
  start(): Promise<{ requeued: number; abandoned: number }>;
  /** Takes queued jobs. Called when a job is accepted. */
  pump(): void;
  /** Cancels a job: a running one through its signal, a queued one at once. False if it had ended. */
  cancel(id: string): boolean;
  /** Whether a run of the job may still write its files (a cancelled job takes a moment to stop). */
  holds(id: string): boolean;
  /** Who runs the jobs, for the dashboard: this process's threads, or the workers on the queue. */
  workers(): Promise<WorkersView>;
  /** The metrics the runner adds to the service's: its threads' engine metrics, or the queue's. */
  workerMetrics(): Promise<MetricFamilies[]>;
  /** Stops taking jobs; running ones get `graceMs` to finish; the next start takes what is left. */
  drain(graceMs: number): Promise<void>;
}

/** Who runs the jobs: `count` workers (threads here, or processes on the queue), `busy` of them on a job. */
export interface WorkersView {
  readonly where: 'threads' | 'queue';
  readonly count: number;
  readonly busy: number;
  /** The queue's workers: each one's address and how long it has been connected (seconds). */
  readonly list?: readonly { readonly addr: string; readonly ageSeconds: number }[];
}

/** What the service gives the runner it runs its jobs with. */
export interface RunnerDeps {
  readonly store: JobStore;
  /** The service's configuration. */
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: EngineMetrics;
  /** The configuration a job runs under, given its options (checked when it was accepted). */
  readonly configOf: (job: Job) => Config;
  /** The rows a job may read: its tenant's `maxRowsPerJob`, none when unset. */
  readonly maxRowsOf: (job: Job) => number | undefined;
  /** The record of encrypted files of the service's store. */
  readonly files: EncryptedFileRegistry;
  readonly keyring: Keyring;
  /** Told when a job starts (the wait metric) and when it reaches its final state (the audit log). */
  readonly onStart?: (job: Job) => void;
  readonly onFinal?: (job: Job) => void;
  /** The environment of the threads it starts: the service's runtime's (its home, keyring, faults); the process's when absent. */
  readonly env?: NodeJS.ProcessEnv | undefined;
}

export interface RunnerOptions extends RunnerDeps {
  readonly concurrency: number;
}

/**
 * A worker thread's script beside the module at `moduleUrl` (its `import.meta.url`), compiled: run
 * from the sources (the tests), src/<folder>/<file>.ts, the script is taken from the build, dist/src/.
 */
export function threadScript(moduleUrl: string, script: string): URL {
  const compiled = moduleUrl.endsWith('.ts')
    ? new URL(moduleUrl.replace(/\/src\/([^/]+\/[^/]+)\.ts$/, '/dist/src/$1.js'))
    : new URL(moduleUrl);
  return new URL(script, compiled);
}

interface Slot {
  worker: Worker;
  job: string | undefined;
  /** Set when the worker is stopped on purpose (the shutdown): its job is left running. */
  stopping: boolean;
}

export class JobRunner implements Runner {
  private readonly slots: Slot[] = [];
  private draining = false;
  private readonly metricAsks = new MetricAsks();
  private readonly idle = new Set<() => void>();

  constructor(private readonly o: RunnerOptions) {}

  /** How many jobs run now. */
  get active(): number {
    return this.slots.filter((s) => s.job !== undefined).length;
  }

  /** Starts the workers, queues again the jobs a stopped process left running, and takes jobs. */
  async start(): Promise<{ requeued: number; abandoned: number }> {
    const interrupted = this.o.store.requeueInterrupted();
    while (this.slots.length < this.o.concurrency) this.slots.push(this.spawn());
    this.pump();
    return interrupted;
  }

  private spawn(): Slot {
    const slot: Slot = {
      worker: new Worker(
        threadScript(import.meta.url, './job-worker.js'),
        this.o.env ? { env: this.o.env } : {},
      ),
      job: undefined,
      stopping: false,
    };
    slot.worker.on('message', (message: FromWorker) => this.heard(slot, message));
    slot.worker.on('error', (error) => this.lost(slot, error.message));
    slot.worker.on('exit', (code) => this.lost(slot, `its worker thread exited with code ${code}`));
    return slot;
  }

  /** Takes queued jobs while a worker is free. Called when a job is accepted or one ends. */
  pump(): void {
    for (const slot of this.slots) {
      if (this.draining || slot.job !== undefined || slot.stopping) continue;
      const job = this.o.store.claim();
      if (!job) return;
      tellListener(this.o, this.o.onStart, job.id);
      slot.job = job.id;
      let config: Config;
      try {
        config = this.o.configOf(job);
      } catch (error) {
        slot.job = undefined;
        finishJob(this.o, job.id, 'failed', {
          error: { code: 'NEUROCLUSTER_ERR_CONFIG', message: (error as Error).message },
        });
        continue;
      }
      const message: ToWorker = {
        type: 'run',
        id: job.id,
        input: this.o.store.inputPath(job),
        dir: this.o.store.dir(job.id),
        config,
        correlationId: job.correlationId,
        tenant: job.tenant,
        maxRows: this.o.maxRowsOf(job),
        held: this.o.store.held(job.id),
      };
      slot.worker.postMessage(message);
    }
  }

  private heard(slot: Slot, message: FromWorker): void {
    if (message.type === 'metrics') {
      this.metricAsks.answer(message);
      return;
    }
    if (message.type === 'log') {
      relayLog(this.o.logger, message.line);
      return;
    }
    // The service's own pool runs whole jobs, and charges no budget ahead (a queue's service does).
    if (message.id !== slot.job || message.type === 'charged') return;
    if (message.type === 'progress') {
      this.o.store.progress(message.id, message.progress);
      return;
    }
    slot.job = undefined;
    if (message.type === 'done') {
      this.o.store.progress(message.id, { phase: 'done', done: message.rows, total: message.rows });
      finishJob(this.o, message.id, 'succeeded', { summary: message.summary });
    } else {
      // The job's own files are named by what they are, not where the service keeps them.
      const where = this.o.store.dir(message.id);
      const text = message.error.message.split(where).join('<the job>');
      finishJob(this.o, message.id, 'failed', { error: { code: message.error.code, message: text } });
    }
    for (const wake of this.idle) wake();
    this.pump();
  }

  /** A worker that died: its job fails (unless the shutdown stopped it), and a new worker takes its place. */
  private lost(slot: Slot, why: string): void {
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    this.slots.splice(index, 1);
    if (slot.job !== undefined && !slot.stopping) {
      this.o.logger.error({ job: slot.job }, `job failed: ${why}`);
      finishJob(this.o, slot.job, 'failed', {
        error: { code: 'NEUROCLUSTER_ERR_INTERNAL', message: `the job stopped: ${why}` },
      });
    }
    slot.job = undefined;
    for (const wake of this.idle) wake();
    if (!this.draining) {
      this.slots.push(this.spawn());
      this.pump();
    }
  }

  /** Whether a worker still holds the job (a cancelled job's run may take a moment to stop). */
  holds(id: string): boolean {
    return this.slots.some((s) => s.job === id);
  }

  /** Cancels a job: a running one through its signal, a queued one at once. False if it had ended. */
  cancel(id: string): boolean {
    const cancelled = finishJob(this.o, id, 'cancelled', {
      error: { code: 'NEUROCLUSTER_ERR_ABORTED', message: 'cancelled by its caller' },
    });
    const slot = this.slots.find((s) => s.job === id);
    if (slot) slot.worker.postMessage({ type: 'abort', id } satisfies ToWorker);
    return cancelled;
  }

  async workers(): Promise<WorkersView> {
    return { where: 'threads', count: this.slots.length, busy: this.active };
  }

  /** The metrics of every worker's engine (operations, kernels, fallbacks), merged. */
  async workerMetrics(timeoutMs = 2000): Promise<MetricFamilies[]> {
    return Promise.all(this.slots.map((slot) => this.metricAsks.ask(slot.worker, timeoutMs)));
  }

  /**
   * Stops taking jobs and waits up to `graceMs` for the running ones; the workers are then stopped,
   * and the jobs still running are left `running` in the store, for the next start to queue again.
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    const deadline = Date.now() + graceMs;
    while (this.active > 0 && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.idle.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, Math.max(0, deadline - Date.now()));
        this.idle.add(wake);
      });
    }
    for (const slot of this.slots) slot.stopping = true;
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }
}

/** Calls a job listener (the metrics, the audit log): its failure is logged, never the runner's. */
export function tellListener(deps: RunnerDeps, listener: ((job: Job) => void) | undefined, id: string): void {
  try {
    listener?.(deps.store.get(id));
  } catch (error) {
    deps.logger.error({ job: id }, `a job listener failed: ${(error as Error).message}`);
  }
}

/**
 * Moves a job to its final state and, when it moved (it was not final already), tells `onFinal`
 * (its audit record); false when it had ended.
 */
export function finishJob(
  deps: RunnerDeps,
  id: string,
  state: 'succeeded' | 'failed' | 'cancelled',
  outcome: Parameters<JobStore['finish']>[2],
): boolean {
  const moved = deps.store.finish(id, state, outcome);
  if (moved) tellListener(deps, deps.onFinal, id);
  return moved;
}

/**
 * Asks job-worker threads for their engine metrics and matches each answer to its question; an
 * answer that does not come within the timeout counts as none. The service's pool and a queue
 * worker's threads both ask this way.
 */
export class MetricAsks {
  private asks = 0;
  private readonly answers = new Map<number, (metrics: MetricFamilies) => void>();

  ask(worker: Worker, timeoutMs = 2000): Promise<MetricFamilies> {
    return new Promise((resolve) => {
      const ask = ++this.asks;
      const timer = setTimeout(() => {
        this.answers.delete(ask);
        resolve([]);
      }, timeoutMs);
      this.answers.set(ask, (metrics) => {
        clearTimeout(timer);
        this.answers.delete(ask);
        resolve(metrics);
      });
      worker.postMessage({ type: 'metrics', ask } satisfies ToWorker);
    });
  }

  /** A thread's `metrics` answer. */
  answer(message: Extract<FromWorker, { type: 'metrics' }>): void {
    this.answers.get(message.ask)?.(message.metrics as MetricFamilies);
  }
}

/** A worker thread's log line (pino's JSON), written by `logger` (its format, its destination). */
export function relayLog(logger: Logger, line: string): void {
  let record: { level?: number; msg?: string; time?: unknown; name?: unknown; [key: string]: unknown };
  try {
    record = JSON.parse(line);
  } catch {
    logger.warn({}, line.trim());
    return;
  }
  const { level = 30, msg = '', time: _time, name: _name, ...fields } = record;
  const method = level >= 50 ? 'error' : level >= 40 ? 'warn' : level >= 30 ? 'info' : 'debug';
  logger[method](fields, msg);
}

/**
 * The workers' metrics merged with the main thread's into one exposition: counters and histograms
 * add up; a worker's gauges (its build info, its health parts) are its own and are left out.
 */
export async function mergedMetrics(
  main: MetricFamilies,
  workers: readonly MetricFamilies[],
): Promise<string> {
  const additive = workers.map((m) => m.filter((family) => String(family.type) !== 'gauge'));
  return AggregatorRegistry.aggregate([main, ...additive.filter((m) => m.length > 0)]).metrics();
}
