/**
 * A worker thread of the service's pool (runner.ts): runs one job at a time off the event loop
 * that answers HTTP, so a fit's kernels never hold up a request, and a job that crashes its thread
 * takes only itself down. It fits, writes the job's result, labels, plot and model encrypted to the
 * job's directory, and reports progress and the outcome; the store is the main thread's alone.
 */
import { join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { NeuromorphicClusterer } from '../clusterer.js';
import type { Config } from '../config/schema.js';
import { AbortedError } from '../core/cancel.js';
import { withCorrelationId } from '../core/context.js';
import { toNeuroclusterError } from '../core/errors.js';
import type { BackendName } from '../core/matrix.js';
import { labelsCsv } from '../data/labels-file.js';
import { type RangeAnswer, type RangeTask, runRangeTask } from '../distributed/range-task.js';
import { splitter } from '../distributed/split.js';
import { resultPlot } from '../fit/plot.js';
import { createLogger } from '../observability/logger.js';
import { defaultRuntime, selectionContext } from '../runtime/runtime.js';
import { writeEncryptedFile } from '../security/encrypted-files.js';
import { LABELS_FILE, MODEL_FILE, PLOT_FILE, RESULT_FILE } from './jobs.js';
import { progressOf } from './progress.js';

/** What the main thread sends: a job to run, a job to stop, or a request for the metrics. */
export type ToWorker =
  | {
      type: 'run';
      id: string;
      input: string;
      dir: string;
      config: Config;
      correlationId: string;
      tenant: string;
      /** The tenant's maxRowsPerJob: its data past it fails the job (NEUROCLUSTER_ERR_QUOTA). */
      maxRows?: number | undefined;
      /** A worker's queue: a large file's passes are split into range tasks on it (src/distributed/split.ts). */
      queue?: string | undefined;
    }
  /** One range task of a split job (src/distributed/range-task.ts), under its task id. */
  | { type: 'range'; id: string; task: RangeTask }
  | { type: 'abort'; id: string }
  | { type: 'metrics'; ask: number };

/** What a worker answers. */
export type FromWorker =
  | { type: 'progress'; id: string; progress: { phase: string; done: number; total: number } }
  | { type: 'done'; id: string; summary: Record<string, unknown>; rows: number }
  | { type: 'ranged'; id: string; answer: RangeAnswer }
  | { type: 'failed'; id: string; error: { code: string; message: string } }
  | { type: 'metrics'; ask: number; metrics: unknown }
  /** A log line (pino's JSON), for the main thread's logger to write as it writes its own. */
  | { type: 'log'; line: string };

const port = parentPort;
if (port) {
  const runtime = defaultRuntime();
  const keyring = runtime.keyring();
  const running = new Map<string, AbortController>();
  const send = (message: FromWorker) => port.postMessage(message);

  const run = async (job: Extract<ToWorker, { type: 'run' }>) => {
    const abort = new AbortController();
    running.set(job.id, abort);
    // The clusterer adds the correlation ID to every line of the operation.
    const logger = createLogger({
      level: job.config.logging.level,
      destination: { write: (line: string) => send({ type: 'log', line }) },
    }).child({ job: job.id, tenant: job.tenant });
    // The tenant's files are wrapped with its own key (destroyed with the tenant).
    const own = keyring.forTenant(job.tenant);
    const split = job.queue
      ? splitter({
          url: job.queue,
          job: job.id,
          dir: job.dir,
          input: job.input,
          config: job.config,
          correlationId: job.correlationId,
          tenant: job.tenant,
          keyring: own,
          logger,
        })
      : undefined;
    try {
      const clusterer = new NeuromorphicClusterer({ config: job.config, logger, runtime });
      const result = await clusterer.fit(job.input, {
        signal: abort.signal,
        correlationId: job.correlationId,
        split: split?.split,
        ...(job.maxRows === undefined
          ? {}
          : { rowQuota: { maxRows: job.maxRows, holder: `tenant "${job.tenant}"` } }),
        onProgress: (event) => {
          const progress = progressOf(event, job.config);
          if (progress) send({ type: 'progress', id: job.id, progress });
        },
      });
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
    } catch (cause) {
      const error = toNeuroclusterError(cause);
      send({ type: 'failed', id: job.id, error: { code: error.code, message: error.message } });
    } finally {
      running.delete(job.id);
      await split?.close();
    }
  };

  const range = async ({ id, task }: Extract<ToWorker, { type: 'range' }>) => {
    const abort = new AbortController();
    running.set(id, abort);
    try {
      const options = selectionContext(task.config.engine, 0).options;
      const backend = await runtime.registry.get(task.backend as BackendName, false, options);
      const answer = await withCorrelationId(task.correlationId, () =>
        runRangeTask(task, backend, keyring.forTenant(task.tenant), abort.signal),
      );
      send({ type: 'ranged', id, answer });
    } catch (cause) {
      const error = toNeuroclusterError(cause);
      send({ type: 'failed', id, error: { code: error.code, message: error.message } });
    } finally {
      running.delete(id);
    }
  };

  port.on('message', (message: ToWorker) => {
    if (message.type === 'run') void run(message);
    else if (message.type === 'range') void range(message);
    else if (message.type === 'abort')
      running.get(message.id)?.abort(new AbortedError('cancelled by its caller'));
    else
      void runtime.metrics.registry
        .getMetricsAsJSON()
        .then((metrics) => send({ type: 'metrics', ask: message.ask, metrics }));
  });
}
