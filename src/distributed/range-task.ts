/**
 * One task of a split job (src/distributed/split.ts): one pass over one range of the job's file,
 * run in a thread of `neurocluster worker`. It reads its range of the file itself (a path every
 * worker sees), the sample's fitted plan from the job's directory, and for the later passes the
 * features its range's first task kept there; it answers a small mergeable state. Rows never
 * travel through Redis: what a task keeps (features, labels) is written encrypted to the job's
 * directory under the tenant's key, and a task run again writes the same bytes over it.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import type { Backend } from '../backends/backend.js';
import type { ClusterMoments, ContingencyCounts, LloydSums } from '../cluster/streamed.js';
import { engineFilesOf } from '../config/home.js';
import type { Config } from '../config/schema.js';
import { writeFileAtomic } from '../core/atomic.js';
import { ConfigError, DataError, SecurityError } from '../core/errors.js';
import type { PipelineState } from '../encoders/pipeline.js';
import { readOptions } from '../fit/chunks.js';
import {
  assignRange,
  encodeRange,
  type FeatureReader,
  lloydRange,
  type PlannedRange,
  type RangeJob,
} from '../fit/ranges.js';
import type { RunningMoments } from '../linalg/running.js';
import { decryptBuffer, encryptBuffer } from '../security/envelope.js';
import type { Keyring } from '../security/keyring.js';
import { fromPortable, toPortable } from '../security/model-file.js';
import { openChunked } from '../security/secure-load.js';
import { checkedTask } from './queue.js';

/**
 * What the tasks of one attempt of a split job read: the range job but its file (each opens it)
 * and reading options (made again from the feature columns and the task's configuration).
 */
export type SplitPlan = Omit<RangeJob, 'file' | 'options'> & { readonly columns: readonly string[] };

export type RangeStage = 'features' | 'lloyd' | 'assign';

/** One range task. */
export interface RangeTask {
  /** The job, its directory and the attempt's folder in it (where the plan and the parts are). */
  readonly job: string;
  readonly dir: string;
  readonly attempt: string;
  readonly input: string;
  readonly stage: RangeStage;
  readonly iteration: number;
  readonly range: PlannedRange;
  readonly chunkRows: number;
  /** The backend the attempt runs on: every range of it runs on the same one. */
  readonly backend: string;
  /** The centres of a Lloyd pass or of the last pass (k x d, row-major). */
  readonly centres?: readonly number[] | undefined;
  readonly config: Config;
  readonly correlationId: string;
  readonly tenant: string;
}

const absolute = z.string().refine(isAbsolute, 'not an absolute path');
const count = z.int().min(0);
const rangeTaskSchema = z.strictObject({
  job: z.uuid(),
  dir: absolute,
  attempt: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  input: absolute,
  stage: z.enum(['features', 'lloyd', 'assign']),
  iteration: count,
  range: z.strictObject({
    index: count,
    start: count,
    records: count,
    offset: count,
    line: count,
    rows: count,
    firstRow: count,
  }),
  chunkRows: z.int().min(1),
  backend: z.string().min(1).max(32),
  centres: z.array(z.number()).optional(),
  config: z.unknown(),
  correlationId: z.string().min(1).max(128),
  tenant: z.string().min(1).max(64),
});

/** A range task as a worker takes it from Redis, checked as a job task is (src/distributed/queue.ts). */
export function readRangeTask(data: unknown): RangeTask {
  return checkedTask(rangeTaskSchema, data, 'the range task');
}

/** The folder of one attempt's plan and parts, in the job's directory. */
export function attemptDir(dir: string, attempt: string): string {
  return join(dir, 'split', attempt);
}

const PLAN_FILE = 'plan.enc';
const featuresFile = (index: number) => `features-${index}.enc`;
const labelsFile = (index: number) => `labels-${index}.enc`;

/** Writes bytes encrypted under the keyring, atomically and owner-only. */
async function writeSealed(path: string, plain: Uint8Array, keyring: Keyring): Promise<void> {
  await writeFileAtomic(path, encryptBuffer(plain, keyring), { engine: engineFilesOf(), mode: 0o600 });
}

async function readSealed(path: string, keyring: Keyring): Promise<Buffer> {
  return decryptBuffer(await readFile(path), keyring);
}

/** Writes the attempt's plan for its tasks. */
export async function writePlan(folder: string, plan: SplitPlan, keyring: Keyring): Promise<void> {
  const { pipeline } = plan.plan;
  const body = { ...plan, plan: { ...plan.plan, pipeline: pipeline ? toPortable(pipeline) : undefined } };
  await writeSealed(join(folder, PLAN_FILE), Buffer.from(JSON.stringify(body)), keyring);
}

/** The plan of an attempt, read from its folder. */
export async function readPlan(folder: string, keyring: Keyring): Promise<SplitPlan> {
  const body = JSON.parse(
    (await readSealed(join(folder, PLAN_FILE), keyring)).toString('utf8'),
  ) as SplitPlan & {
    plan: { pipeline?: unknown };
  };
  const { pipeline } = body.plan;
  return {
    ...body,
    plan: {
      ...body.plan,
      pipeline: pipeline === undefined ? undefined : (fromPortable(pipeline) as PipelineState),
    },
  };
}

/** A range's labels (and ids), as the last pass kept them, in row order. */
export async function readLabelsPart(
  folder: string,
  index: number,
  keyring: Keyring,
): Promise<{ labels: Int32Array; ids: string[] | undefined }> {
  const body = JSON.parse((await readSealed(join(folder, labelsFile(index)), keyring)).toString('utf8')) as {
    labels: number[];
    ids?: string[];
  };
  return { labels: Int32Array.from(body.labels), ids: body.ids };
}

/** The bytes a range's kept features take. */
export function featureBytes(range: PlannedRange, d: number): number {
  return range.rows * d * 4;
}

/** What a range task answers: the state its pass merges. */
export type RangeAnswer =
  | { readonly stage: 'features'; readonly moments: ReturnType<RunningMoments['toJSON']> }
  | { readonly stage: 'lloyd'; readonly sums: ReturnType<LloydSums['toJSON']> }
  | {
      readonly stage: 'assign';
      readonly moments: ReturnType<ClusterMoments['toJSON']>;
      readonly contingency: ReturnType<ContingencyCounts['toJSON']> | undefined;
    };

/** A reader over features held in memory. */
function memoryReader(features: Float32Array, d: number): FeatureReader {
  let at = 0;
  return {
    async read(rows) {
      const out = features.subarray(at * d, (at + rows) * d);
      at += rows;
      return out;
    },
  };
}

/**
 * Runs one range task on `backend` (the one the task names) with the tenant's keyring: reads its
 * range, the plan and, past the first pass, its range's kept features; writes what it keeps;
 * answers its state.
 */
export async function runRangeTask(
  task: RangeTask,
  backend: Backend,
  keyring: Keyring,
  signal: AbortSignal | undefined,
): Promise<RangeAnswer> {
  const folder = attemptDir(task.dir, task.attempt);
  const { columns, ...shape } = await readPlan(folder, keyring);
  const file = await openChunked(task.input, task.config.security);
  if (!file) throw new ConfigError(`${task.input} is not a file this worker can read by ranges`);
  try {
    const job: RangeJob = {
      ...shape,
      file,
      options: readOptions(task.config, shape.plan.imputeWith, columns),
    };
    const pass = { chunkRows: task.chunkRows, signal };
    const { range } = task;
    if (task.stage === 'features') {
      const kept = new Float32Array(range.rows * job.d);
      let at = 0;
      const moments = await encodeRange(backend, job, range, pass, async (f) => {
        kept.set(f, at);
        at += f.length;
      });
      if (at !== kept.length)
        throw new DataError(
          'NEUROCLUSTER_ERR_DATA_READ',
          `range ${range.index} of ${task.input} holds ${at / job.d} rows where the survey counted ${range.rows}: the file changed while the job ran`,
        );
      await writeSealed(join(folder, featuresFile(range.index)), new Uint8Array(kept.buffer), keyring);
      return { stage: 'features', moments: moments.toJSON() };
    }
    const bytes = await readSealed(join(folder, featuresFile(range.index)), keyring);
    if (bytes.length !== featureBytes(range, job.d))
      throw new SecurityError(`the features kept for range ${range.index} are not its ${range.rows} rows`, {
        integrity: true,
      });
    const features = memoryReader(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4), job.d);
    const centres = Float64Array.from(task.centres ?? []);
    if (centres.length !== job.k * job.d)
      throw new ConfigError(`the task's centres are not ${job.k} x ${job.d}`);
    if (task.stage === 'lloyd') {
      const sums = await lloydRange(backend, job, range.rows, features, centres, pass);
      return { stage: 'lloyd', sums: sums.toJSON() };
    }
    const assigned = await assignRange(backend, job, range, range.rows, features, centres, pass);
    const part = { labels: Array.from(assigned.labels), ...(assigned.ids ? { ids: assigned.ids } : {}) };
    await writeSealed(join(folder, labelsFile(range.index)), Buffer.from(JSON.stringify(part)), keyring);
    return {
      stage: 'assign',
      moments: assigned.moments.toJSON(),
      contingency: assigned.contingency?.toJSON(),
    };
  } finally {
    await file.close();
  }
}
