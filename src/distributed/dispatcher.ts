/**
 * The service's runner when it has a queue (`neurocluster serve --queue redis://...`): each
 * accepted job becomes a task on the BullMQ queue, under the job's id, and `neurocluster worker`
 * processes anywhere take them (src/distributed/worker.ts). The store stays the service's: the
 * queue's events move a job to running, report its progress and bring its outcome; the result it
 * reads from the job's directory, where the worker wrote it encrypted.
 *
 * Nothing is lost when a process stops. A job accepted while Redis was away is put on the queue
 * when it is back (the dispatch is retried). At start and every 30 s a sweep compares every
 * unfinished job with its task ({@link QueueRunner.start}): a job that finished while the service
 * was down, or whose event was lost, takes its state from its task (BullMQ keeps finished tasks for
 * `distributed.keepFinished`), and a task Redis lost is added again. A task is added under its
 * job's id, so adding it again is a no-op. A worker that dies mid-task is BullMQ's stalled case:
 * another worker runs the task.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Queue, QueueEvents, type Job as Task } from 'bullmq';
import { Redis } from 'ioredis';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { type Config, durationMs } from '../config/schema.js';
import { toNeuroclusterError } from '../core/errors.js';
import type { PrivacyCharge } from '../fit/private.js';
import { canonicalPath, isEncryptedFile, writeEncryptedFile } from '../security/encrypted-files.js';
import { fileWrappedWith, readFileDecrypted } from '../security/envelope.js';
import { type Job, LABELS_FILE, MODEL_FILE, PLOT_FILE, prepareJobDir, RESULT_FILE } from '../service/jobs.js';
import {
  finishJob,
  type Runner,
  type RunnerDeps,
  tellListener,
  type WorkersView,
} from '../service/runner.js';
import {
  CHARGE_FILE,
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
import { JobThread, ThreadTaskError } from './thread.js';

type MetricFamilies = MetricObjectWithValues<MetricValue<string>>[];

export interface QueueRunnerOptions extends RunnerDeps {
  /** The queue's Redis (redis:// or rediss://). */
  readonly url: string;
  /** How often the store's unfinished jobs are compared with their tasks (default 30 s). */
  readonly sweepMs?: number;
}

/** How long a failed dispatch (Redis away) waits before the next try. */
const REDISPATCH_MS = 2000;
/** How often the store's unfinished jobs are compared with their tasks. */
const SWEEP_MS = 30_000;
/** States in which a task has not started, so cancelling it removes it from the queue. */
const NOT_STARTED = new Set(['waiting', 'delayed', 'prioritized', 'waiting-children']);

/** BullMQ's lowest priority (the largest number it takes). */
const MAX_PRIORITY = 2_097_152;

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
  private started = false;
  private sweeper: NodeJS.Timeout | undefined;
  /** The thread private jobs' budgets are charged on, once there is one. */
  private charger: JobThread | undefined;

  constructor(private readonly o: QueueRunnerOptions) {
    const d = o.config.distributed;
    const keep = { age: Math.ceil(durationMs(d.keepFinished) / 1000) };
    // Commands fail at once while Redis is away (a scrape, a cancel, a dispatch that is tried
    // again later), rather than wait for it: only the event stream's reader waits.
    this.queue = new Queue(d.queueName, {
      connection: connectionOf(o.url, 'fail-fast'),
      defaultJobOptions: {
        attempts: d.attempts,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: keep,
        removeOnFail: keep,
      },
    });
    this.events = new QueueEvents(d.queueName, { connection: connectionOf(o.url, 'wait') });
    this.publisher = new Redis(o.url, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      lazyConnect: true,
    });
    const complain = (what: string) =>
      connectionErrors((message) => o.logger.error(message), `queue ${redacted(o.url)} (${what})`);
    this.queue.on('error', complain('queue'));
    this.events.on('error', complain('events'));
    this.publisher.on('error', complain('cancellations'));
    // A handler that throws (the store busy or full) loses only its event: the sweep catches up.
    const guarded =
      <A extends unknown[]>(what: string, handler: (...args: A) => unknown) =>
      (...args: A) => {
        try {
          const done = handler(...args);
          if (done instanceof Promise) done.catch((error: Error) => this.failed(what, error));
        } catch (error) {
          this.failed(what, error as Error);
        }
      };
    this.events.on(
      'active',
      guarded('active', ({ jobId }: { jobId: string }) => this.activated(jobId)),
    );
    this.events.on(
      'progress',
      guarded('progress', ({ jobId, data }: { jobId: string; data: unknown }) => {
        if (typeof data === 'object' && data !== null && 'phase' in data)
          o.store.progress(jobId, data as { phase: string; done: number; total: number });
      }),
    );
    this.events.on(
      'completed',
      guarded('completed', ({ jobId, returnvalue }: { jobId: string; returnvalue: unknown }) =>
        this.settle(jobId, outcomeOf(returnvalue)),
      ),
    );
    this.events.on(
      'failed',
      guarded('failed', ({ jobId, failedReason }: { jobId: string; failedReason: string }) =>
        this.lost(jobId, failedReason),
      ),
    );
    this.events.on(
      'removed',
      guarded('removed', ({ jobId }: { jobId: string }) => this.running.delete(jobId)),
    );
    this.events.on(
      'stalled',
      guarded('stalled', ({ jobId }: { jobId: string }) => {
        o.metrics.distributedStalled.inc();
        o.logger.warn({ job: jobId }, "a task's worker stopped renewing its lock: another worker takes it");
      }),
    );
  }

  private failed(what: string, error: Error): void {
    this.o.logger.error(
      `the queue's ${what} event could not be applied: ${error.message} (the next sweep will)`,
    );
  }

  get active(): number {
    return this.running.size;
  }

  /**
   * Connects, then sweeps: every job the store holds unfinished is compared with its task (see
   * {@link sweep}); from then on the jobs accepted are dispatched, and the sweep runs again every
   * {@link SWEEP_MS}, so an event lost (a connection cut, a trimmed stream, a task Redis lost) delays
   * a job's final state, never loses it.
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
    await this.serially(async () => {
      requeued = await this.sweep();
    });
    this.started = true;
    this.sweeper = setInterval(() => {
      void this.serially(() => this.sweep());
    }, this.o.sweepMs ?? SWEEP_MS).unref();
    this.pump();
    return { requeued, abandoned: 0 };
  }

  /** Runs `work` after the dispatches and sweeps before it: they never overlap. */
  private serially(work: () => Promise<unknown>): Promise<void> {
    const next = this.dispatching.then(async () => {
      if (!this.draining) await work();
    });
    this.dispatching = next.catch((error: Error) =>
      this.o.logger.error(`the queue could not be read: ${error.message}; the next sweep tries again`),
    );
    return this.dispatching;
  }

  /**
   * Every job the store holds unfinished, against its task: a task that finished gives the job its
   * state, a running one is followed, and a job whose task is missing (never added, or lost with
   * Redis) is added again. Each job's state is read again just before it is acted on, so a job
   * that finished or was cancelled meanwhile is left alone. Returns how many running jobs were
   * added again.
   */
  private async sweep(): Promise<number> {
    let requeued = 0;
    let after = 0;
    for (let page = this.o.store.unfinished(); page.length > 0; page = this.o.store.unfinished(after)) {
      for (const { seq, job } of page) {
        after = seq;
        const task = await this.queue.getJob(job.id);
        const now = this.current(job.id);
        if (!now) continue;
        if (!task) {
          await this.add(now);
          if (now.state === 'running') requeued++;
        } else await this.adopt(task);
      }
      this.dispatched = Math.max(this.dispatched, after);
    }
    return requeued;
  }

  /** The job as the store has it now, unless it is final (or gone). */
  private current(id: string): Job | undefined {
    try {
      const job = this.o.store.get(id);
      return job.state === 'queued' || job.state === 'running' ? job : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * A private job's budget, charged to the service's own ledger before its task is queued, so
   * that the worker that runs it charges nothing (docs/distributed.md). The charge reads the job's
   * data, so it runs on a thread of its own; it is kept, encrypted, in the job's directory, so a
   * task added again (a sweep, a restart) is not charged again. A refusal fails the job.
   */
  private async charge(job: Job, config: Config, maxRows: number | undefined): Promise<PrivacyCharge> {
    const kept = join(this.o.store.dir(job.id), CHARGE_FILE);
    if (existsSync(kept))
      return JSON.parse(
        (await readFileDecrypted(kept, () => this.o.keyring)).toString('utf8'),
      ) as PrivacyCharge;
    this.charger ??= new JobThread(this.o.logger, this.o.env);
    const charge = await this.charger.charge({
      type: 'charge',
      id: job.id,
      input: this.o.store.inputPath(job),
      config,
      correlationId: job.correlationId,
      tenant: job.tenant,
      maxRows,
    });
    const own = this.o.keyring.forTenant(job.tenant);
    await writeEncryptedFile(kept, JSON.stringify(charge), own, this.o.files);
    return charge;
  }

  /** Puts the jobs accepted since the last dispatch on the queue, oldest first. */
  pump(): void {
    if (this.draining || !this.started) return;
    void this.serially(async () => {
      try {
        for (
          let page = this.o.store.unfinished(this.dispatched);
          page.length > 0 && !this.draining;
          page = this.o.store.unfinished(this.dispatched)
        ) {
          for (const { seq, job } of page) {
            const now = this.current(job.id);
            if (now) await this.add(now);
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
    } catch (error) {
      finishJob(this.o, job.id, 'failed', {
        error: { code: 'NEUROCLUSTER_ERR_CONFIG', message: (error as Error).message },
      });
      return;
    }
    // Workers read the job's input from its directory, as the charge does: a held one goes there first.
    await prepareJobDir(
      this.o.store.dir(job.id),
      this.o.store.inputPath(job),
      this.o.store.held(job.id),
      this.o.files,
    );
    const maxRows = this.o.maxRowsOf(job);
    let privacyCharge: PrivacyCharge | undefined;
    if (config.privacy.epsilon !== undefined) {
      try {
        privacyCharge = await this.charge(job, config, maxRows);
      } catch (cause) {
        // Refused (a spent budget, bad data: the engine's code), or the charge's thread died.
        const { code, message } =
          cause instanceof ThreadTaskError
            ? { code: cause.code, message: cause.reason }
            : toNeuroclusterError(cause);
        finishJob(this.o, job.id, 'failed', { error: { code, message } });
        return;
      }
    }
    const task: TaskData = {
      id: job.id,
      input: this.o.store.inputPath(job),
      dir: this.o.store.dir(job.id),
      config: forTask(config),
      correlationId: job.correlationId,
      tenant: job.tenant,
      ...(maxRows === undefined ? {} : { maxRows }),
      ...(privacyCharge ? { privacyCharge } : {}),
    };
    // Ranked by the job's place in its tenant's line: workers take the lowest first, so tenants
    // take turns (one tenant's thousand tasks do not hold another's one back).
    const priority = Math.min(this.o.store.rank(job), MAX_PRIORITY);
    await this.queue.add(JOB_TASK, task, { jobId: job.id, priority });
    // Cancelled while it was being added: it leaves the queue again.
    if (!this.current(job.id)) await this.withdraw(job.id);
  }

  /** A task found on the queue by a sweep: taken up where it stands. */
  private async adopt(found: Task<TaskData, TaskOutcome>): Promise<void> {
    const id = found.id!;
    const state = await found.getState();
    // `found` was read before its state: a task that finished in between has its answer (or its
    // reason) only in a fresh read, and a stale one would fail a job that succeeded.
    const task =
      state === 'completed' || state === 'failed' ? ((await this.queue.getJob(id)) ?? found) : found;
    if (state === 'completed') await this.settle(id, outcomeOf(task.returnvalue));
    else if (state === 'failed') this.lost(id, task.failedReason);
    // Followed already (a sweep sees a long job many times): not one more start.
    else if (state === 'active' && !this.running.has(id)) this.activated(id);
  }

  private activated(id: string): void {
    // A task of a job cancelled meanwhile: its worker is told (again) to stop it.
    if (!this.current(id)) {
      void this.withdraw(id);
      return;
    }
    const starts = (this.running.get(id) ?? 0) + 1;
    this.running.set(id, starts);
    if (starts > 1) this.o.metrics.distributedRetries.inc();
    if (this.o.store.started(id)) tellListener(this.o, this.o.onStart, id);
  }

  /** A task's answer: the job's final state; its files are added to the record of encrypted files. */
  private async settle(id: string, outcome: TaskOutcome | undefined): Promise<void> {
    this.running.delete(id);
    const dir = this.o.store.dir(id);
    if (!outcome) {
      this.lost(id, 'its worker answered nothing the service can read');
      return;
    }
    if (!this.current(id)) {
      // Cancelled (or settled) meanwhile: its outcome changes nothing.
    } else if (outcome.state === 'failed') {
      // The job's own files are named by what they are, not where the service keeps them.
      const message = outcome.error.message.split(dir).join('<the job>');
      finishJob(this.o, id, 'failed', { error: { code: outcome.error.code, message } });
    } else {
      const summary = await this.summaryOf(id, dir);
      if (!summary) {
        finishJob(this.o, id, 'failed', {
          error: {
            code: 'NEUROCLUSTER_ERR_INTERNAL',
            message:
              "the job ran, but its result cannot be read here: is the job's directory on storage the service and its workers share, and is their keyring the same?",
          },
        });
      } else {
        this.o.store.progress(id, { phase: 'done', done: outcome.rows, total: outcome.rows });
        finishJob(this.o, id, 'succeeded', { summary });
      }
    }
    // The store has the outcome: the task is no longer needed on the queue.
    await (await this.queue.getJob(id))?.remove().catch(() => undefined);
  }

  /**
   * The job's result without its per-row arrays, its files recorded; tried three times a second
   * apart (shared storage may show another machine's new file a moment late). Undefined if unread.
   */
  private async summaryOf(id: string, dir: string): Promise<Record<string, unknown> | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.track(dir);
        const text = await readFileDecrypted(join(dir, RESULT_FILE), () => this.o.keyring);
        const { labels: _labels, ids: _ids, ...summary } = JSON.parse(text.toString('utf8'));
        return summary as Record<string, unknown>;
      } catch (error) {
        if (attempt === 3) {
          this.o.logger.error({ job: id }, `cannot read the job's result: ${(error as Error).message}`);
          return undefined;
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
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
    finishJob(this.o, id, 'failed', {
      error: {
        code: 'NEUROCLUSTER_ERR_INTERNAL',
        message: `its task did not finish on any of ${this.o.config.distributed.attempts} attempt(s): ${reason}`,
      },
    });
  }

  holds(id: string): boolean {
    return this.running.has(id);
  }

  /** Cancels the job now; its task is taken off the queue, or its worker is told to stop it. */
  cancel(id: string): boolean {
    const cancelled = finishJob(this.o, id, 'cancelled', {
      error: { code: 'NEUROCLUSTER_ERR_ABORTED', message: 'cancelled by its caller' },
    });
    void this.withdraw(id);
    return cancelled;
  }

  /**
   * Takes a cancelled job's task off the queue, or, when a worker holds it (or took it as it was
   * being removed), tells the workers to stop it.
   */
  private async withdraw(id: string): Promise<void> {
    try {
      const task = await this.queue.getJob(id);
      if (task && NOT_STARTED.has(await task.getState())) {
        try {
          await task.remove();
          this.running.delete(id);
          return;
        } catch {
          // Taken by a worker meanwhile (locked): it is told to stop.
        }
      }
      if (task) await this.publisher.publish(cancelChannel(this.o.config.distributed.queueName), id);
    } catch (error) {
      this.o.logger.error({ job: id }, `cannot stop the job's task: ${(error as Error).message}`);
    }
  }

  async workers(): Promise<WorkersView> {
    try {
      const [workers, counts] = await bounded(
        Promise.all([this.queue.getWorkers(), this.queue.getJobCounts('active')]),
      );
      const list = workers.map((w) => ({ addr: String(w.addr ?? ''), ageSeconds: Number(w.age ?? 0) }));
      return { where: 'queue', count: list.length, busy: counts.active ?? 0, list };
    } catch (error) {
      this.o.logger.warn(`cannot read the queue's workers: ${(error as Error).message}`);
      return { where: 'queue', count: 0, busy: 0, list: [] };
    }
  }

  /** The queue's tasks by state and its workers, read for this scrape; the workers serve their own metrics. */
  async workerMetrics(): Promise<MetricFamilies[]> {
    const m = this.o.metrics;
    try {
      const [counts, workers] = await bounded(
        Promise.all([
          this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized'),
          this.queue.getWorkersCount(),
        ]),
      );
      m.distributedTasks.reset();
      for (const [state, n] of Object.entries(counts)) m.distributedTasks.set({ state }, n);
      m.distributedWorkers.set(workers);
    } catch (error) {
      this.o.logger.warn(`cannot read the queue's counts: ${(error as Error).message}`);
    }
    return [];
  }

  /**
   * The workers keep running their tasks: the connections close (within a few seconds, Redis away
   * or not), and the next start reads what finished.
   */
  async drain(): Promise<void> {
    this.draining = true;
    clearTimeout(this.redispatch);
    clearInterval(this.sweeper);
    try {
      await bounded(this.dispatching, 5000);
      await this.charger?.terminate();
      await bounded(
        Promise.allSettled([this.events.close(), this.queue.close(), this.publisher.quit()]),
        5000,
      );
    } catch {
      this.publisher.disconnect();
      void Promise.allSettled([this.events.disconnect(), this.queue.disconnect()]);
    }
  }
}

/** `work`, or a rejection after `ms`: a read of the queue that Redis does not answer ends. */
async function bounded<T>(work: Promise<T>, ms = 2000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Redis did not answer in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A job's configuration as its task carries it: without the log transport's options (a sink's
 * credentials may be there, and a task sits in Redis); the worker logs with its own.
 */
function forTask(config: Config): Config {
  const { transport: _transport, ...logging } = config.logging;
  return { ...config, logging };
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
