/**
 * `neurocluster worker`: takes tasks from the service's BullMQ queue and runs each in a thread of
 * its own (src/distributed/thread.ts), `concurrency` at a time. BullMQ holds a lock on each task
 * while it runs and renews it; a worker killed mid-task stops renewing, and the stalled check of
 * any worker gives the task to another (up to `distributed.maxStalledCount` times). A task runs the
 * whole job and writes its files to the job's directory, so running it again overwrites them with
 * the same result: a task is idempotent.
 *
 * The service asks a running task to stop on a Redis channel (cancelChannel): the task's fit is
 * aborted through its signal. SIGTERM: no new tasks; running ones finish, then the process exits.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { type Config, durationMs } from '../config/schema.js';
import { AbortedError } from '../core/cancel.js';
import type { Logger } from '../observability/logger.js';
import type { EngineMetrics } from '../observability/metrics.js';
import { mergedMetrics } from '../service/runner.js';
import {
  cancelChannel,
  connectionErrors,
  connectionOf,
  reachable,
  readTask,
  readyClient,
  redacted,
  type Task,
  type TaskOutcome,
} from './queue.js';
import { type RangeAnswer, type RangeTask, readRangeTask } from './range-task.js';
import { rangeQueueName } from './split.js';
import { JobThread, ThreadTaskError } from './thread.js';

type MetricFamilies = MetricObjectWithValues<MetricValue<string>>[];

export interface QueueWorkerOptions {
  readonly url: string;
  /** The worker's configuration: its `distributed` section (the queue, the locks). */
  readonly config: Config;
  readonly concurrency: number;
  /** The backend every task runs on here (a GPU machine's), instead of the job's `engine.backend`. */
  readonly backend?: Config['engine']['backend'] | undefined;
  readonly logger: Logger;
  /** The process's metrics: served on `metricsPort` with its threads' engine metrics. */
  readonly metrics: EngineMetrics;
  /** The threads' environment (the keyring, NEUROCLUSTER_FAULT...); the process's when absent. */
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** A port for `GET /metrics` (0: any free one); no server when absent. */
  readonly metricsPort?: number | undefined;
  readonly metricsHost?: string | undefined;
}

export interface QueueWorker {
  /** Where its metrics are served, when they are. */
  readonly metricsUrl: string | undefined;
  /** Settles if the worker stops taking tasks on its own (a failure): why. */
  readonly failed: Promise<Error>;
  /** Stops taking tasks, lets the running ones finish, closes the connections. */
  close(): Promise<void>;
}

export async function startQueueWorker(o: QueueWorkerOptions): Promise<QueueWorker> {
  const d = o.config.distributed;
  const idle: JobThread[] = [];
  const threads = new Set<JobThread>();
  const connection = connectionOf(o.url, 'wait');

  // Three parameters: BullMQ makes the abort signal (worker.cancelJob) for a processor that takes it.
  const processor = async (
    job: Job<Task, TaskOutcome>,
    _token?: string,
    signal?: AbortSignal,
  ): Promise<TaskOutcome> => {
    let checked: Task;
    try {
      checked = readTask(job.data);
    } catch (error) {
      o.logger.error({ job: job.id }, (error as Error).message);
      return {
        state: 'failed',
        error: { code: 'NEUROCLUSTER_ERR_CONFIG', message: (error as Error).message },
      };
    }
    const task = o.backend
      ? {
          ...checked,
          config: { ...checked.config, engine: { ...checked.config.engine, backend: o.backend } },
        }
      : checked;
    const log = o.logger.child({
      correlationId: task.correlationId,
      job: task.id,
      tenant: task.tenant,
      attempt: job.attemptsStarted,
    });
    const thread = idle.pop() ?? new JobThread(o.logger, o.env);
    threads.add(thread);
    log.info(`task started (${job.attemptsStarted > 1 ? `attempt ${job.attemptsStarted}` : 'first run'})`);
    const progress = throttledProgress(job);
    try {
      const outcome = await thread.run(task, progress.report, signal, o.url);
      progress.stop();
      log.info(`task ended: ${outcome.state}${outcome.state === 'failed' ? ` (${outcome.error.code})` : ''}`);
      return outcome;
    } catch (error) {
      progress.stop();
      // A cancelled job whose thread died as it stopped is not run again.
      if (signal?.aborted) return aborted;
      // Its thread died: BullMQ runs the task again while attempts remain.
      log.error(`task lost its thread: ${(error as Error).message}`);
      throw error;
    } finally {
      idle.push(thread);
    }
  };

  // The range tasks of split jobs (src/distributed/split.ts), in threads of their own: a thread
  // that coordinates a job waits on range tasks that this worker may be the one to run.
  const idleRanges: JobThread[] = [];
  const rangeProcessor = async (
    task: Job<RangeTask, RangeAnswer>,
    _token?: string,
    signal?: AbortSignal,
  ): Promise<RangeAnswer> => {
    let checked: RangeTask;
    try {
      checked = readRangeTask(task.data);
    } catch (error) {
      throw new UnrecoverableError(`NEUROCLUSTER_ERR_CONFIG: ${(error as Error).message}`);
    }
    const log = o.logger.child({
      correlationId: checked.correlationId,
      job: checked.job,
      range: checked.range.index,
      stage: checked.stage,
      attempt: task.attemptsStarted,
    });
    const thread = idleRanges.pop() ?? new JobThread(o.logger, o.env);
    threads.add(thread);
    log.debug(`range task started: ${checked.stage} of range ${checked.range.index}`);
    try {
      const answer = await thread.range(task.id!, checked, signal);
      log.debug('range task ended');
      return answer;
    } catch (error) {
      // Failed on its data or options: for good, with the engine's code for the coordinator.
      if (error instanceof ThreadTaskError) {
        log.warn(`range task failed: ${error.message}`);
        throw new UnrecoverableError(error.message);
      }
      log.error(`range task lost its thread: ${(error as Error).message}`);
      throw error;
    } finally {
      idleRanges.push(thread);
    }
  };

  const settings = {
    connection,
    concurrency: o.concurrency,
    lockDuration: durationMs(d.lockDuration),
    stalledInterval: durationMs(d.stalledInterval),
    maxStalledCount: d.maxStalledCount,
    autorun: false,
  };
  const worker = new Worker<Task, TaskOutcome>(d.queueName, processor, settings);
  const ranges = new Worker<RangeTask, RangeAnswer>(rangeQueueName(d.queueName), rangeProcessor, settings);
  worker.on(
    'error',
    connectionErrors((message) => o.logger.error(message), `queue ${redacted(o.url)}`),
  );
  ranges.on(
    'error',
    connectionErrors((message) => o.logger.error(message), `queue ${redacted(o.url)} (ranges)`),
  );
  for (const w of [worker, ranges]) {
    // A task whose lock could not be renewed (Redis away past lockDuration) is another worker's now:
    // this one stops it rather than run it twice at once.
    w.on('lockRenewalFailed', (ids) => {
      for (const id of ids)
        if (w.cancelJob(id, 'its lock was lost: another worker runs it'))
          o.logger.warn({ task: id }, 'task stopped: its lock was lost, another worker runs it');
    });
    w.on('stalled', (id) => {
      o.metrics.distributedStalled.inc();
      o.logger.warn({ task: id }, 'a stalled task was given back to the queue');
    });
  }

  // Cancellations from the service: the task's signal is aborted where it runs.
  const subscriber = new Redis(o.url, { maxRetriesPerRequest: null, lazyConnect: true });
  subscriber.on(
    'error',
    connectionErrors((message) => o.logger.error(message), `queue ${redacted(o.url)} (cancellations)`),
  );
  subscriber.on('message', (_channel, id: string) => {
    if (worker.cancelJob(id, new AbortedError('cancelled by its caller').message))
      o.logger.warn({ job: id }, 'task cancelled by its caller');
  });
  try {
    await reachable(
      (async () => {
        await readyClient(subscriber);
        await subscriber.subscribe(cancelChannel(d.queueName));
        await worker.waitUntilReady();
        await ranges.waitUntilReady();
      })(),
      o.url,
      durationMs(d.connectTimeout),
    );
  } catch (error) {
    // Nothing keeps trying in the background: the start failed.
    // (BullMQ's disconnect waits for a connection that never came: it is not awaited.)
    subscriber.disconnect();
    worker.disconnect().catch(() => undefined);
    ranges.disconnect().catch(() => undefined);
    throw error;
  }
  // A worker that stops taking tasks ends the process (non-zero), for its supervisor to restart it.
  const stopped = Promise.race([worker.run(), ranges.run()]).then(
    () => undefined,
    (error: Error) => error,
  );

  let server: Server | undefined;
  let metricsUrl: string | undefined;
  if (o.metricsPort !== undefined) {
    server = createServer((request, response) => {
      if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
        return;
      }
      void (async () => {
        const own = await o.metrics.registry.getMetricsAsJSON();
        const engines: MetricFamilies[] = await Promise.all([...threads].map((t) => t.metrics()));
        const text = await mergedMetrics(own, engines);
        response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text);
      })().catch((error: Error) => {
        response.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`);
      });
    });
    const host = o.metricsHost ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(o.metricsPort, host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    metricsUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`;
  }

  return {
    metricsUrl,
    failed: stopped.then((error) => error ?? new Error('the worker stopped taking tasks')),
    async close() {
      await Promise.all([worker.close(), ranges.close()]);
      await subscriber.quit().catch(() => undefined);
      await Promise.all([...threads].map((t) => t.terminate()));
      if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
    },
  };
}

/** The answer of a task stopped by its cancellation. */
const aborted: TaskOutcome = {
  state: 'failed',
  error: { code: 'NEUROCLUSTER_ERR_ABORTED', message: 'cancelled by its caller' },
};

/**
 * A task's progress sent to the queue at most once a second (each is a Redis write and an event
 * in a stream of bounded length), the latest always: a pending one is sent when the second is up.
 */
function throttledProgress(job: Job<Task, TaskOutcome>, everyMs = 1000) {
  let last = 0;
  let pending: { phase: string; done: number; total: number } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const send = (progress: { phase: string; done: number; total: number }) => {
    last = Date.now();
    pending = undefined;
    job.updateProgress(progress).catch(() => undefined);
  };
  return {
    report(progress: { phase: string; done: number; total: number }) {
      const wait = last + everyMs - Date.now();
      if (wait <= 0) return send(progress);
      pending = progress;
      timer ??= setTimeout(() => {
        timer = undefined;
        if (pending) send(pending);
      }, wait);
    },
    stop() {
      clearTimeout(timer);
      timer = undefined;
      pending = undefined;
    },
  };
}
