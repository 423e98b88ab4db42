/**
 * One worker thread of `neurocluster worker` (the service pool's job-worker.ts): it runs one task
 * at a time, so the process's event loop stays free to renew BullMQ's locks while a fit's kernels
 * run. A thread that dies (a crash, out of memory) rejects its task, which BullMQ then runs again
 * up to `distributed.attempts` times; the next task gets a new thread.
 */
import { Worker } from 'node:worker_threads';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Logger } from '../observability/logger.js';
import type { FromWorker, ToWorker } from '../service/job-worker.js';
import { jobWorkerUrl, MetricAsks, relayLog } from '../service/runner.js';
import type { Task, TaskOutcome } from './queue.js';

type MetricFamilies = MetricObjectWithValues<MetricValue<string>>[];

interface Running {
  readonly id: string;
  readonly onProgress: (progress: { phase: string; done: number; total: number }) => void;
  readonly settle: (outcome: TaskOutcome | Error) => void;
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
  run(task: Task, onProgress: Running['onProgress'], signal?: AbortSignal): Promise<TaskOutcome> {
    if (this.running) throw new Error(`this thread runs job ${this.running.id} already`);
    const worker = this.thread();
    return new Promise<TaskOutcome>((resolve, reject) => {
      const abort = () => worker.postMessage({ type: 'abort', id: task.id } satisfies ToWorker);
      signal?.addEventListener('abort', abort, { once: true });
      this.running = {
        id: task.id,
        onProgress,
        settle: (outcome) => {
          signal?.removeEventListener('abort', abort);
          this.running = undefined;
          if (outcome instanceof Error) reject(outcome);
          else resolve(outcome);
        },
      };
      worker.postMessage({ type: 'run', ...task } satisfies ToWorker);
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
    const worker = new Worker(jobWorkerUrl(), this.env ? { env: this.env } : {});
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
    else this.running.settle({ state: 'failed', error: message.error });
  }
}
