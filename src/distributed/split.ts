/**
 * One job split over every worker: the coordinator's side. A worker runs a job's fit in one of its
 * threads as always (the survey, the sample's encoders, PCA and K-means start); when the job's file
 * is one the workers read by ranges (NPY, CSV, JSON Lines at a path they all see) and holds more
 * than `distributed.splitRows` rows, each pass over the file's ranges becomes one task per range on
 * the `<queueName>-ranges` queue, which every worker takes (src/distributed/range-task.ts). The
 * states the tasks answer are merged here in range order, the next pass starts from them, and the
 * last pass's labels are read back from the parts the tasks wrote and joined in order. The sums
 * are those the single-process plan makes over the same ranges and chunks, so the labels are too.
 *
 * A task is added under an id made of the job, the attempt (method and backend), the pass, its
 * iteration and the range: added twice, it is one task. A worker that dies mid-task is BullMQ's
 * stalled case (another worker runs it again, and it writes the same bytes over what it keeps); a
 * coordinator that dies is its job task's stalled case, and its successor finds the ranges that
 * were done done. A task that fails on its data fails the job with that error's code at once; one
 * whose thread died is run again up to `distributed.attempts` times.
 */
import { mkdir, rm, rmdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Queue, QueueEvents, type Job as Task } from 'bullmq';
import { ClusterMoments, ContingencyCounts, LloydSums } from '../cluster/streamed.js';
import { type Config, durationMs } from '../config/schema.js';
import { AbortedError, throwIfAborted } from '../core/cancel.js';
import type { ErrorCode } from '../core/error-codes.js';
import { ERROR_CODES } from '../core/error-codes.js';
import { NeuroclusterError } from '../core/errors.js';
import type { PlannedRange, RangePass, RangeRunner, SplitRanges } from '../fit/ranges.js';
import { RunningMoments } from '../linalg/running.js';
import type { Logger } from '../observability/logger.js';
import type { Keyring } from '../security/keyring.js';
import { connectionOf } from './queue.js';
import {
  attemptDir,
  featureBytes,
  type RangeAnswer,
  type RangeStage,
  type RangeTask,
  readLabelsPart,
  writePlan,
} from './range-task.js';

/** The queue the range tasks of split jobs go on, beside the jobs' own. */
export function rangeQueueName(queueName: string): string {
  return `${queueName}-ranges`;
}

/** The name a range task is added under. */
export const RANGE_TASK = 'range';

export interface SplitOptions {
  /** The queue's Redis. */
  readonly url: string;
  readonly job: string;
  readonly dir: string;
  readonly input: string;
  readonly config: Config;
  readonly correlationId: string;
  readonly tenant: string;
  /** The tenant's keyring: the plan and the parts are sealed with it. */
  readonly keyring: Keyring;
  readonly logger: Logger;
}

/** A job's splitter: {@link SplitRanges} for its fit, and the connections to close after it. */
export interface Splitter {
  readonly split: SplitRanges;
  close(): Promise<void>;
}

/**
 * The error a failed range task answered, as the coordinator throws it: a task's reason is
 * `CODE: message` for the engine's own errors, so the job fails with the task's code.
 */
export function taskError(reason: string, range: number): NeuroclusterError {
  const match = /^(NEUROCLUSTER_ERR_[A-Z_]+): ([\s\S]*)$/.exec(reason);
  const code = match && match[1]! in ERROR_CODES ? (match[1] as ErrorCode) : 'NEUROCLUSTER_ERR_INTERNAL';
  return new NeuroclusterError(code, `range ${range}: ${match ? match[2]! : reason}`);
}

export function splitter(o: SplitOptions): Splitter {
  const d = o.config.distributed;
  let queue: Queue<RangeTask, RangeAnswer> | undefined;
  let events: QueueEvents | undefined;
  const open = () => {
    const connection = connectionOf(o.url, 'wait');
    queue ??= new Queue<RangeTask, RangeAnswer>(rangeQueueName(d.queueName), { connection });
    events ??= new QueueEvents(rangeQueueName(d.queueName), { connection });
    return { queue, events };
  };

  const split: SplitRanges = async (backend, job, ranges) => {
    const rows = ranges.reduce((a, r) => a + r.rows, 0);
    if (ranges.length < 2 || rows <= d.splitRows) return undefined;
    const attempt = `${job.method}-${backend.name}`;
    const folder = attemptDir(o.dir, attempt);
    await mkdir(folder, { recursive: true, mode: 0o700 });
    const { file: _file, options, ...shape } = job;
    await writePlan(folder, { ...shape, columns: options.featureColumns ?? [] }, o.keyring);
    o.logger.info(
      { ranges: ranges.length, rows, attempt },
      `the job is split: ${ranges.length} ranges of its ${rows} rows go to the workers`,
    );
    const ids: string[] = [];
    const run = async (
      stage: RangeStage,
      iteration: number,
      centres: Float64Array | undefined,
      pass: RangePass,
    ): Promise<RangeAnswer[]> => {
      const { queue, events } = open();
      const tasks = ranges.map((range) => ({
        name: RANGE_TASK,
        data: taskOf(o, attempt, stage, iteration, range, pass.chunkRows, backend.name, centres),
        opts: {
          jobId: `${o.job}.${attempt}.${stage}.${iteration}.${range.index}`,
          attempts: d.attempts,
          backoff: { type: 'exponential', delay: 1000 },
          removeOnComplete: { age: Math.ceil(durationMs(d.keepFinished) / 1000) },
          removeOnFail: { age: Math.ceil(durationMs(d.keepFinished) / 1000) },
        },
      }));
      // A task that failed for good in a run before this one (a coordinator that died) is run anew.
      for (const t of tasks) {
        const old = await queue.getJob(t.opts.jobId);
        if (old && (await old.isFailed())) await old.remove();
        ids.push(t.opts.jobId);
      }
      const added = await queue.addBulk(tasks);
      return await untilDone(added, events, ranges, pass);
    };

    const runner: RangeRunner = {
      spilledBytes: ranges.reduce((a, r) => a + featureBytes(r, job.d), 0),
      async features(pass) {
        const answers = await run('features', 0, undefined, pass);
        const all = new RunningMoments(job.d);
        for (const a of answers) if (a.stage === 'features') all.merge(RunningMoments.fromJSON(a.moments));
        return all;
      },
      async lloyd(iteration, centres, pass) {
        const answers = await run('lloyd', iteration, centres, pass);
        const all = new LloydSums(job.k, job.d);
        for (const a of answers) if (a.stage === 'lloyd') all.merge(LloydSums.fromJSON(a.sums));
        return all;
      },
      async assign(centres, pass, each) {
        const answers = await run('assign', 0, centres, pass);
        for (const [i, a] of answers.entries()) {
          if (a.stage !== 'assign') continue;
          throwIfAborted(pass.signal);
          const { labels, ids } = await readLabelsPart(folder, ranges[i]!.index, o.keyring);
          await each({
            labels,
            ids,
            moments: ClusterMoments.fromJSON(a.moments),
            contingency: a.contingency ? ContingencyCounts.fromJSON(a.contingency) : undefined,
          });
        }
      },
      async remove() {
        await rm(folder, { recursive: true, force: true });
        // The job's `split` folder too, once no other attempt's parts are in it.
        await rmdir(dirname(folder)).catch(() => undefined);
        // The tasks' answers are merged: they go from Redis now, not after keepFinished.
        if (queue) await Promise.allSettled(ids.map((id) => queue!.remove(id)));
      },
    };
    return runner;
  };

  return {
    split,
    async close() {
      await Promise.allSettled([queue?.close(), events?.close()]);
    },
  };
}

function taskOf(
  o: SplitOptions,
  attempt: string,
  stage: RangeStage,
  iteration: number,
  range: PlannedRange,
  chunkRows: number,
  backend: string,
  centres: Float64Array | undefined,
): RangeTask {
  return {
    job: o.job,
    dir: o.dir,
    attempt,
    input: o.input,
    stage,
    iteration,
    range,
    chunkRows,
    backend,
    ...(centres ? { centres: Array.from(centres) } : {}),
    config: o.config,
    correlationId: o.correlationId,
    tenant: o.tenant,
  };
}

/**
 * Every task's answer, in range order, once all are done; the pass's progress as each ends. An
 * abort takes the tasks no worker started off the queue and stops the wait.
 */
async function untilDone(
  tasks: Task<RangeTask, RangeAnswer>[],
  events: QueueEvents,
  ranges: readonly PlannedRange[],
  pass: RangePass,
): Promise<RangeAnswer[]> {
  const { signal } = pass;
  throwIfAborted(signal);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      for (const t of tasks) t.remove().catch(() => undefined);
      reject(new AbortedError('the operation was aborted', { cause: signal?.reason }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  try {
    const done = tasks.map((t, i) =>
      t.waitUntilFinished(events).then(
        (answer: RangeAnswer) => {
          pass.onRows?.(ranges[i]!.rows);
          return answer;
        },
        (error: Error) => {
          throw taskError(error.message, ranges[i]!.index);
        },
      ),
    );
    return await Promise.race([Promise.all(done), aborted]);
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
