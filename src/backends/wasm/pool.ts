/**
 * Workers that run the WASM kernels on one shared `WebAssembly.Memory`: each worker instantiates
 * the same compiled module over the same memory, so a kernel call moves no data, only a function
 * name and its (pointer, size) arguments. A worker that crashes or throws is replaced and its task
 * retried once; a second failure is a typed kernel error.
 */
import { Worker } from 'node:worker_threads';
import { BackendError } from '../../core/errors.js';

/** The worker's whole program: instantiate over the shared memory, then run what it is sent. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory } = workerData;
const kernels = new WebAssembly.Instance(module, { env: { memory } }).exports;
parentPort.on('message', ({ id, fn, args, crash }) => {
  // Fault injection (NEUROCLUSTER_FAULT=worker-crash): the thread dies with the task in hand.
  if (crash) process.exit(70);
  try {
    kernels[fn](...args);
    parentPort.postMessage({ id });
  } catch (error) {
    parentPort.postMessage({ id, error: String((error && error.stack) || error) });
  }
});
`;

/** One kernel call on a range of rows: the export's name and its numeric arguments. */
export interface Task {
  readonly fn: string;
  readonly args: readonly number[];
  /** Fault injection: the worker exits when it receives the task (every try of it). */
  readonly crash?: boolean;
}

interface Pending {
  readonly task: Task;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  retried: boolean;
}

class Slot {
  worker: Worker;
  private closed = false;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly data: { module: WebAssembly.Module; memory: WebAssembly.Memory }) {
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: this.data });
    // An idle worker does not keep the process alive; a busy one does (see send).
    worker.unref();
    worker.on('message', ({ id, error }: { id: number; error?: string }) => {
      const job = this.pending.get(id);
      if (!job) return;
      this.pending.delete(id);
      if (this.pending.size === 0) worker.unref();
      if (error === undefined) job.resolve();
      else this.retry(job, new Error(error));
    });
    const fail = (error: unknown) => {
      if (this.closed || this.worker !== worker) return;
      // The worker is gone: start another and send its unfinished tasks again (once each).
      this.worker = this.spawn();
      const jobs = [...this.pending.values()];
      this.pending.clear();
      for (const job of jobs) this.retry(job, error);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (code !== 0 || this.pending.size > 0) fail(new Error(`a WASM worker exited (code ${code})`));
    });
    return worker;
  }

  private retry(job: Pending, cause: unknown): void {
    if (job.retried) {
      job.reject(
        new BackendError(
          `WASM kernel ${job.task.fn} failed twice: ${(cause as Error).message}`,
          'NEUROCLUSTER_ERR_KERNEL',
          {
            cause,
          },
        ),
      );
      return;
    }
    job.retried = true;
    this.send(job);
  }

  private send(job: Pending): void {
    const id = this.nextId++;
    if (this.pending.size === 0) this.worker.ref();
    this.pending.set(id, job);
    this.worker.postMessage({ id, fn: job.task.fn, args: job.task.args, crash: job.task.crash === true });
  }

  run(task: Task): Promise<void> {
    return new Promise((resolve, reject) => this.send({ task, resolve, reject, retried: false }));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.pending.values()) job.reject(new BackendError('the WASM backend was closed'));
    this.pending.clear();
    await this.worker.terminate();
  }
}

export class WorkerPool {
  private readonly slots: Slot[];

  constructor(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    readonly size: number,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`worker count must be >= 1, got ${size}`);
    this.slots = Array.from({ length: size }, () => new Slot({ module, memory }));
  }

  /** Runs one task per worker at most, all at once; resolves when every one is done. */
  async all(tasks: readonly Task[]): Promise<void> {
    if (tasks.length > this.slots.length) throw new RangeError('more tasks than workers');
    await Promise.all(tasks.map((task, i) => this.slots[i]!.run(task)));
  }

  /** Ends every worker; the pool is unusable afterwards. */
  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.close()));
  }
}

/** [start, end) of each of `parts` near-equal shares of [0, n); empty shares left out. */
export function splitRows(n: number, parts: number): [number, number][] {
  const out: [number, number][] = [];
  for (let p = 0; p < parts; p++) {
    const start = Math.floor((n * p) / parts);
    const end = Math.floor((n * (p + 1)) / parts);
    if (end > start) out.push([start, end]);
  }
  return out;
}
