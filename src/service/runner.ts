/**
 * The in-process worker pool: runs up to `concurrency` jobs at once, oldest first, each a fit of
 * the engine under its own configuration, its progress written to the store as it goes, its
 * result and labels written encrypted to its directory before it is marked `succeeded`.
 *
 * `cancel` stops a running job through its AbortSignal. `drain` stops taking jobs, gives the
 * running ones a grace period, then aborts them without a final state: the next start queues them
 * again, so a job is never lost and never marked failed for a shutdown.
 */
import { join } from 'node:path';
import type { KMeansProgress } from '../cluster/kmeans.js';
import { NeuromorphicClusterer } from '../clusterer.js';
import type { Config } from '../config/schema.js';
import { AbortedError } from '../core/cancel.js';
import { toNeuroclusterError } from '../core/errors.js';
import { labelsCsv } from '../data/labels-file.js';
import type { EncodeProgress } from '../encoders/drive.js';
import { resultPlot } from '../fit/plot.js';
import type { PassProgress } from '../fit/result.js';
import type { Logger } from '../observability/logger.js';
import type { Runtime } from '../runtime/runtime.js';
import { writeEncryptedFile } from '../security/encrypted-files.js';
import type { Keyring } from '../security/keyring.js';
import type { Job, JobProgress, JobStore } from './jobs.js';

export const RESULT_FILE = 'result.json';
export const LABELS_FILE = 'labels.csv';
export const PLOT_FILE = 'plot.svg';
export const MODEL_FILE = 'model.json';

export interface RunnerOptions {
  readonly store: JobStore;
  readonly keyring: Keyring;
  readonly runtime: Runtime;
  readonly logger: Logger;
  readonly concurrency: number;
  /** The configuration a job runs under, given its options (checked when it was accepted). */
  readonly configOf: (job: Job) => Config;
  /** Told when a job starts (the wait metric) and when it reaches its final state (the audit log). */
  readonly onStart?: (job: Job) => void;
  readonly onFinal?: (job: Job) => void;
}

/** Why a running job was stopped: its cancel, or the service's shutdown. */
const SHUTDOWN = new Error('the service is shutting down');

export class JobRunner {
  private readonly running = new Map<string, { abort: AbortController; done: Promise<void> }>();
  private draining = false;

  constructor(private readonly o: RunnerOptions) {}

  /** How many jobs run now. */
  get active(): number {
    return this.running.size;
  }

  /** Queues again the jobs a stopped process left running, then starts taking jobs. */
  start(): number {
    const requeued = this.o.store.requeueInterrupted();
    this.pump();
    return requeued;
  }

  /** Takes queued jobs while there is room. Called when a job is accepted or one ends. */
  pump(): void {
    while (!this.draining && this.running.size < this.o.concurrency) {
      const job = this.o.store.claim();
      if (!job) return;
      this.o.onStart?.(job);
      const abort = new AbortController();
      const done = this.run(job, abort.signal).finally(() => {
        this.running.delete(job.id);
        this.pump();
      });
      this.running.set(job.id, { abort, done });
    }
  }

  /** Cancels a job: a running one through its signal, a queued one at once. False if it had ended. */
  cancel(id: string): boolean {
    const running = this.running.get(id);
    const cancelled = this.o.store.finish(id, 'cancelled', {
      error: { code: 'NEUROCLUSTER_ERR_ABORTED', message: 'cancelled by its caller' },
    });
    running?.abort.abort(new AbortedError('cancelled by its caller'));
    if (cancelled) this.o.onFinal?.(this.o.store.get(id));
    return cancelled;
  }

  /**
   * Stops taking jobs and waits up to `graceMs` for the running ones; those still running then are
   * aborted and left `running` in the store, for the next start to queue again.
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    const all = () => Promise.all([...this.running.values()].map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    const outcome = await Promise.race([all().then(() => 'done' as const), graceOver]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      for (const r of this.running.values()) r.abort.abort(SHUTDOWN);
      await all();
    }
  }

  private async run(job: Job, signal: AbortSignal): Promise<void> {
    const { store, logger } = this.o;
    const log = logger.child({ correlationId: job.correlationId, job: job.id });
    try {
      const config = this.o.configOf(job);
      const clusterer = new NeuromorphicClusterer({ config, logger: log, runtime: this.o.runtime });
      const input = job.input.kind === 'path' ? job.input.path : join(store.dir(job.id), job.input.file);
      const result = await clusterer.fit(input, {
        signal,
        correlationId: job.correlationId,
        onProgress: (event) => {
          const progress = progressOf(event, config);
          if (progress) store.progress(job.id, progress);
        },
      });
      const { labels: _labels, ...summary } = result.toJSON();
      const dir = store.dir(job.id);
      await writeEncryptedFile(join(dir, RESULT_FILE), JSON.stringify(result.toJSON()), this.o.keyring);
      await writeEncryptedFile(join(dir, LABELS_FILE), labelsCsv(result.labels, result.ids), this.o.keyring);
      const plot = await resultPlot(
        result,
        this.o.runtime.registry,
        `job ${job.id}: ${result.method}, k = ${result.k}`,
      );
      await writeEncryptedFile(join(dir, PLOT_FILE), plot, this.o.keyring);
      // The model, for the job's predict route (encrypted as security.encryptModels says).
      await clusterer.save(join(dir, MODEL_FILE), { correlationId: job.correlationId });
      store.progress(job.id, { phase: 'done', done: result.rows, total: result.rows });
      if (store.finish(job.id, 'succeeded', { summary })) this.o.onFinal?.(store.get(job.id));
    } catch (cause) {
      // A shutdown leaves the job running for the next start; a cancel has already ended it.
      if (signal.reason === SHUTDOWN) {
        log.warn('job stopped by the shutdown; it runs again at the next start');
        return;
      }
      const error = toNeuroclusterError(cause);
      if (store.finish(job.id, 'failed', { error: { code: error.code, message: error.message } })) {
        log.warn({ code: error.code }, `job failed: ${error.message}`);
        this.o.onFinal?.(store.get(job.id));
      }
    }
  }
}

/** A fit's progress event as a job's phase, done and total; undefined for events it does not show. */
export function progressOf(
  event: EncodeProgress | KMeansProgress | PassProgress,
  config: Config,
): JobProgress | undefined {
  switch (event.type) {
    case 'encode':
      return { phase: `encode:${event.encoder}`, done: event.done, total: event.total };
    case 'iteration':
      return {
        phase: 'kmeans',
        done: event.run * config.kmeans.maxIter + event.iteration,
        total: config.kmeans.nInit * config.kmeans.maxIter,
      };
    case 'minibatch':
      return { phase: 'kmeans', done: event.step, total: event.steps };
    case 'pass':
      return { phase: `pass:${event.pass}`, done: event.rows, total: event.totalRows ?? 0 };
    default:
      return undefined;
  }
}
