/**
 * One worker thread of `neurocluster worker` (job-worker.ts): it runs one task at a time (a whole
 * job, or one range task of a split job), so the process's event loop stays free to renew BullMQ's
 * locks while a fit's kernels run. A thread that dies (a crash, out of memory) rejects its task, which BullMQ then runs again
 * up to `distributed.attempts` times; the next task gets a new thread.
 */
import { Worker } from 'node:worker_threads';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { PrivacyCharge } from '../fit/private.js';
import type { Logger } from '../observability/logger.js';
import type {
  ChargeMessage,
  FromWorker as JobAnswer,
  ToWorker as JobMessage,
} from '../service/job-thread.js';
import { MetricAsks, relayLog, threadScript } from '../service/runner.js';
import type { RangedMessage, RangeMessage } from './job-worker.js';
import type { Task, TaskOutcome } from './queue.js';
import type { RangeAnswer, RangeTask } from './range-task.js';

type ToWorker = JobMessage | RangeMessage;
type FromWorker = JobAnswer | RangedMessage;

type MetricFamilies = MetricObjectWithValues<MetricValue<string>>[];

/** What a thread answers to a job, a range task or a charge. */
type Answer =
  | TaskOutcome
  | { state: 'ranged'; answer: RangeAnswer }
  | { state: 'charged'; charge: PrivacyCharge };

interface Running {
  readonly id: string;
  readonly onProgress: (progress: { phase: string; done: number; total: number }) => void;
  readonly settle: (outcome: Answer | Error) => void;
}

/**
 * A range task or a charge that failed on its own terms (not its thread): its engine error's code
 * and message.
 */
export class ThreadTaskError extends Error {
  constructor(
    readonly code: string,
    /** The engine error's own message. */
    readonly reason: string,
  ) {
    super(`${code}: ${reason}`);
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
      if (outcome.state === 'succeeded' || outcome.state === 'failed') return outcome;
      throw new Error(`job ${task.id} answered as a ${outcome.state} task`);
    });
  }

  /**
   * Charges a private job's budget to the ledger of this process's home (the service's), as its
   * fit would: the charge, for the task that runs the job.
   */
  async charge(message: ChargeMessage, signal?: AbortSignal): Promise<PrivacyCharge> {
    const outcome = await this.post(message.id, message, () => undefined, signal);
    if (outcome.state === 'charged') return outcome.charge;
    if (outcome.state === 'failed') throw new ThreadTaskError(outcome.error.code, outcome.error.message);
    throw new Error(`the charge of job ${message.id} answered as a task`);
  }

  /**
   * Runs one range task; its answer, or ThreadTaskError with the engine's code when it failed on its
   * data or options (an Error of another kind when its thread died).
   */
  async range(id: string, task: RangeTask, signal?: AbortSignal): Promise<RangeAnswer> {
    const outcome = await this.post(id, { type: 'range', id, task }, () => undefined, signal);
    if (outcome.state === 'ranged') return outcome.answer;
    if (outcome.state === 'failed') throw new ThreadTaskError(outcome.error.code, outcome.error.message);
    throw new Error(`range task ${id} answered as a job`);
  }

  private post(
    id: string,
    message: ToWorker,
    onProgress: Running['onProgress'],
    signal: AbortSignal | undefined,
  ): Promise<Answer> {
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
    else if (message.type === 'charged') this.running.settle({ state: 'charged', charge: message.charge });
    else this.running.settle({ state: 'failed', error: message.error });
  }
}
