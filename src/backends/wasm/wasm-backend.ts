import { BackendError } from '../../core/errors.js';
import type * as M from '../../core/matrix.js';
import { philoxKey } from '../../core/philox.js';
import { assembleOnHost, momentsOnHost } from '../../linalg/blocks.js';
import {
  type Backend,
  checkDrive,
  checkLabels,
  checkReadout,
  type RecurrentWeights,
  type ReservoirRun,
  readoutBlocks,
  type SpikingRun,
} from '../backend.js';
import { splitRows, type Task, WorkerPool } from './pool.js';
import { WASM_KERNELS } from './wasm.generated.js';

const PAGE = 65536;
/** Addresses below this stay unused, so that 0 can mean "no such array" to a kernel. */
const BASE = 1024;

/**
 * Bump allocation in the shared memory for one call, above one resident matrix kept between calls
 * (K-means passes the same points at every step: they are copied in once); grows the memory as
 * needed.
 */
class Arena {
  /** The first address a call may use: just above the resident matrix. */
  private floor = BASE;
  private top = BASE;
  private resident: { readonly key: WeakRef<object>; readonly at: number } | undefined;
  /** A K-means run's label state, just above the resident matrix (see {@link keepLabels}). */
  private labels: LabelState | undefined;

  constructor(private readonly memory: WebAssembly.Memory) {}

  alloc(bytes: number): number {
    const at = Math.ceil(this.top / 16) * 16;
    this.top = at + Math.max(4, bytes);
    const short = this.top - this.memory.buffer.byteLength;
    if (short > 0) {
      try {
        this.memory.grow(Math.ceil(short / PAGE));
      } catch (cause) {
        throw new BackendError(
          `the WASM memory cannot grow to ${this.top} bytes`,
          'NEUROCLUSTER_ERR_OUT_OF_MEMORY',
          { cause },
        );
      }
    }
    return at;
  }

  /**
   * `bytes` on cache lines of their own (64-byte aligned and padded), for what one worker writes
   * while others write beside it: shared lines would pass back and forth between the cores.
   */
  allocLines(bytes: number): number {
    const at = this.alloc(Math.ceil(bytes / 64) * 64 + 64);
    return Math.ceil(at / 64) * 64;
  }

  /**
   * The address of `data` as the call's resident matrix: where it already is if the last call's
   * was the same array (inputs are immutable by contract), else copied in. First thing in a call.
   */
  keep(data: M.Floats): number {
    if (this.top !== this.floor) throw new Error('keep() must come before any allocation of the call');
    if (this.resident?.key.deref() === data) return this.resident.at;
    this.resident = undefined;
    this.labels = undefined;
    this.floor = this.top = BASE;
    const at = this.put(data);
    this.floor = this.top;
    this.resident = { key: new WeakRef(data), at };
    return at;
  }

  /**
   * The label state of the K-means run that owns `labels` (the run's host array, which a device
   * backend leaves alone): two int32 buffers beside the resident matrix, the last pass's labels and
   * room for the next, copied in the first time the run is seen and kept while the same matrix is
   * resident. Right after {@link keep}.
   */
  keepLabels(labels: Int32Array): LabelState {
    if (this.labels?.key.deref() === labels) return this.labels;
    if (this.top !== this.floor) throw new Error('keepLabels() must come right after keep()');
    // A new run: its buffers replace the last run's, which were the last thing under the floor.
    if (this.labels) this.floor = this.top = this.labels.start;
    const start = this.top;
    const state = new LabelState(
      new WeakRef(labels),
      start,
      this.put(labels, 'i32'),
      this.alloc(4 * labels.length),
    );
    this.floor = this.top;
    this.labels = state;
    return state;
  }

  /** Copies `data` in as float32 (or int32 / uint32 for integer arrays); returns its address. */
  put(data: ArrayLike<number>, type: 'f32' | 'i32' | 'u32' = 'f32'): number {
    const at = this.alloc(4 * data.length);
    const buffer = this.memory.buffer;
    const view =
      type === 'f32'
        ? new Float32Array(buffer, at, data.length)
        : type === 'i32'
          ? new Int32Array(buffer, at, data.length)
          : new Uint32Array(buffer, at, data.length);
    view.set(data);
    return at;
  }

  f32(at: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, at, length).slice();
  }

  f64(at: number, length: number): Float64Array {
    return new Float64Array(this.memory.buffer, at, length).slice();
  }

  i32(at: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, at, length).slice();
  }

  reset(): void {
    this.top = this.floor;
  }
}

/**
 * One K-means run's labels in the shared memory: a pass reads `previous` and writes `next`, and
 * only a pass that completed flips them, so a task run again (after a worker failed) reads the
 * same labels as the first try.
 */
class LabelState {
  constructor(
    readonly key: WeakRef<Int32Array>,
    /** Where the state begins: everything from here up belongs to it. */
    readonly start: number,
    public previous: number,
    public next: number,
  ) {}

  flip(): void {
    [this.previous, this.next] = [this.next, this.previous];
  }
}

/**
 * Centroids transposed to d x kPad (kPad: k rounded up to 4), the padding NaN so that it never
 * wins a comparison: the layout in which one SIMD lane holds one centroid.
 */
function transposedCentroids(centroids: M.Matrix): { data: Float32Array; kPad: number } {
  const { rows: k, cols: d } = centroids;
  const kPad = Math.ceil(k / 4) * 4;
  const data = new Float32Array(d * kPad).fill(Number.NaN);
  for (let j = 0; j < k; j++) for (let t = 0; t < d; t++) data[t * kPad + j] = centroids.data[j * d + t]!;
  return { data, kPad };
}

/** CSR pointers of recurrent weights (0 for dense), with the values as float32. */
function recurrentArgs(arena: Arena, w: RecurrentWeights): [number, number, number] {
  if (w.kind === 'dense') return [arena.put(w.matrix.data), 0, 0];
  return [arena.put(w.values), arena.put(w.rowPtr, 'i32'), arena.put(w.colIdx, 'i32')];
}

export class WasmBackend implements Backend {
  readonly name = 'wasm' as const;
  readonly precision = 'float32' as const;
  readonly device: string;
  private readonly memory: WebAssembly.Memory;
  private readonly arena: Arena;
  private readonly pool: WorkerPool;
  /** Calls run one after another: they share the arena. */
  private queue: Promise<unknown> = Promise.resolve();
  private crashNext = false;

  constructor(readonly threads: number) {
    this.memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    this.arena = new Arena(this.memory);
    const module = new WebAssembly.Module(Buffer.from(WASM_KERNELS, 'base64'));
    this.pool = new WorkerPool(module, this.memory, threads);
    this.device = `CPU (WASM SIMD, ${threads} worker thread${threads === 1 ? '' : 's'})`;
  }

  /** Runs `work` alone, with a fresh arena, and frees the arena after. */
  private exclusive<T>(work: (arena: Arena) => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      try {
        return await work(this.arena);
      } finally {
        this.arena.reset();
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** One task per worker over its share of [start, end): `args(r0, r1, worker)`. */
  private async split(
    start: number,
    end: number,
    fn: string,
    args: (r0: number, r1: number, w: number) => number[],
  ) {
    const shares = splitRows(end - start, this.pool.size).map(([a, b]) => [start + a, start + b] as const);
    const crash = this.crashNext;
    this.crashNext = false;
    const tasks: Task[] = shares.map(([r0, r1], w) => ({ fn, args: args(r0, r1, w), crash }));
    await this.pool.all(tasks);
    return shares.length;
  }

  matmul(a: M.Matrix, b: M.Matrix, bias?: M.Floats): Promise<M.Matrix> {
    if (a.cols !== b.rows) throw new RangeError(`matmul: ${a.rows}x${a.cols} @ ${b.rows}x${b.cols}`);
    if (bias && bias.length !== b.cols)
      throw new RangeError(`matmul: bias length ${bias.length} != ${b.cols}`);
    return this.exclusive(async (arena) => {
      const [pa, pb] = [arena.put(a.data), arena.put(b.data)];
      const pbias = bias ? arena.put(bias) : 0;
      const pc = arena.alloc(4 * a.rows * b.cols);
      await this.split(0, a.rows, 'matmul', (r0, r1) => [pa, pb, pbias, pc, a.cols, b.cols, r0, r1]);
      return { rows: a.rows, cols: b.cols, data: arena.f32(pc, a.rows * b.cols) };
    });
  }

  pairwiseDistances(a: M.Matrix, b: M.Matrix, options: { squared?: boolean } = {}): Promise<M.Matrix> {
    if (a.cols !== b.cols) throw new RangeError(`pairwiseDistances: widths differ (${a.cols} vs ${b.cols})`);
    return this.exclusive(async (arena) => {
      // b is the resident one: K-means++ measures candidates against all the points.
      const pb = arena.keep(b.data);
      const pa = arena.put(a.data);
      const out = arena.alloc(4 * a.rows * b.rows);
      const squared = options.squared ? 1 : 0;
      await this.split(0, a.rows, 'pairwise', (r0, r1) => [pa, pb, out, a.cols, b.rows, squared, r0, r1]);
      return { rows: a.rows, cols: b.rows, data: arena.f32(out, a.rows * b.rows) };
    });
  }

  kmeansAssign(points: M.Matrix, centroids: M.Matrix): Promise<M.Assignment> {
    if (points.cols !== centroids.cols)
      throw new RangeError(`kmeansAssign: widths differ (${points.cols} vs ${centroids.cols})`);
    return this.exclusive(async (arena) => {
      const n = points.rows;
      const ct = transposedCentroids(centroids);
      const p = arena.keep(points.data);
      const c = arena.put(ct.data);
      const [labels, dist] = [arena.alloc(4 * n), arena.alloc(4 * n)];
      await this.split(0, n, 'assign', (r0, r1) => [p, c, labels, dist, points.cols, ct.kPad, r0, r1]);
      return { labels: arena.i32(labels, n), distances: Float64Array.from(arena.f32(dist, n)) };
    });
  }

  /** Adds up the workers' float64 sums and counts (and stats), in worker order. */
  private combine(
    arena: Arena,
    parts: number,
    at: { sums: number; counts: number; stats?: number }[],
    kd: number,
    k: number,
  ) {
    const sums = new Float64Array(kd);
    const counts = new Float64Array(k);
    const stats = new Float64Array(2);
    for (let w = 0; w < parts; w++) {
      const s = arena.f64(at[w]!.sums, kd);
      const c = arena.f64(at[w]!.counts, k);
      for (let i = 0; i < kd; i++) sums[i]! += s[i]!;
      for (let i = 0; i < k; i++) counts[i]! += c[i]!;
      if (at[w]!.stats !== undefined) {
        const st = arena.f64(at[w]!.stats!, 2);
        stats[0]! += st[0]!;
        stats[1]! += st[1]!;
      }
    }
    return { sums, counts, stats };
  }

  /** Per-worker float64 accumulators, each on cache lines of its own. */
  private accumulators(arena: Arena, kd: number, k: number) {
    return Array.from({ length: this.pool.size }, () => ({
      sums: arena.allocLines(8 * kd),
      counts: arena.allocLines(8 * k),
      stats: arena.allocLines(16),
    }));
  }

  kmeansReduce(points: M.Matrix, labels: Int32Array, k: number): Promise<M.ClusterSums> {
    checkLabels(labels, points.rows, k, 'kmeansReduce');
    return this.exclusive(async (arena) => {
      const d = points.cols;
      const p = arena.keep(points.data);
      const l = arena.put(labels, 'i32');
      const acc = this.accumulators(arena, k * d, k);
      const parts = await this.split(0, points.rows, 'reduce', (r0, r1, w) => [
        p,
        l,
        acc[w]!.sums,
        acc[w]!.counts,
        d,
        k,
        r0,
        r1,
      ]);
      const { sums, counts } = this.combine(
        arena,
        parts,
        acc.map(({ sums, counts }) => ({ sums, counts })),
        k * d,
        k,
      );
      return { sums, counts };
    });
  }

  kmeansStep(points: M.Matrix, centroids: M.Matrix, labels: Int32Array): Promise<M.LloydStep> {
    if (points.cols !== centroids.cols)
      throw new RangeError(`kmeansStep: widths differ (${points.cols} vs ${centroids.cols})`);
    if (labels.length !== points.rows)
      throw new RangeError(`kmeansStep: ${labels.length} labels for ${points.rows} points`);
    return this.exclusive(async (arena) => {
      const { rows: n, cols: d } = points;
      const k = centroids.rows;
      const ct = transposedCentroids(centroids);
      const p = arena.keep(points.data);
      // The run's labels stay here between passes: no copy in or out per pass.
      const state = arena.keepLabels(labels);
      const c = arena.put(ct.data);
      const acc = this.accumulators(arena, k * d, k);
      const parts = await this.split(0, n, 'lloyd', (r0, r1, w) => [
        p,
        c,
        state.previous,
        state.next,
        acc[w]!.sums,
        acc[w]!.counts,
        acc[w]!.stats,
        d,
        k,
        ct.kPad,
        r0,
        r1,
      ]);
      state.flip();
      const { sums, counts, stats } = this.combine(arena, parts, acc, k * d, k);
      return { sums, counts, inertia: stats[0]!, changed: stats[1]! };
    });
  }

  clusterDistanceSums(
    points: M.Matrix,
    labels: Int32Array,
    k: number,
    rowStart: number,
    rowEnd: number,
  ): Promise<Float64Array> {
    checkLabels(labels, points.rows, k, 'clusterDistanceSums');
    return this.exclusive(async (arena) => {
      const { rows: n, cols: d } = points;
      const p = arena.keep(points.data);
      const l = arena.put(labels, 'i32');
      const out = arena.alloc(8 * (rowEnd - rowStart) * k);
      await this.split(rowStart, rowEnd, 'clusterSums', (r0, r1) => [p, l, out, d, n, k, rowStart, r0, r1]);
      return arena.f64(out, (rowEnd - rowStart) * k);
    });
  }

  reservoirRun(run: ReservoirRun): Promise<M.Matrix> {
    checkDrive(run, run.inputWeights);
    const { blocksAt, washout } = checkReadout(run.readout, run.steps);
    return this.exclusive(async (arena) => {
      const { inputs, steps, readout } = run;
      const r = run.inputWeights.cols;
      const blocks = readoutBlocks(readout);
      const width = r * blocks;
      const starts = new Int32Array(steps + 1);
      blocksAt.forEach((ids, t) => {
        starts[t + 1] = starts[t]! + ids.length;
      });
      const u = arena.put(inputs.data);
      const wIn = arena.put(run.inputWeights.data);
      const bias = arena.put(run.bias ?? new Float32Array(r));
      const [w, rowPtr, colIdx] = recurrentArgs(arena, run.recurrent);
      const blockStart = arena.put(starts, 'i32');
      const blockIds = arena.put(blocksAt.flat(), 'i32');
      const times = readout.times?.length ?? 0;
      const lastBlock = readout.last ? times : -1;
      const meanBlock = readout.mean ? blocks - 1 : -1;
      const out = arena.alloc(4 * inputs.rows * width);
      // Per worker: four state vectors of one sample, then (for blocks of four samples) four r-wide
      // f32x4 arrays and one row.
      const scratch = Array.from({ length: this.pool.size }, () =>
        arena.allocLines(4 * (4 * r) + 16 * 4 * r + 4 * r),
      );
      // biome-ignore format: the kernel's argument list, one line per group
      await this.split(0, inputs.rows, 'reservoir', (r0, r1, k) => [
        u, inputs.cols, run.inputDim, steps, run.sequence ? 1 : 0,
        wIn, bias, r, w, rowPtr, colIdx,
        run.leak, washout, blockStart, blockIds, lastBlock, meanBlock,
        out, width, scratch[k]!, r0, r1,
      ]);
      return { rows: inputs.rows, cols: width, data: arena.f32(out, inputs.rows * width) };
    });
  }

  spikingRun(run: SpikingRun): Promise<M.Matrix> {
    checkDrive(run, run.inputWeights);
    const { inputs, steps, windows } = run;
    if (!Number.isInteger(windows) || windows < 1 || windows > steps) {
      throw new RangeError(`windows must be in [1, ${steps}], got ${windows}`);
    }
    if (run.sampleKeys.length !== inputs.rows) throw new RangeError('one sample key per row is needed');
    return this.exclusive(async (arena) => {
      const r = run.inputWeights.cols;
      const dim = run.inputDim;
      const width = r * windows;
      const [key0, key1] = philoxKey(run.seed);
      const u = arena.put(inputs.data);
      const keys = arena.put(run.sampleKeys, 'u32');
      const wIn = arena.put(run.inputWeights.data);
      const bias = arena.put(run.bias ?? new Float32Array(r));
      const [w, rowPtr, colIdx] = run.recurrent ? recurrentArgs(arena, run.recurrent) : [0, 0, 0];
      const readout = { counts: 0, rates: 1, 'first-spike': 2, trace: 3 }[run.readout];
      const out = arena.alloc(4 * inputs.rows * width);
      const scratch = Array.from({ length: this.pool.size }, () => arena.allocLines(4 * (5 * r + dim + 4)));
      // biome-ignore format: the kernel's argument list, one line per group
      await this.split(0, inputs.rows, 'spiking', (r0, r1, k) => [
        u, inputs.cols, dim, steps, run.sequence ? 1 : 0, run.encoding === 'rate' ? 1 : 0,
        keys, key0, key1, wIn, bias, r, w, rowPtr, colIdx, run.recurrent ? 1 : 0,
        run.decay, run.threshold, run.reset, run.refractorySteps, run.traceDecay, readout, windows,
        out, scratch[k]!, r0, r1,
      ]);
      const data = arena.f32(out, inputs.rows * width);
      const scale = run.scale ?? 1;
      return {
        rows: inputs.rows,
        cols: width,
        data: scale === 1 ? data : Float64Array.from(data, (v) => v * scale),
      };
    });
  }

  /** Memory-bound host work that SIMD would not speed up: the reference's own code. */
  async columnMoments(m: M.Features, order?: Int32Array): Promise<M.Moments> {
    return momentsOnHost(m, order);
  }

  /** A gather and a multiply-add per value: the reference's own code, as for the moments. */
  async assembleBlocks(blocks: readonly M.FeatureBlock[], order?: Int32Array): Promise<M.Matrix> {
    return assembleOnHost(blocks, order);
  }

  /**
   * The 128-bit SIMD roofline of this machine, GFLOP/s: every worker at once runs multiplies and
   * adds on independent registers, no memory traffic (kernels/wasm `peak`); the best of `reps`.
   */
  roofline(reps = 3, rounds = 20_000_000): Promise<number> {
    return this.exclusive(async (arena) => {
      const outs = Array.from({ length: this.pool.size }, () => arena.allocLines(4));
      let best = 0;
      for (let rep = 0; rep < reps; rep++) {
        const t0 = performance.now();
        await this.pool.all(outs.map((out) => ({ fn: 'peak', args: [rounds, out] })));
        const seconds = (performance.now() - t0) / 1000;
        best = Math.max(best, (this.pool.size * rounds * 48) / seconds / 1e9);
      }
      return best;
    });
  }

  /** Fault injection: the workers of the next kernel call die mid-task, on its retry too. */
  injectWorkerCrash(): void {
    this.crashNext = true;
  }

  async dispose(): Promise<void> {
    await this.queue;
    await this.pool.close();
  }
}
