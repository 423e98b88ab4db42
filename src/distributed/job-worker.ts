/**
 * The script of a worker thread of `neurocluster worker` (thread.ts): the service's jobs
 * (src/service/job-thread.ts), whose large files' passes are split into range tasks on the
 * worker's queue (split.ts), and those range tasks (range-task.ts).
 */
import { parentPort } from 'node:worker_threads';
import { withCorrelationId } from '../core/context.js';
import type { BackendName } from '../core/matrix.js';
import { selectionContext } from '../runtime/runtime.js';
import { serveJobs } from '../service/job-thread.js';
import { type RangeAnswer, type RangeTask, runRangeTask } from './range-task.js';
import { splitter } from './split.js';

/** One range task of a split job, under its task id. */
export interface RangeMessage {
  type: 'range';
  id: string;
  task: RangeTask;
}

/** A range task's answer. */
export interface RangedMessage {
  type: 'ranged';
  id: string;
  answer: RangeAnswer;
}

if (parentPort)
  serveJobs<RangeMessage, RangedMessage>(parentPort, {
    split: (job, logger, keyring) =>
      job.queue
        ? splitter({
            url: job.queue,
            job: job.id,
            dir: job.dir,
            input: job.input,
            config: job.config,
            correlationId: job.correlationId,
            tenant: job.tenant,
            keyring,
            logger,
          })
        : undefined,
    task: {
      type: 'range',
      run: async ({ id, task }, runtime, signal) => {
        // The coordinator's backend, so every range's kernels give what its own would.
        const options = selectionContext(task.config.engine, 0).options;
        const backend = await runtime.registry.get(task.backend as BackendName, false, options);
        const keyring = runtime.keyring().forTenant(task.tenant);
        const answer = await withCorrelationId(task.correlationId, () =>
          runRangeTask(task, backend, keyring, signal),
        );
        return { type: 'ranged', id, answer };
      },
    },
  });
