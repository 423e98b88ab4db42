/**
 * What a worker thread of the service's pool (runner.ts) does, and `neurocluster worker`'s threads
 * too (src/distributed/job-worker.ts adds its range tasks): runs one job at a time off the event
 * loop that answers HTTP or renews a queue's locks, so a fit's kernels never hold those up, and a
 * job that crashes its thread takes only itself down. It fits, writes the job's result, labels,
 * plot and model encrypted to the job's directory, and reports progress and the outcome; the store
 * is the main thread's alone.
 */
import { join } from 'node:path';
import type { MessagePort } from 'node:worker_threads';
import { NeuromorphicClusterer } from '../clusterer.js';
import type { Config } from '../config/schema.js';
import { AbortedError } from '../core/cancel.js';
import { toNeuroclusterError } from '../core/errors.js';
import { labelsCsv } from '../data/labels-file.js';
import { resultPlot } from '../fit/plot.js';
import type { PrivacyCharge } from '../fit/private.js';
import type { SplitRanges } from '../fit/ranges.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { defaultRuntime, type Runtime } from '../runtime/runtime.js';
import { writeEncryptedFile } from '../security/encrypted-files.js';
import type { Keyring } from '../security/keyring.js';
import { LABELS_FILE, MODEL_FILE, PLOT_FILE, prepareJobDir, RESULT_FILE } from './jobs.js';
import { ProgressPacer, progressOf } from './progress.js';

/** A job to run, as the main thread sends it. */
export interface RunMessage {
  type: 'run';
  id: string;
  input: string;
  dir: string;
  config: Config;
  correlationId: string;
  tenant: string;
  /** The tenant's maxRowsPerJob: its data past it fails the job (NEUROCLUSTER_ERR_QUOTA). */
  maxRows?: number | undefined;
  /** A worker's queue: what {@link JobThreadHooks.split} splits a large job's passes on. */
  queue?: string | undefined;
  /** A private job's budget, charged by the service before it was queued. */
  privacyCharge?: PrivacyCharge | undefined;
  /** Its input's bytes (encrypted) held in the service's store: written to `input` before it runs. */
  held?: Uint8Array | undefined;
}

/** A private job's budget to charge to this process's ledger, before its task is queued. */
export type ChargeMessage = Omit<RunMessage, 'type' | 'dir' | 'queue' | 'privacyCharge'> & {
  type: 'charge';
};

/**
 * What the main thread sends: a job to run, a private job's budget to charge, a job (or task) to
 * stop, or a request for the metrics.
 */
export type ToWorker =
  | RunMessage
  | ChargeMessage
  | { type: 'abort'; id: string }
  | { type: 'metrics'; ask: number };

/** What a thread answers. */
export type FromWorker =
  | { type: 'progress'; id: string; progress: { phase: string; done: number; total: number } }
  | { type: 'done'; id: string; summary: Record<string, unknown>; rows: number }
  | { type: 'charged'; id: string; charge: PrivacyCharge }
  | { type: 'failed'; id: string; error: { code: string; message: string } }
  | { type: 'metrics'; ask: number; metrics: unknown }
  /** A log line (pino's JSON), for the main thread's logger to write as it writes its own. */
  | { type: 'log'; line: string };

/** A job's split of its passes over other processes, and what to close after its fit. */
export interface JobSplit {
  readonly split: SplitRanges;
  close(): Promise<void>;
}

/** A task of another kind than a job (a split job's range task), under an id an abort names. */
export interface TaskMessage {
  type: string;
  id: string;
}

/** What a thread that runs more than jobs adds (src/distributed/job-worker.ts). */
export interface JobThreadHooks<Task extends TaskMessage, Answer extends { type: string; id: string }> {
  /** The job's split, when its passes are to be shared out; none runs them all here. */
  readonly split?: (job: RunMessage, logger: Logger, keyring: Keyring) => JobSplit | undefined;
  /** The message type of the other tasks, and how one runs: its answer, or it throws. */
  readonly task?: {
    readonly type: Task['type'];
    readonly run: (task: Task, runtime: Runtime, signal: AbortSignal) => Promise<Answer>;
  };
}

/** Answers the main thread's messages on `port` until the thread ends. */
export function serveJobs<
  Task extends TaskMessage = never,
  Answer extends { type: string; id: string } = never,
>(port: MessagePort, hooks: JobThreadHooks<Task, Answer> = {}): void {
  const runtime = defaultRuntime();
  const keyring = runtime.keyring();
  const running = new Map<string, AbortController>();
  const send = (message: FromWorker | Answer) => port.postMessage(message);

  /** Runs `work` under `id`, stoppable by an abort of that id; a failure answers `failed`. */
  const track = async (id: string, work: (signal: AbortSignal) => Promise<void>) => {
    const abort = new AbortController();
    running.set(id, abort);
    try {
      await work(abort.signal);
    } catch (cause) {
      const error = toNeuroclusterError(cause);
      send({ type: 'failed', id, error: { code: error.code, message: error.message } });
    } finally {
      running.delete(id);
    }
  };

  /** A job's logger: its lines go to the main thread's (the clusterer adds the correlation ID). */
  const loggerOf = (job: ChargeMessage | RunMessage) =>
    createLogger({
      level: job.config.logging.level,
      destination: { write: (line: string) => send({ type: 'log', line }) },
    }).child({ job: job.id, tenant: job.tenant });

  /** The tenant's maxRowsPerJob as the fit's row quota. */
  const quotaOf = (job: ChargeMessage | RunMessage) =>
    job.maxRows === undefined ? {} : { rowQuota: { maxRows: job.maxRows, holder: `tenant "${job.tenant}"` } };

  const run = (job: RunMessage) =>
    track(job.id, async (signal) => {
      const logger = loggerOf(job);
      // The tenant's files are wrapped with its own key (destroyed with the tenant).
      const own = keyring.forTenant(job.tenant);
      // Its directory holds its input and its results: the input is written first when it was held.
      await prepareJobDir(job.dir, job.input, job.held);
      const split = hooks.split?.(job, logger, own);
      const pacer = new ProgressPacer((progress) => send({ type: 'progress', id: job.id, progress }));
      try {
        const clusterer = new NeuromorphicClusterer({ config: job.config, logger, runtime });
        const result = await clusterer.fit(job.input, {
          signal,
          correlationId: job.correlationId,
          split: split?.split,
          privacyCharge: job.privacyCharge,
          ...quotaOf(job),
          onProgress: (event) => {
            const progress = progressOf(event, job.config);
            if (progress) pacer.offer(progress);
          },
        });
        pacer.stop();
        // The summary the store keeps and every listing shows: without the per-row arrays.
        const { labels: _labels, ids: _ids, ...summary } = result.toJSON();
        await writeEncryptedFile(join(job.dir, RESULT_FILE), JSON.stringify(result.toJSON()), own);
        await writeEncryptedFile(join(job.dir, LABELS_FILE), labelsCsv(result.labels, result.ids), own);
        const plot = await resultPlot(
          result,
          runtime.registry,
          `job ${job.id}: ${result.method}, k = ${result.k}`,
        );
        await writeEncryptedFile(join(job.dir, PLOT_FILE), plot, own);
        // The model, for the job's predict route (encrypted as security.encryptModels says).
        await clusterer.save(join(job.dir, MODEL_FILE), { correlationId: job.correlationId, keyring: own });
        send({ type: 'done', id: job.id, summary: JSON.parse(JSON.stringify(summary)), rows: result.rows });
      } finally {
        pacer.stop();
        await split?.close();
      }
    });

  const charge = (job: ChargeMessage) =>
    track(job.id, async (signal) => {
      const clusterer = new NeuromorphicClusterer({ config: job.config, logger: loggerOf(job), runtime });
      const done = await clusterer.chargePrivacy(job.input, {
        signal,
        correlationId: job.correlationId,
        ...quotaOf(job),
      });
      send({ type: 'charged', id: job.id, charge: done });
    });

  port.on('message', (received: ToWorker | Task) => {
    if (hooks.task && received.type === hooks.task.type) {
      const { run: runTask } = hooks.task;
      const task = received as Task;
      void track(task.id, async (signal) => send(await runTask(task, runtime, signal)));
      return;
    }
    const message = received as ToWorker;
    if (message.type === 'run') void run(message);
    else if (message.type === 'charge') void charge(message);
    else if (message.type === 'abort')
      running.get(message.id)?.abort(new AbortedError('cancelled by its caller'));
    else
      void runtime.metrics.registry
        .getMetricsAsJSON()
        .then((metrics) => send({ type: 'metrics', ask: message.ask, metrics }));
  });
}
