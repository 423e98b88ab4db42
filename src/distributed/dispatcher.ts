/**
 * The service's runner when it has a queue (`neurocluster serve --queue redis://...`): each
 * accepted job becomes a task on the BullMQ queue, under the job's id, and `neurocluster worker`
 * processes anywhere take them (src/distributed/worker.ts). The store stays the service's: the
 * queue's events move a job to running, report its progress and bring its outcome; the result it
 * reads from the job's directory, where the worker wrote it encrypted.
 *
 * Nothing is lost when a process stops. A job accepted while Redis was away is put on the queue
 * when it is back (the dispatch is retried). A job that finished while the service was down is
 * read from the queue at the next start ({@link QueueRunner.start}), where BullMQ keeps finished
 * tasks for `distributed.keepFinished`; a task is added under its job's id, so adding it again is
 * a no-op. A worker that dies mid-task is BullMQ's stalled case: another worker runs the task.
 */
import { join } from 'node:path';
import { Queue, QueueEvents, type Job as Task } from 'bullmq';
import { Redis } from 'ioredis';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { type Config, durationMs } from '../config/schema.js';
import { ConfigError } from '../core/errors.js';
import { canonicalPath, isEncryptedFile } from '../security/encrypted-files.js';
import { fileWrappedWith, readFileDecrypted } from '../security/envelope.js';
import { type Job, type JobStore, LABELS_FILE, MODEL_FILE, PLOT_FILE, RESULT_FILE } from '../service/jobs.js';
import type { Runner, RunnerDeps, WorkersView } from '../service/runner.js';
import {
  cancelChannel,
  connectionErrors,
  connectionOf,
  JOB_TASK,
  reachable,
  readyClient,
  redacted,
  type Task as TaskData,
  type TaskOutcome,
} from './queue.js';

type MetricFamilies = MetricObjectWithValues<MetricValue<string>>[];

export interface QueueRunnerOptions extends RunnerDeps {
  /** The queue's Redis (redis:// or rediss://). */
  readonly url: string;
}

/** How long a failed dispatch (Redis away) waits before the next try. */
const REDISPATCH_MS = 2000;
/** States in which a task has not started, so cancelling it removes it from the queue. */
const NOT_STARTED = new Set(['waiting', 'delayed', 'prioritized', 'waiting-children']);

export class QueueRunner implements Runner {
  private readonly queue: Queue<TaskData, TaskOutcome>;
  private readonly events: QueueEvents;
  private readonly publisher: Redis;
  /** The sequence number of the last job put on the queue. */
  private dispatched = 0;
  private dispatching: Promise<void> = Promise.resolve();
  private redispatch: NodeJS.Timeout | undefined;
  /** Jobs a worker runs now (from the queue's events), and how many times each was started. */
  private readonly running = new Map<string, number>();
  private draining = false;

  constructor(private readonly o: QueueRunnerOptions) {
    const d = o.config.distributed;
    const connection = connectionOf(o.url);
    const keep = { age: Math.ceil(durationMs(d.keepFinished) / 1000) };
    this.queue = new Queue(d.queueName, {
      connection,
      defaultJobOptions: {
        attempts: d.attempts,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: keep,
        removeOnFail: keep,
      },
    });
    this.events = new QueueEvents(d.queueName, { connection });
    this.publisher = new Redis(o.url, { maxRetriesPerRequest: null, lazyConnect: true });
    const complain = (what: string) =>
      connectionErrors((message) => o.logger.error(message), `queue ${redacted(o.url)} (${what})`);
    this.queue.on('error', complain('queue'));
    this.events.on('error', complain('events'));
    this.publisher.on('error', complain('cancellations'));
    this.events.on('active', ({ jobId }) => this.activated(jobId));
    this.events.on('progress', ({ jobId, data }) => {
      if (typeof data === 'object' && data !== null && 'phase' in data)
        o.store.progress(jobId, data as { phase: string; done: number; total: number });
    });
    this.events.on('completed', ({ jobId, returnvalue }) => {
      void this.settle(jobId, outcomeOf(returnvalue));
    });
    this.events.on('failed', ({ jobId, failedReason }) => this.lost(jobId, failedReason));
    this.events.on('stalled', ({ jobId }) => {
      o.metrics.distributedStalled.inc();
      o.logger.warn({ job: jobId }, "a task's worker stopped renewing its lock: another worker takes it");
    });
  }

  get active(): number {
    return this.running.size;
  }

  /**
   * Connects, then settles the jobs a stopped service left unfinished: each is put on the queue
   * again (a no-op for a task still there), and one that finished meanwhile is read from the queue.
   */
  async start(): Promise<{ requeued: number; abandoned: number }> {
    try {
      await reachable(
        Promise.all([this.queue.waitUntilReady(), this.events.waitUntilReady(), readyClient(this.publisher)]),
        this.o.url,
        durationMs(this.o.config.distributed.connectTimeout),
      );
    } catch (error) {
      // Nothing keeps trying in the background: the start failed.
      // (BullMQ's disconnect waits for a connection that never came: it is not awaited.)
      this.publisher.disconnect();
      void Promise.allSettled([this.queue.disconnect(), this.events.disconnect()]);
      throw error;
    }
    let requeued = 0;
    for (
      let page = this.o.store.unfinished();
      page.length > 0;
      page = this.o.store.unfinished(this.dispatched)
    ) {
      for (const { seq, job } of page) {
        const task = await this.queue.getJob(job.id);
        if (!task) {
          await this.add(job);
          if (job.state === 'running') requeued++;
        } else await this.adopt(task);
        this.dispatched = seq;
      }
    }
    this.pump();
    return { requeued, abandoned: 0 };
  }

  /**
   * A differentially private job is refused: its budget would be charged by the ledger of the
   * worker that runs it (its own home), not the service's, so the service could not hold a dataset
   * to its budget.
   */
  refuse(config: Config): void {
    if (config.privacy.epsilon !== undefined)
      throw new ConfigError(
        'options: privacy.epsilon: differentially private jobs are not run through the queue (their budget must be charged by the service): submit them to a service without --queue',
      );
  }

  /** Puts the jobs accepted since the last dispatch on the queue, oldest first. */
  pump(): void {
    if (this.draining) return;
    this.dispatching = this.dispatching.then(async () => {
      try {
        for (
          let page = this.o.store.unfinished(this.dispatched);
          page.length > 0 && !this.draining;
          page = this.o.store.unfinished(this.dispatched)
        ) {
          for (const { seq, job } of page) {
            await this.add(job);
            this.dispatched = seq;
          }
        }
      } catch (error) {
        // Redis away: the jobs stay queued in the store, and go on the queue when it is back.
        this.o.logger.error(`cannot put jobs on the queue: ${(error as Error).message}; trying again`);
        clearTimeout(this.redispatch);
        this.redispatch = setTimeout(() => this.pump(), REDISPATCH_MS);
      }
    });
  }

  /** A job's task on the queue, under the job's id; a job whose configuration fails to resolve fails. */
  private async add(job: Job): Promise<void> {
    let config: Config;
    try {
      config = this.o.configOf(job);
      this.refuse(config);
    } catch (error) {
      this.final(job.id, 'failed', {
        error: { code: 'NEUROCLUSTER_ERR_CONFIG', message: (error as Error).message },
      });
      return;
    }
    const dir = this.o.store.dir(job.id);
    const input = job.input.kind === 'path' ? job.input.path : join(dir, job.input.file);
    const task: TaskData = { id: job.id, input, dir, config, correlationId: job.correlationId };
    await this.queue.add(JOB_TASK, task, { jobId: job.id });
  }

  /** A task found on the queue at start: taken up where it stands. */
  private async adopt(task: Task<TaskData, TaskOutcome>): Promise<void> {
    const state = await task.getState();
    if (state === 'completed') await this.settle(task.id!, outcomeOf(task.returnvalue));
    else if (state === 'failed') this.lost(task.id!, task.failedReason);
    else if (state === 'active') this.activated(task.id!);
  }

  private activated(id: string): void {
    const starts = (this.running.get(id) ?? 0) + 1;
    this.running.set(id, starts);
    if (starts > 1) this.o.metrics.distributedRetries.inc();
    if (this.o.store.started(id)) this.tell(this.o.onStart, id);
  }

  /** A task's answer: the job's final state; its files are added to the record of encrypted files. */
  private async settle(id: string, outcome: TaskOutcome | undefined): Promise<void> {
    this.running.delete(id);
    const dir = this.o.store.dir(id);
    if (!outcome) {
      this.lost(id, 'its worker answered nothing the service can read');
      return;
    }
    if (outcome.state === 'failed') {
      // The job's own files are named by what they are, not where the service keeps them.
      const message = outcome.error.message.split(dir).join('<the job>');
      this.final(id, 'failed', { error: { code: outcome.error.code, message } });
    } else {
      let summary: Record<string, unknown>;
      try {
        await this.track(dir);
        const text = await readFileDecrypted(join(dir, RESULT_FILE), () => this.o.keyring);
        const { labels: _labels, ids: _ids, ...rest } = JSON.parse(text.toString('utf8'));
        summary = rest;
      } catch (error) {
        this.o.logger.error({ job: id }, `cannot read the job's result: ${(error as Error).message}`);
        this.final(id, 'failed', {
          error: {
            code: 'NEUROCLUSTER_ERR_INTERNAL',
            message:
              "the job ran, but its result cannot be read here: is the job's directory on storage the service and its workers share?",
          },
        });
        return;
      }
      this.o.store.progress(id, { phase: 'done', done: outcome.rows, total: outcome.rows });
      this.final(id, 'succeeded', { summary });
    }
    // The store has the outcome: the task is no longer needed on the queue.
    await (await this.queue.getJob(id))?.remove().catch(() => undefined);
  }

  /** Records the encrypted files a worker wrote in the job's directory (for `keys rotate` and `retire`). */
  private async track(dir: string): Promise<void> {
    for (const file of [RESULT_FILE, LABELS_FILE, PLOT_FILE, MODEL_FILE]) {
      const path = await canonicalPath(join(dir, file));
      if (await isEncryptedFile(path)) this.o.files.track(path, await fileWrappedWith(path));
    }
  }

  /** A task that failed on every attempt (its workers died or stalled each time). */
  private lost(id: string, reason: string): void {
    this.running.delete(id);
    this.final(id, 'failed', {
      error: {
        code: 'NEUROCLUSTER_ERR_INTERNAL',
        message: `its task did not finish on any of ${this.o.config.distributed.attempts} attempt(s): ${reason}`,
      },
    });
  }

  private final(id: string, state: 'succeeded' | 'failed', outcome: Parameters<JobStore['finish']>[2]): void {
    if (this.o.store.finish(id, state, outcome)) this.tell(this.o.onFinal, id);
  }

  private tell(listener: ((job: Job) => void) | undefined, id: string): void {
    try {
      listener?.(this.o.store.get(id));
    } catch (error) {
      this.o.logger.error({ job: id }, `a job listener failed: ${(error as Error).message}`);
    }
  }

  holds(id: string): boolean {
    return this.running.has(id);
  }

  /** Cancels the job now; its task is taken off the queue, or its worker is told to stop it. */
  cancel(id: string): boolean {
    const cancelled = this.o.store.finish(id, 'cancelled', {
      error: { code: 'NEUROCLUSTER_ERR_ABORTED', message: 'cancelled by its caller' },
    });
    if (cancelled) this.tell(this.o.onFinal, id);
    void (async () => {
      const task = await this.queue.getJob(id);
      if (task && NOT_STARTED.has(await task.getState())) await task.remove();
      else await this.publisher.publish(cancelChannel(this.o.config.distributed.queueName), id);
    })().catch((error: Error) =>
      this.o.logger.error({ job: id }, `cannot stop the job's task: ${error.message}`),
    );
    return cancelled;
  }

  async workers(): Promise<WorkersView> {
    const list = (await this.queue.getWorkers()).map((w) => ({
      addr: String(w.addr ?? ''),
      ageSeconds: Number(w.age ?? 0),
    }));
    const busy = (await this.queue.getJobCounts('active')).active ?? 0;
    return { where: 'queue', count: list.length, busy, list };
  }

  /** The queue's tasks by state and its workers, read for this scrape; the workers serve their own metrics. */
  async workerMetrics(): Promise<MetricFamilies[]> {
    const m = this.o.metrics;
    try {
      const counts = await this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized');
      m.distributedTasks.reset();
      for (const [state, n] of Object.entries(counts)) m.distributedTasks.set({ state }, n);
      m.distributedWorkers.set(await this.queue.getWorkersCount());
    } catch (error) {
      this.o.logger.warn(`cannot read the queue's counts: ${(error as Error).message}`);
    }
    return [];
  }

  /** The workers keep running their tasks: the connections close, and the next start reads what finished. */
  async drain(): Promise<void> {
    this.draining = true;
    clearTimeout(this.redispatch);
    await this.dispatching;
    await Promise.allSettled([this.events.close(), this.queue.close(), this.publisher.quit()]);
  }
}

/** A task's answer as the queue gives it back (BullMQ may hand it over as its JSON text). */
function outcomeOf(value: unknown): TaskOutcome | undefined {
  const parsed = typeof value === 'string' ? safeJson(value) : value;
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const state = (parsed as { state?: unknown }).state;
  return state === 'succeeded' || state === 'failed' ? (parsed as TaskOutcome) : undefined;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
