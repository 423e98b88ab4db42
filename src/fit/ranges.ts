/**
 * The passes of a streamed fit (src/fit/streamed.ts) as work on ranges of the file's records. A
 * range is `distributed.taskRows` records that a reader can start at alone (src/data/chunked.ts);
 * each pass maps every range to a mergeable state, read in chunks of `chunkRows` rows from the
 * range's start, and the states are merged in range order. So the same plan gives the same
 * floating-point sums wherever the ranges run: one after the other in this process
 * ({@link localRanges}), or as tasks on many machines (src/distributed/split.ts).
 *
 *   features  a range's rows cleaned and encoded under the sample's plan; the features are kept
 *             for the next passes, their column moments returned
 *   lloyd     a Lloyd pass's per-cluster sums over a range's features, from the given centres
 *   assign    a range's labels under the final centres, the clusters' moments and the contingency
 *             with the ground truth
 */
import type { Backend } from '../backends/backend.js';
import { ClusterMoments, ContingencyCounts, LloydSums } from '../cluster/streamed.js';
import { throwIfAborted } from '../core/cancel.js';
import { requireFinite } from '../core/errors.js';
import type { ChunkedFile, RecordRange } from '../data/chunked.js';
import type { Dataset } from '../data/dataset.js';
import { asFloat32, bytesOf, type SpillFile } from '../data/spill.js';
import type { TableOptions } from '../data/table.js';
import { RunningMoments } from '../linalg/running.js';
import { featuresOf, type Plan } from './chunks.js';

/** A range as the survey found it: its records, and the rows it holds (records less those dropped). */
export interface PlannedRange extends RecordRange {
  readonly rows: number;
  /** The index of its first row among all rows (where its features start in a spill of all of them). */
  readonly firstRow: number;
}

/** How every range of one pass is read. */
export interface RangePass {
  readonly chunkRows: number;
  readonly signal: AbortSignal | undefined;
  /** Called with the rows of each chunk done (progress). */
  readonly onRows?: ((rows: number) => void) | undefined;
}

/** The last pass's state of one range. */
export interface AssignedRange {
  readonly labels: Int32Array;
  readonly ids: readonly string[] | undefined;
  readonly moments: ClusterMoments;
  readonly contingency: ContingencyCounts | undefined;
}

/** A range's features, read in order, `count` rows at a time. */
export interface FeatureReader {
  read(count: number): Promise<Float32Array>;
}

/** Where the passes run: every range in turn in this process, or as tasks on a queue. */
export interface RangeRunner {
  /** Encodes every range (keeping its features for the next passes); their moments, merged in order. */
  features(pass: RangePass): Promise<RunningMoments>;
  /** Lloyd pass `iteration` from `centres`: every range's sums, merged in order. */
  lloyd(iteration: number, centres: Float64Array, pass: RangePass): Promise<LloydSums>;
  /** The last pass under the final centres: each range's state handed to `each`, in range order. */
  assign(
    centres: Float64Array,
    pass: RangePass,
    each: (range: AssignedRange) => Promise<void>,
  ): Promise<void>;
  /** What the kept features take, in bytes. */
  readonly spilledBytes: number;
  /** Removes the kept features. */
  remove(): Promise<void>;
}

/** What every range's work shares: the file, its reading options and the fitted plan. */
export interface RangeJob {
  readonly file: ChunkedFile;
  readonly options: TableOptions;
  readonly plan: Plan;
  readonly method: string;
  readonly k: number;
  readonly d: number;
  /** Whether the file has ids or ground truth, which the last pass reads again. */
  readonly rereads: boolean;
  readonly hasTruth: boolean;
}

/** The features of one range, handed to `keep` chunk by chunk; their column moments. */
export async function encodeRange(
  backend: Backend,
  job: RangeJob,
  range: RecordRange | undefined,
  pass: RangePass,
  keep: (features: Float32Array) => Promise<void>,
): Promise<RunningMoments> {
  const moments = new RunningMoments(job.d);
  const { file, options, plan, method } = job;
  for await (const { data } of file.chunks(pass.chunkRows, options, pass.signal, undefined, range)) {
    throwIfAborted(pass.signal);
    if (data.n === 0) continue;
    const features = await featuresOf(backend, plan, data, pass.signal);
    const f32 = Float32Array.from(features.data);
    requireFinite(f32, method === 'kmeans' ? 'the cleaned input (as float32)' : 'the encoders');
    moments.add(f32, data.n);
    await keep(f32);
    pass.onRows?.(data.n);
  }
  return moments;
}

/** One Lloyd pass's sums over a range's `rows` features. */
export async function lloydRange(
  backend: Backend,
  job: RangeJob,
  rows: number,
  features: FeatureReader,
  centres: Float64Array,
  pass: RangePass,
): Promise<LloydSums> {
  const { k, d } = job;
  const sums = new LloydSums(k, d);
  const scratch = new Int32Array(Math.min(rows, pass.chunkRows));
  for (let done = 0; done < rows; ) {
    throwIfAborted(pass.signal);
    const count = Math.min(pass.chunkRows, rows - done);
    const points = { rows: count, cols: d, data: await features.read(count) };
    const labels = scratch.subarray(0, count).fill(-1);
    const step = await backend.kmeansStep(points, { rows: k, cols: d, data: centres }, labels);
    requireFinite([step.inertia], `K-means (${backend.name})`);
    sums.add(step);
    done += count;
    pass.onRows?.(count);
  }
  return sums;
}

/**
 * The last pass over one range: its labels under the final centres, the clusters' moments, and the
 * contingency with the truth. Ids and truth are read again from the file, alongside the features.
 */
export async function assignRange(
  backend: Backend,
  job: RangeJob,
  range: PlannedRange | undefined,
  rows: number,
  features: FeatureReader,
  centres: Float64Array,
  pass: RangePass,
): Promise<AssignedRange> {
  const { k, d } = job;
  const moments = new ClusterMoments(k, d);
  const contingency = job.hasTruth ? new ContingencyCounts(k) : undefined;
  const labels = new Int32Array(rows);
  const ids: string[] | undefined = job.rereads ? [] : undefined;
  let at = 0;
  const label = async (count: number, data: Dataset | undefined) => {
    const points = { rows: count, cols: d, data: await features.read(count) };
    const assigned = await backend.kmeansAssign(points, { rows: k, cols: d, data: centres });
    moments.add(points, assigned.labels, assigned.distances);
    if (contingency && data)
      contingency.add(
        data.truth!.map((t) => contingency.code(t)),
        assigned.labels,
      );
    labels.set(assigned.labels, at);
    if (ids && data?.ids) for (const id of data.ids) ids.push(id);
    at += count;
    pass.onRows?.(count);
  };
  if (job.rereads) {
    for await (const { data } of job.file.chunks(
      pass.chunkRows,
      job.options,
      pass.signal,
      undefined,
      range,
    )) {
      throwIfAborted(pass.signal);
      if (data.n > 0) await label(data.n, data);
    }
  } else {
    while (at < rows) {
      throwIfAborted(pass.signal);
      await label(Math.min(pass.chunkRows, rows - at), undefined);
    }
  }
  return { labels, ids: ids && ids.length > 0 ? ids : undefined, moments, contingency };
}

/** A range's features in a spill of all rows, from its first row on. */
function spillReader(spill: SpillFile, firstRow: number): FeatureReader {
  let at = firstRow;
  return {
    async read(count) {
      const bytes = await spill.read(at, count);
      at += count;
      return asFloat32(bytes);
    },
  };
}

/** The ranges run one after the other in this process, their features kept in one spill file in row order. */
export function localRanges(
  backend: Backend,
  job: RangeJob,
  ranges: readonly PlannedRange[],
  spill: SpillFile,
): RangeRunner {
  return {
    get spilledBytes() {
      return spill.rows * spill.bytesPerRow;
    },
    async features(how) {
      const all = new RunningMoments(job.d);
      for (const r of ranges) {
        all.merge(await encodeRange(backend, job, r, how, (f) => spill.append(bytesOf(f))));
      }
      return all;
    },
    async lloyd(_iteration, centres, how) {
      const all = new LloydSums(job.k, job.d);
      for (const r of ranges) {
        all.merge(await lloydRange(backend, job, r.rows, spillReader(spill, r.firstRow), centres, how));
      }
      return all;
    },
    async assign(centres, how, each) {
      for (const r of ranges) {
        await each(await assignRange(backend, job, r, r.rows, spillReader(spill, r.firstRow), centres, how));
      }
    },
    remove: () => spill.remove(),
  };
}

/** Groups a pass's chunks into ranges of `perRange` chunks: each range starts where its first chunk does. */
export class RangePlanner {
  private readonly ranges: PlannedRange[] = [];
  private chunks = 0;
  private rows = 0;

  constructor(private readonly perRange: number) {}

  /** Adds the next chunk of the pass. */
  add(chunk: { start: number; offset: number; line: number; records: number; rows: number }): void {
    const last = this.ranges.at(-1);
    const opens = !last || this.chunks % this.perRange === 0;
    this.chunks++;
    if (opens) {
      this.ranges.push({
        index: this.ranges.length,
        start: chunk.start,
        offset: chunk.offset,
        line: chunk.line,
        records: chunk.records,
        rows: chunk.rows,
        firstRow: this.rows,
      });
    } else {
      this.ranges[this.ranges.length - 1] = {
        ...last!,
        records: last!.records + chunk.records,
        rows: last!.rows + chunk.rows,
      };
    }
    this.rows += chunk.rows;
  }

  get planned(): readonly PlannedRange[] {
    return this.ranges;
  }
}

/**
 * Where the passes of one attempt on `backend` run when not here: a runner for the planned ranges
 * (src/distributed/split.ts), or undefined to run them in this process (a file it does not share out).
 */
export type SplitRanges = (
  backend: Backend,
  job: RangeJob,
  ranges: readonly PlannedRange[],
) => Promise<RangeRunner | undefined>;
