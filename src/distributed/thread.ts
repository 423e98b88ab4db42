/**
 * One worker thread of `neurocluster worker` (job-worker.ts): it runs one task at a time (a whole
 * job, or one range task of a split job), so the process's event loop stays free to renew BullMQ's
 * locks while a fit's kernels run. A thread that dies (a crash, out of memory) rejects its task, which BullMQ then runs again
 * up to `distributed.attempts` times; the next task gets a new thread.
 */
import { Worker } from 'node:worker_threads';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Logger } from '../observability/logger.js';
import type { FromWorker as JobAnswer, ToWorker as JobMessage } from '../service/job-thread.js';
import { MetricAsks, relayLog, threadScript } from '../service/runner.js';
import type { RangedMessage, RangeMessage } from './job-worker.js';
import type { Task, TaskOutcome } from './queue.js';
import type { RangeAnswer, RangeTask } from './range-task.js';

type ToWorker = JobMessage | RangeMessage;
type FromWorker = JobAnswer | RangedMessage;

type MetricFamilies = MetricObjectWithValues<MetricValue<string>>[];

interface Running {
  readonly id: string;
  readonly onProgress: (progress: { phase: string; done: number; total: number }) => void;
  readonly settle: (outcome: TaskOutcome | { state: 'ranged'; answer: RangeAnswer } | Error) => void;
}

/** A range task that failed on its own terms (not its thread): its engine error's code and message. */
export class RangeTaskError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export class JobThread {
  private worker: Worker | undefined;
  private running: Running | undefined;
  private readonly metricAsks = new MetricAsks();

  constructor(
    private readonly logger: Logger,
    private readonly env?: NodeJS.ProcessEnv,
  ) {}

  /** Runs the task; aborting `signal` stops its fit (it then answers failed, NEUROCLUSTER_ERR_ABORTED). */
  run(
    task: Task,
    onProgress: Running['onProgress'],
    signal?: AbortSignal,
    queue?: string,
  ): Promise<TaskOutcome> {
    return this.post(task.id, { type: 'run', ...task, queue }, onProgress, signal).then((outcome) => {
      if (outcome.state === 'ranged') throw new Error(`job ${task.id} answered as a range task`);
      return outcome;
    });
  }

  /**
   * Runs one range task; its answer, or RangeTaskError with the engine's code when it failed on its
   * data or options (an Error of another kind when its thread died).
   */
  async range(id: string, task: RangeTask, signal?: AbortSignal): Promise<RangeAnswer> {
    const outcome = await this.post(id, { type: 'range', id, task }, () => undefined, signal);
    if (outcome.state === 'ranged') return outcome.answer;
    if (outcome.state === 'failed') throw new RangeTaskError(outcome.error.code, outcome.error.message);
    throw new Error(`range task ${id} answered as a job`);
  }

  private post(
    id: string,
    message: ToWorker,
    onProgress: Running['onProgress'],
    signal: AbortSignal | undefined,
  ): Promise<TaskOutcome | { state: 'ranged'; answer: RangeAnswer }> {
    if (this.running) throw new Error(`this thread runs task ${this.running.id} already`);
    const worker = this.thread();
    return new Promise((resolve, reject) => {
      const abort = () => worker.postMessage({ type: 'abort', id } satisfies ToWorker);
      signal?.addEventListener('abort', abort, { once: true });
      this.running = {
        id,
        onProgress,
        settle: (outcome) => {
          signal?.removeEventListener('abort', abort);
          this.running = undefined;
          if (outcome instanceof Error) reject(outcome);
          else resolve(outcome);
        },
      };
      worker.postMessage(message);
      if (signal?.aborted) abort();
    });
  }

  /** The thread's engine metrics (operations, kernels, fallbacks); none when it is not started. */
  async metrics(timeoutMs = 2000): Promise<MetricFamilies> {
    return this.worker ? this.metricAsks.ask(this.worker, timeoutMs) : [];
  }

  async terminate(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(
      threadScript(import.meta.url, './job-worker.js'),
      this.env ? { env: this.env } : {},
    );
    worker.on('message', (message: FromWorker) => this.heard(message));
    const lost = (why: string) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.running?.settle(new Error(`the job's worker thread stopped: ${why}`));
    };
    worker.on('error', (error) => lost(error.message));
    worker.on('exit', (code) => lost(`it exited with code ${code}`));
    this.worker = worker;
    return worker;
  }

  private heard(message: FromWorker): void {
    if (message.type === 'log') relayLog(this.logger, message.line);
    else if (message.type === 'metrics') this.metricAsks.answer(message);
    else if (message.id !== this.running?.id) return;
    else if (message.type === 'progress') this.running.onProgress(message.progress);
    else if (message.type === 'done') this.running.settle({ state: 'succeeded', rows: message.rows });
    else if (message.type === 'ranged') this.running.settle({ state: 'ranged', answer: message.answer });
    else this.running.settle({ state: 'failed', error: message.error });
  }
}
