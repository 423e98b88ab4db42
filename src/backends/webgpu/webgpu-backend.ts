/**
 * The WebGPU backend: every kernel of the contract in WGSL (kernels/webgpu/), run through Dawn.
 *
 * Data crosses to the device as float32. Each kernel call records its dispatches into one command
 * buffer and reads its result back with one `mapAsync`: a reservoir or spiking run is one
 * submission per chunk of samples whatever the number of steps, a Lloyd pass one readback of
 * k x d + k + 2 numbers. Work that would pass the device-memory budget or a binding limit is split
 * into chunks of samples; weights, K-means points and label state stay resident between calls.
 * An encoder run asked to keep its output leaves it on the device (KeptFeatures), the moments and
 * the assembly read it there, and the assembled matrix stays as the device copy of the host
 * matrix returned, so the features go from the encoders to K-means without leaving the device.
 */

import { throwIfAborted } from '../../core/cancel.js';
import { BackendError } from '../../core/errors.js';
import {
  type Assignment,
  type ClusterSums,
  checkOrder,
  type DeviceMatrix,
  type FeatureBlock,
  type Features,
  type Floats,
  isDeviceMatrix,
  type LloydStep,
  type Matrix,
  type Moments,
} from '../../core/matrix.js';
import { philoxKey } from '../../core/philox.js';
import { assembleOnHost, checkBlocks, momentsOnHost } from '../../linalg/blocks.js';
import {
  type Backend,
  type BackendFactory,
  checkDrive,
  checkLabels,
  checkReadout,
  type KeepOption,
  type RecurrentWeights,
  type ReservoirRun,
  readoutBlocks,
  type SpikingRun,
} from '../backend.js';
import { guarded, MAP_READ, type OpenedDevice, openDevice, Usage, type WebGpuSettings } from './device.js';
import { bind, type Kernel, KernelCache, type KernelName } from './kernels.js';
import { paramsOf } from './params.js';
import { BufferPool, type PoolStats } from './pool.js';

const STORAGE_IN = Usage.STORAGE | Usage.COPY_DST;
const STORAGE_OUT = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;
const UNIFORM = Usage.UNIFORM | Usage.COPY_DST;
const READBACK = Usage.MAP_READ | Usage.COPY_DST;

/** Default device-memory budget when none is configured (the pool never holds more). */
export const DEFAULT_MEMORY_BUDGET_BYTES = 1024 * 1024 * 1024;
const MAX_GROUPS = 65535;
/** Workgroup-memory sizes the WGSL fixes (spiking.wgsl, kmeans.wgsl). */
const SPIKING_MAX_UNITS = 4096;
const SPIKING_MAX_INPUTS = 2048;
const KMEANS_MAX_K = 1024;
const MAX_BLOCKS_PER_STEP = 8;

/** Counts of what the backend asked of the device, for tests and metrics. */
export interface WebGpuCounters {
  submits: number;
  readbacks: number;
  dispatches: number;
}

const f32 = (data: Floats | Int32Array | Uint32Array): Float32Array =>
  data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);

function checkFinite(data: Float32Array, what: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      throw new BackendError(
        `${what}: the device returned a non-finite value at ${i}`,
        'NEUROCLUSTER_ERR_NUMERICAL',
      );
    }
  }
}

/** CSC (incoming weights per unit, rows ascending) of recurrent weights; values in CSC order. */
function toCsc(w: RecurrentWeights): { offsets: Uint32Array; values: Float32Array } {
  const size = w.kind === 'dense' ? w.matrix.rows : w.size;
  const rows: number[][] = Array.from({ length: size }, () => []);
  const vals: number[][] = Array.from({ length: size }, () => []);
  if (w.kind === 'dense') {
    const m = w.matrix.data;
    for (let i = 0; i < size; i++)
      for (let j = 0; j < size; j++)
        if (m[i * size + j] !== 0) {
          rows[j]!.push(i);
          vals[j]!.push(m[i * size + j]!);
        }
  } else {
    for (let i = 0; i < size; i++)
      for (let p = w.rowPtr[i]!; p < w.rowPtr[i + 1]!; p++) {
        rows[w.colIdx[p]!]!.push(i);
        vals[w.colIdx[p]!]!.push(w.values[p]!);
      }
  }
  const nnz = rows.reduce((s, r) => s + r.length, 0);
  const offsets = new Uint32Array(size + 1 + nnz);
  const values = new Float32Array(Math.max(1, nnz));
  let at = 0;
  for (let j = 0; j < size; j++) {
    offsets[j] = at;
    for (let q = 0; q < rows[j]!.length; q++) {
      offsets[size + 1 + at] = rows[j]![q]!;
      values[at++] = vals[j]![q]!;
    }
  }
  offsets[size] = at;
  return { offsets, values };
}

/** Weights packed into one float buffer (W_in, bias, recurrent), with where each part starts. */
function packWeights(inputWeights: Matrix, bias: Floats | undefined, recurrent: Float32Array | undefined) {
  const r = inputWeights.cols;
  const wInAt = 0;
  const biasAt = inputWeights.data.length;
  const wAt = biasAt + r;
  const packed = new Float32Array(wAt + (recurrent?.length ?? 0));
  packed.set(f32(inputWeights.data), wInAt);
  if (bias) packed.set(f32(bias), biasAt);
  if (recurrent) packed.set(recurrent, wAt);
  return { packed, wInAt, biasAt, wAt };
}

/**
 * Device buffers tied to host arrays: found by the array, returned to the pool when the array is
 * garbage-collected, or at once by {@link evictAll}.
 */
class Residency {
  private readonly buffers = new WeakMap<object, GPUBuffer>();
  private readonly keys = new Set<WeakRef<object>>();
  private readonly collected: FinalizationRegistry<{ buffer: GPUBuffer; key: WeakRef<object> }>;

  constructor(private readonly pool: BufferPool) {
    this.collected = new FinalizationRegistry(({ buffer, key }) => {
      this.keys.delete(key);
      this.pool.release(buffer);
    });
  }

  get(host: object): GPUBuffer | undefined {
    return this.buffers.get(host);
  }

  put(host: object, buffer: GPUBuffer): GPUBuffer {
    const key = new WeakRef(host);
    this.buffers.set(host, buffer);
    this.keys.add(key);
    this.collected.register(host, { buffer, key }, key);
    return buffer;
  }

  evictAll(): void {
    for (const key of this.keys) {
      const host = key.deref();
      const buffer = host && this.buffers.get(host);
      if (host && buffer) {
        this.buffers.delete(host);
        this.collected.unregister(key);
        this.pool.release(buffer);
      }
    }
    this.keys.clear();
  }
}

/** An encoder's output kept in one device buffer (float32, row-major) until read or released. */
class KeptFeatures implements DeviceMatrix {
  readonly backend = 'webgpu' as const;
  private freed = false;

  constructor(
    readonly owner: WebGpuBackend,
    readonly rows: number,
    readonly cols: number,
    private readonly held: GPUBuffer,
    private readonly reader: (kept: KeptFeatures) => Promise<Matrix>,
    private readonly free: (buffer: GPUBuffer) => void,
  ) {}

  /** The device buffer; a released one is a programming error. */
  get buffer(): GPUBuffer {
    if (this.freed) throw new Error('the kept features were released');
    return this.held;
  }

  read(): Promise<Matrix> {
    return this.reader(this);
  }

  release(): void {
    if (this.freed) return;
    this.freed = true;
    this.free(this.held);
  }
}

/** A matrix kept whole on the device takes at most 1 / RESIDENT_SHARE of the budget. */
const RESIDENT_SHARE = 4;

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu' as const;
  readonly precision = 'float32' as const;
  /** Encoder outputs asked to be kept stay on the device when they fit (see {@link keepable}). */
  readonly keepsOutputs = true;
  readonly device: string;
  /** True on a software adapter (SwiftShader, llvmpipe). */
  readonly software: boolean;
  readonly counters: WebGpuCounters = { submits: 0, readbacks: 0, dispatches: 0 };
  private readonly gpu: GPUDevice;
  /** Dawn's instance, held as long as the device (public so no linter takes it for dead code). */
  readonly instance: GPU;
  private readonly pool: BufferPool;
  private readonly kernels: KernelCache;
  /** Largest buffer one binding may see. */
  private readonly bindingLimit: number;
  private lostReason: string | undefined;
  /** Set by {@link timeKernels}. */
  private kernelTimer: { seconds: number } | undefined;
  /** Device copies of host arrays used again and again (K-means points), while those live. */
  private readonly copies: Residency;
  /** The label state of each Lloyd run, kept until its array is collected. */
  private readonly labelStates: Residency;

  /** Whether `auto` may take this backend although its adapter is a software one. */
  readonly allowSoftware: boolean;

  constructor(
    opened: OpenedDevice,
    { budgetBytes, allowSoftware = false }: { budgetBytes: number; allowSoftware?: boolean },
  ) {
    this.allowSoftware = allowSoftware;
    this.gpu = opened.device;
    this.instance = opened.gpu;
    this.device = `${opened.name}${opened.software ? ' (software)' : ''}`;
    this.software = opened.software;
    const limits = this.gpu.limits;
    this.bindingLimit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    this.pool = new BufferPool(this.gpu, budgetBytes, limits.maxBufferSize);
    this.copies = new Residency(this.pool);
    this.labelStates = new Residency(this.pool);
    this.kernels = new KernelCache(this.gpu);
    void this.gpu.lost.then((info) => {
      this.lostReason = info.message || info.reason;
    });
  }

  /** Bytes in use, allocated and at peak in the buffer pool. */
  memory(): PoolStats {
    return this.pool.stats();
  }

  /** Fails fast, typed, once the device is lost. */
  private check(): void {
    if (this.lostReason !== undefined) {
      throw new BackendError(
        `the WebGPU device was lost: ${this.lostReason}`,
        'NEUROCLUSTER_ERR_DEVICE_LOST',
      );
    }
  }

  /**
   * The start of every kernel call: checks the device, drops the cached device copies when they
   * hold more than half the budget (they are uploaded again when next needed), and gets the
   * pipelines.
   */
  private async begin(name: KernelName): Promise<Kernel> {
    this.check();
    if (this.pool.stats().bytesInUse > this.pool.budgetBytes / 2) this.copies.evictAll();
    return this.kernels.get(name);
  }

  /**
   * Rows per chunk so that `bytesPerRow` x rows plus `fixedBytes` stay within the budget, every
   * per-row buffer (`widestRowBytes` a row) within the binding limit, and at most `maxRows` (a
   * dispatch limit); a multiple of `align` unless all rows fit.
   */
  private chunkRows(
    n: number,
    bytesPerRow: number,
    widestRowBytes: number,
    fixedBytes: number,
    what: string,
    { align = 1, maxRows = Number.POSITIVE_INFINITY } = {},
  ): number {
    const room = this.pool.budgetBytes - this.pool.stats().bytesInUse - fixedBytes;
    // Pool buffers round up to a power of two: plan with half the room.
    let rows = Math.min(
      Math.floor(room / 2 / bytesPerRow),
      Math.floor(this.bindingLimit / widestRowBytes),
      maxRows,
    );
    if (rows >= n) return n;
    rows = Math.floor(rows / align) * align;
    if (rows < 1) {
      throw new BackendError(
        `${what}: one chunk of ${align} samples needs ${align * bytesPerRow + fixedBytes} bytes, ` +
          `more than the device-memory budget of ${this.pool.budgetBytes} bytes allows`,
        'NEUROCLUSTER_ERR_OUT_OF_MEMORY',
      );
    }
    return rows;
  }

  private upload(data: ArrayBufferView & { byteLength: number }, usage: number, label: string): GPUBuffer {
    const buffer = this.pool.acquire(Math.max(4, data.byteLength), usage, label);
    this.gpu.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    return buffer;
  }

  private uniform(words: ArrayBuffer, label: string): GPUBuffer {
    return this.upload(new Uint8Array(words), UNIFORM, label);
  }

  /** A device copy of `data` kept while the host array lives (inputs are immutable by contract). */
  private residentCopy(data: Floats, label: string): GPUBuffer {
    return this.copies.get(data) ?? this.copies.put(data, this.upload(f32(data), STORAGE_IN, label));
  }

  /** One command buffer: `before` (clears), the compute pass `record` fills, then `after` (copies). */
  private commands(
    what: string,
    record?: (pass: GPUComputePassEncoder, encoder: GPUCommandEncoder) => void,
    before?: (encoder: GPUCommandEncoder) => void,
    after?: (encoder: GPUCommandEncoder) => void,
  ): GPUCommandBuffer {
    const encoder = this.gpu.createCommandEncoder({ label: what });
    before?.(encoder);
    if (record) {
      const pass = encoder.beginComputePass({ label: what });
      record(pass, encoder);
      pass.end();
    }
    after?.(encoder);
    return encoder.finish();
  }

  /** Records work into one command buffer and submits it; `after` may add copies behind the pass. */
  private async submit(
    what: string,
    record: (pass: GPUComputePassEncoder, encoder: GPUCommandEncoder) => void,
    before?: (encoder: GPUCommandEncoder) => void,
    after?: (encoder: GPUCommandEncoder) => void,
  ): Promise<void> {
    this.check();
    await this.timed(() =>
      guarded(this.gpu, what, () => {
        this.gpu.queue.submit([this.commands(what, record, before, after)]);
        this.counters.submits++;
      }),
    );
  }

  /**
   * Records work into one command buffer, copies the named buffers into one staging buffer,
   * submits once and maps once; returns the bytes of each copy. Under {@link timeKernels} the
   * copies go in a second submission, so that the timed one holds the kernels alone.
   */
  private async run(
    what: string,
    record: (pass: GPUComputePassEncoder, encoder: GPUCommandEncoder) => void,
    reads: readonly { buffer: GPUBuffer; bytes: number; offset?: number }[],
    before?: (encoder: GPUCommandEncoder) => void,
  ): Promise<ArrayBuffer[]> {
    const total = reads.reduce((s, r) => s + Math.ceil(r.bytes / 4) * 4, 0);
    const staging = this.pool.acquire(Math.max(4, total), READBACK, `${what} readback`);
    const copy = (encoder: GPUCommandEncoder) => {
      let at = 0;
      for (const r of reads) {
        encoder.copyBufferToBuffer(r.buffer, r.offset ?? 0, staging, at, Math.ceil(r.bytes / 4) * 4);
        at += Math.ceil(r.bytes / 4) * 4;
      }
    };
    try {
      if (this.kernelTimer) {
        await this.submit(what, record, before);
        await guarded(this.gpu, what, () =>
          this.gpu.queue.submit([this.commands(`${what} readback`, undefined, undefined, copy)]),
        );
      } else {
        await this.submit(what, record, before, copy);
      }
      this.counters.readbacks++;
      try {
        await staging.mapAsync(MAP_READ, 0, Math.max(4, total));
      } catch (cause) {
        this.check();
        throw new BackendError(`${what}: reading the result back failed`, 'NEUROCLUSTER_ERR_KERNEL', {
          cause,
        });
      }
      const mapped = staging.getMappedRange(0, Math.max(4, total));
      const out: ArrayBuffer[] = [];
      let at = 0;
      for (const r of reads) {
        out.push(mapped.slice(at, at + r.bytes));
        at += Math.ceil(r.bytes / 4) * 4;
      }
      staging.unmap();
      return out;
    } finally {
      this.pool.release(staging);
    }
  }

  /**
   * Under {@link timeKernels}: waits for the queue (pending uploads included) to drain, submits,
   * and adds the time to the device finishing the submission to the timer.
   */
  private async timed(submitting: () => Promise<void>): Promise<void> {
    if (!this.kernelTimer) return submitting();
    await this.gpu.queue.onSubmittedWorkDone();
    const t0 = performance.now();
    await submitting();
    await this.gpu.queue.onSubmittedWorkDone();
    this.kernelTimer.seconds += (performance.now() - t0) / 1000;
  }

  /**
   * Runs `work` and returns the seconds its kernels took with their data already on the device,
   * as PyTorch is timed with its tensors resident: each submission is timed alone, after the
   * uploads before it, without the readback after it. For benchmarks: it waits for the device
   * at every submission.
   */
  async timeKernels(work: () => Promise<unknown>): Promise<number> {
    this.kernelTimer = { seconds: 0 };
    try {
      await work();
      return this.kernelTimer.seconds;
    } finally {
      this.kernelTimer = undefined;
    }
  }

  private dispatch(
    pass: GPUComputePassEncoder,
    kernel: Kernel,
    groups: GPUBindGroup[],
    x: number,
    y = 1,
    z = 1,
  ) {
    pass.setPipeline(kernel.pipeline);
    groups.forEach((g, i) => {
      pass.setBindGroup(i, g);
    });
    pass.dispatchWorkgroups(x, y, z);
    this.counters.dispatches++;
  }

  async matmul(a: Matrix, b: Matrix, bias?: Floats): Promise<Matrix> {
    if (a.cols !== b.rows) throw new RangeError(`matmul: ${a.rows}x${a.cols} @ ${b.rows}x${b.cols}`);
    if (bias && bias.length !== b.cols)
      throw new RangeError(`matmul: bias length ${bias.length} != ${b.cols}`);
    const { rows: m, cols: k } = a;
    const n = b.cols;
    const kernel = await this.begin('matmul');
    const out = new Float32Array(m * n);
    // A left operand already on the device (the assembled features PCA projects) is bound there,
    // in chunks on 64-row boundaries; a projection of it made in one chunk stays on the device as
    // the copy of the returned matrix, for the K-means kernels that take it next.
    const residentA = this.copies.get(a.data);
    let kept: GPUBuffer | undefined;
    const bBuf = this.upload(f32(b.data), STORAGE_IN, 'matmul b');
    const biasBuf = this.upload(bias ? f32(bias) : new Float32Array(1), STORAGE_IN, 'matmul bias');
    try {
      const rows = this.chunkRows(m, 4 * ((residentA ? 0 : k) + 2 * n), 4 * Math.max(k, n), 0, 'matmul', {
        maxRows: MAX_GROUPS * 64,
        align: residentA ? 64 : 1,
      });
      for (let start = 0; start < m; start += rows) {
        const count = Math.min(rows, m - start);
        const aBuf = residentA
          ? undefined
          : this.upload(f32(a.data.subarray(start * k, (start + count) * k)), STORAGE_IN, 'matmul a');
        const aSlice = aBuf ?? { buffer: residentA!, offset: 4 * start * k, size: 4 * count * k };
        const cBuf = this.pool.acquire(4 * count * n, STORAGE_OUT, 'matmul c');
        if (residentA && count === m) kept = cBuf;
        const params = this.uniform(
          paramsOf('matmul', { m: count, n, k, has_bias: bias ? 1 : 0 }),
          'matmul params',
        );
        try {
          const group = bind(this.gpu, kernel, 0, [params, aSlice, bBuf, biasBuf, cBuf]);
          const [bytes] = await this.run(
            'matmul',
            (pass) => this.dispatch(pass, kernel, [group], Math.ceil(n / 64), Math.ceil(count / 64)),
            [{ buffer: cBuf, bytes: 4 * count * n }],
          );
          out.set(new Float32Array(bytes!), start * n);
        } finally {
          this.pool.release(params);
          if (aBuf) this.pool.release(aBuf);
          if (cBuf !== kept) this.pool.release(cBuf);
        }
      }
      checkFinite(out, 'matmul');
    } catch (error) {
      if (kept) this.pool.release(kept);
      throw error;
    } finally {
      this.pool.release(bBuf, biasBuf);
    }
    if (kept) this.copies.put(out, kept);
    return { rows: m, cols: n, data: out };
  }

  async pairwiseDistances(a: Matrix, b: Matrix, options: { squared?: boolean } = {}): Promise<Matrix> {
    if (a.cols !== b.cols) throw new RangeError(`pairwiseDistances: widths differ (${a.cols} vs ${b.cols})`);
    const { rows: m, cols: d } = a;
    const n = b.rows;
    const kernel = await this.begin('pairwise');
    const out = new Float32Array(m * n);
    // b stays on the device (K-means++ passes the points again and again) when it fits easily;
    // else it goes up block by block. Blocks stay within one dispatch dimension (16 rows a
    // workgroup) and start on 64-row boundaries, so a block of the resident b binds aligned.
    const bBytes = 4 * b.data.length;
    const resident = this.bindable(bBytes) ? this.residentCopy(b.data, 'pairwise b') : undefined;
    let bBlock = Math.min(n, 64 * Math.floor((MAX_GROUPS * 16) / 64));
    if (!resident) bBlock = Math.max(1, Math.min(bBlock, Math.floor(this.pool.budgetBytes / 8 / (4 * d))));
    for (let bStart = 0; bStart < n; bStart += bBlock) {
      const nb = Math.min(bBlock, n - bStart);
      const uploaded = resident
        ? undefined
        : this.upload(f32(b.data.subarray(bStart * d, (bStart + nb) * d)), STORAGE_IN, 'pairwise b');
      try {
        const bSlice = resident ? { buffer: resident, offset: 4 * bStart * d, size: 4 * nb * d } : uploaded!;
        const rows = this.chunkRows(m, 4 * (d + 2 * nb), 4 * Math.max(d, nb), 0, 'pairwiseDistances', {
          maxRows: MAX_GROUPS * 16,
        });
        for (let start = 0; start < m; start += rows) {
          const count = Math.min(rows, m - start);
          const aBuf = this.upload(
            f32(a.data.subarray(start * d, (start + count) * d)),
            STORAGE_IN,
            'pairwise a',
          );
          const outBuf = this.pool.acquire(4 * count * nb, STORAGE_OUT, 'pairwise out');
          const params = this.uniform(
            paramsOf('distances', { m: count, n: nb, d, flag: options.squared ? 1 : 0, k: 0 }),
            'pairwise params',
          );
          try {
            const group = bind(this.gpu, kernel, 0, [params, aBuf, bSlice, outBuf]);
            const [bytes] = await this.run(
              'pairwiseDistances',
              (pass) => this.dispatch(pass, kernel, [group], Math.ceil(nb / 16), Math.ceil(count / 16)),
              [{ buffer: outBuf, bytes: 4 * count * nb }],
            );
            const block = new Float32Array(bytes!);
            for (let i = 0; i < count; i++)
              out.set(block.subarray(i * nb, (i + 1) * nb), (start + i) * n + bStart);
          } finally {
            this.pool.release(aBuf, outBuf, params);
          }
        }
      } finally {
        if (uploaded) this.pool.release(uploaded);
      }
    }
    checkFinite(out, 'pairwiseDistances');
    return { rows: m, cols: n, data: out };
  }

  /** Checks K-means shapes against the limits the WGSL fixes. */
  private checkK(points: Matrix, centroids: Matrix, what: string): void {
    if (points.cols !== centroids.cols)
      throw new RangeError(`${what}: widths differ (${points.cols} vs ${centroids.cols})`);
    this.checkClusterCount(centroids.rows, what);
  }

  private checkClusterCount(k: number, what: string): void {
    if (k > KMEANS_MAX_K) {
      throw new BackendError(
        `${what}: k = ${k} is more than the WebGPU kernel's ${KMEANS_MAX_K} clusters`,
        'NEUROCLUSTER_ERR_KERNEL',
      );
    }
  }

  /** The points on the device whole when they fit, else undefined (they go up chunk by chunk). */
  private pointsOnDevice(points: Matrix): GPUBuffer | undefined {
    return this.bindable(4 * points.data.length) ? this.residentCopy(points.data, 'points') : undefined;
  }

  async kmeansAssign(points: Matrix, centroids: Matrix): Promise<Assignment> {
    this.checkK(points, centroids, 'kmeansAssign');
    const { rows: n, cols: d } = points;
    const kernel = await this.begin('assign');
    const labels = new Int32Array(n);
    const distances = new Float64Array(n);
    const whole = this.pointsOnDevice(points);
    const cBuf = this.upload(f32(centroids.data), STORAGE_IN, 'centroids');
    try {
      const rows = whole
        ? n
        : this.chunkRows(n, 4 * (2 * d + 4), 4 * d, 4 * centroids.data.length, 'kmeansAssign');
      for (let start = 0; start < n; start += rows) {
        const count = Math.min(rows, n - start);
        const pBuf =
          whole ??
          this.upload(f32(points.data.subarray(start * d, (start + count) * d)), STORAGE_IN, 'points');
        const lBuf = this.pool.acquire(4 * count, STORAGE_OUT, 'labels');
        const dBuf = this.pool.acquire(4 * count, STORAGE_OUT, 'distances');
        const params = this.uniform(
          paramsOf('kmeans', { n: count, d, k: centroids.rows, groups: 0 }),
          'assign params',
        );
        try {
          const slice = whole ? { buffer: whole, offset: 4 * start * d, size: 4 * count * d } : pBuf;
          const group = bind(this.gpu, kernel, 0, [params, slice, cBuf, lBuf, dBuf]);
          const blocks = Math.ceil(count / 256);
          const [lab, dist] = await this.run(
            'kmeansAssign',
            (pass) =>
              this.dispatch(
                pass,
                kernel,
                [group],
                Math.min(blocks, MAX_GROUPS),
                Math.ceil(blocks / MAX_GROUPS),
              ),
            [
              { buffer: lBuf, bytes: 4 * count },
              { buffer: dBuf, bytes: 4 * count },
            ],
          );
          labels.set(new Int32Array(lab!), start);
          const dd = new Float32Array(dist!);
          checkFinite(dd, 'kmeansAssign');
          distances.set(dd, start);
        } finally {
          this.pool.release(lBuf, dBuf, params);
          if (!whole) this.pool.release(pBuf);
        }
      }
    } finally {
      this.pool.release(cBuf);
    }
    return { labels, distances };
  }

  async kmeansReduce(points: Matrix, labels: Int32Array, k: number): Promise<ClusterSums> {
    checkLabels(labels, points.rows, k, 'kmeansReduce');
    this.checkClusterCount(k, 'kmeansReduce');
    const lBuf = this.upload(labels, STORAGE_IN, 'labels');
    try {
      const { sums, counts } = await this.reduceOnDevice('kmeansReduce', 'reduce', points, k, lBuf);
      return { sums, counts };
    } finally {
      this.pool.release(lBuf);
    }
  }

  async kmeansStep(points: Matrix, centroids: Matrix, labels: Int32Array): Promise<LloydStep> {
    this.checkK(points, centroids, 'kmeansStep');
    // The run's label state lives on the device from its first pass on.
    const lBuf =
      this.labelStates.get(labels) ??
      this.labelStates.put(labels, this.upload(labels, STORAGE_OUT, 'label state'));
    const cBuf = this.upload(f32(centroids.data), STORAGE_IN, 'centroids');
    try {
      return await this.reduceOnDevice('kmeansStep', 'lloyd', points, centroids.rows, lBuf, cBuf);
    } finally {
      this.pool.release(cBuf);
    }
  }

  /**
   * Per-cluster sums and counts of the points, by `entry` (`lloyd` assigns to the centroids
   * first, updating the label state; `reduce` takes the labels as they are), partial sums per
   * workgroup added up on the device. Points that fit stay on the device and take one
   * submission; otherwise each chunk of points is uploaded, reduced into the same results and
   * submitted before the next reuses its buffers. Either way the results are read back once.
   */
  private async reduceOnDevice(
    what: string,
    entry: 'lloyd' | 'reduce',
    points: Matrix,
    k: number,
    lBuf: GPUBuffer,
    cBuf?: GPUBuffer,
  ): Promise<LloydStep> {
    const { rows: n, cols: d } = points;
    const kernel = await this.begin(entry);
    const finish = await this.kernels.get('lloydFinish');
    const kd = k * d;
    const whole = this.pointsOnDevice(points);
    const resultF = this.pool.acquire(4 * (kd + 1), STORAGE_OUT, `${what} sums`);
    const resultU = this.pool.acquire(4 * (k + 1), STORAGE_OUT, `${what} counts`);
    try {
      // Per row: the points, and the partial sums' share; chunks start on 64-row boundaries, as
      // the labels are bound at 256-byte-aligned offsets.
      const rows = whole ? n : this.chunkRows(n, 4 * 2 * d, 4 * d, 4 * (2 * kd + k + 2), what, { align: 64 });
      const clear = (encoder: GPUCommandEncoder) => {
        encoder.clearBuffer(resultF);
        encoder.clearBuffer(resultU);
      };
      for (let start = 0; start < n; start += rows) {
        const count = Math.min(rows, n - start);
        const blocks = Math.ceil(count / 256);
        // Workgroups, each reducing a share of the blocks into its own partial sums.
        const groups = Math.max(
          1,
          Math.min(blocks, 1024, Math.floor(this.pool.budgetBytes / 8 / (4 * (kd + k + 2)))),
        );
        const chunk = whole
          ? undefined
          : this.upload(f32(points.data.subarray(start * d, (start + count) * d)), STORAGE_IN, 'points');
        const partialF = this.pool.acquire(4 * groups * (kd + 1), STORAGE_OUT, `${what} partial sums`);
        const partialU = this.pool.acquire(4 * groups * (k + 1), STORAGE_OUT, `${what} partial counts`);
        const params = this.uniform(paramsOf('kmeans', { n: count, d, k, groups }), `${what} params`);
        try {
          const slice = whole ? { buffer: whole, offset: 4 * start * d, size: 4 * count * d } : chunk!;
          const labelSlice = { buffer: lBuf, offset: 4 * start, size: 4 * count };
          const g1 = cBuf
            ? bind(this.gpu, kernel, 0, [params, slice, cBuf, labelSlice, partialF, partialU])
            : bind(this.gpu, kernel, 0, [params, slice, labelSlice, partialF, partialU]);
          const g2 = bind(this.gpu, finish, 0, [params, partialF, partialU, resultF, resultU]);
          const record = (pass: GPUComputePassEncoder) => {
            this.dispatch(pass, kernel, [g1], groups);
            this.dispatch(pass, finish, [g2], Math.ceil((kd + 1) / 256));
          };
          const before = start === 0 ? clear : undefined;
          if (start + count < n) {
            await this.submit(what, record, before);
            continue;
          }
          const [sumBytes, countBytes] = await this.run(
            what,
            record,
            [
              { buffer: resultF, bytes: 4 * (kd + 1) },
              { buffer: resultU, bytes: 4 * (k + 1) },
            ],
            before,
          );
          const sf = new Float32Array(sumBytes!);
          checkFinite(sf, what);
          const su = new Uint32Array(countBytes!);
          return {
            sums: Float64Array.from(sf.subarray(0, kd)),
            counts: Float64Array.from(su.subarray(0, k)),
            inertia: sf[kd]!,
            changed: su[k]!,
          };
        } finally {
          // Released once submitted: the queue runs a later chunk's uploads after this work.
          this.pool.release(partialF, partialU, params);
          if (chunk) this.pool.release(chunk);
        }
      }
      throw new RangeError(`${what}: no points`);
    } finally {
      this.pool.release(resultF, resultU);
    }
  }

  async clusterDistanceSums(
    points: Matrix,
    labels: Int32Array,
    k: number,
    rowStart: number,
    rowEnd: number,
  ): Promise<Float64Array> {
    const { rows: n, cols: d } = points;
    const kernel = await this.begin('clusterSums');
    // k + 1 offsets, then the point indices ordered by cluster (a counting sort).
    checkLabels(labels, n, k, 'clusterDistanceSums');
    const index = new Uint32Array(k + 1 + n);
    for (let i = 0; i < n; i++) index[labels[i]! + 1]!++;
    for (let j = 0; j < k; j++) index[j + 1]! += index[j]!;
    const fill = index.slice(0, k);
    for (let i = 0; i < n; i++) index[k + 1 + fill[labels[i]!]!++] = i;
    if (k > MAX_GROUPS)
      throw new BackendError(`clusterDistanceSums: k = ${k} clusters`, 'NEUROCLUSTER_ERR_KERNEL');
    const pBuf = this.residentCopy(points.data, 'points');
    const iBuf = this.upload(index, STORAGE_IN, 'cluster order');
    const out = new Float64Array((rowEnd - rowStart) * k);
    try {
      // Row blocks within one dispatch dimension (64 rows a workgroup).
      for (let first = rowStart; first < rowEnd; first += MAX_GROUPS * 64) {
        const rows = Math.min(MAX_GROUPS * 64, rowEnd - first);
        const outBuf = this.pool.acquire(4 * Math.max(1, rows * k), STORAGE_OUT, 'cluster sums');
        const params = this.uniform(
          paramsOf('distances', { m: rows, n, d, flag: first, k }),
          'cluster sums params',
        );
        try {
          const group = bind(this.gpu, kernel, 0, [params, pBuf, iBuf, outBuf]);
          const [bytes] = await this.run(
            'clusterDistanceSums',
            (pass) => this.dispatch(pass, kernel, [group], Math.ceil(rows / 64), k),
            [{ buffer: outBuf, bytes: 4 * rows * k }],
          );
          const part = new Float32Array(bytes!);
          checkFinite(part, 'clusterDistanceSums');
          out.set(part, (first - rowStart) * k);
        } finally {
          this.pool.release(outBuf, params);
        }
      }
      return out;
    } finally {
      this.pool.release(iBuf);
    }
  }

  reservoirRun(run: ReservoirRun & { readonly keep: true }): Promise<Features>;
  reservoirRun(run: ReservoirRun): Promise<Matrix>;
  async reservoirRun(run: ReservoirRun & KeepOption): Promise<Features> {
    checkDrive(run, run.inputWeights);
    const { blocksAt, washout } = checkReadout(run.readout, run.steps);
    const { inputs, steps, readout } = run;
    const r = run.inputWeights.cols;
    const blocks = readoutBlocks(readout);
    if (blocksAt.some((b) => b.length > MAX_BLOCKS_PER_STEP)) {
      throw new BackendError(
        `reservoirRun: a step is read out more than ${MAX_BLOCKS_PER_STEP} times`,
        'NEUROCLUSTER_ERR_KERNEL',
      );
    }
    const sparse = run.recurrent.kind === 'csr';
    const kernel = await this.begin(sparse ? 'reservoirSparse' : 'reservoirDense');
    const width = r * blocks;
    const lastBlock = readout.last ? (readout.times?.length ?? 0) : -1;
    const meanBlock = readout.mean ? blocks - 1 : 0xffffffff;
    const csc = sparse ? toCsc(run.recurrent) : undefined;
    const dense = run.recurrent.kind === 'dense' ? f32(run.recurrent.matrix.data) : undefined;
    const { packed, wInAt, biasAt, wAt } = packWeights(run.inputWeights, run.bias, csc?.values ?? dense);
    // One 256-byte slot per step (the dynamic-offset alignment): its index and readout blocks.
    const slot = 256;
    const stepWords = new Uint32Array((slot / 4) * steps);
    for (let t = 0; t < steps; t++) {
      const ids = [...blocksAt[t]!];
      if (t === steps - 1 && lastBlock >= 0) ids.push(lastBlock);
      const at = (slot / 4) * t;
      stepWords.set([t, ids.length, t === steps - 1 ? 1 : 0, 0], at);
      stepWords.set(ids, at + 4);
    }
    const weights = this.upload(packed, STORAGE_IN, 'reservoir weights');
    const cscBuf = this.upload(csc?.offsets ?? new Uint32Array(1), STORAGE_IN, 'reservoir csc');
    const stepBuf = this.upload(stepWords, UNIFORM, 'reservoir steps');
    const kept = this.keepable(run, inputs.rows, width);
    const out = kept ? undefined : new Float32Array(inputs.rows * width);
    try {
      // Inputs, two states, the running mean, the features and their readback, per sample; the
      // weights are already counted in the pool.
      const rowBytes = 4 * (inputs.cols + 3 * r + 2 * width);
      const rows = this.chunkRows(
        inputs.rows,
        rowBytes,
        4 * Math.max(inputs.cols, width),
        0,
        'reservoirRun',
        {
          maxRows: MAX_GROUPS * 64,
        },
      );
      for (let start = 0; start < inputs.rows; start += rows) {
        throwIfAborted(run.signal);
        const count = Math.min(rows, inputs.rows - start);
        const part = await this.reservoirChunk(kernel, sparse, {
          inputs: f32(inputs.data.subarray(start * inputs.cols, (start + count) * inputs.cols)),
          params: paramsOf('reservoir', {
            n: count,
            r,
            dim: run.inputDim,
            in_cols: inputs.cols,
            sequence: run.sequence ? 1 : 0,
            washout,
            mean_block: meanBlock,
            width,
            leak: run.leak,
            mean_scale: 1 / (steps - washout),
            w_in_at: wInAt,
            bias_at: biasAt,
            w_at: wAt,
          }),
          weights,
          cscBuf,
          stepBuf,
          rows: count,
          r,
          width,
          steps,
          target: kept && { buffer: kept.buffer, offset: 4 * start * width },
        });
        if (part) out!.set(part, start * width);
      }
    } catch (error) {
      kept?.release();
      throw error;
    } finally {
      this.pool.release(weights, cscBuf, stepBuf);
    }
    return kept ?? { rows: inputs.rows, cols: width, data: out! };
  }

  /**
   * One chunk of a reservoir run: all steps in one submission, the features read back once, or
   * copied into the rows of the `target` buffer that keeps them on the device.
   */
  private async reservoirChunk(
    kernel: Kernel,
    sparse: boolean,
    c: {
      inputs: Float32Array;
      params: ArrayBuffer;
      weights: GPUBuffer;
      cscBuf: GPUBuffer;
      stepBuf: GPUBuffer;
      rows: number;
      r: number;
      width: number;
      steps: number;
      target: { buffer: GPUBuffer; offset: number } | undefined;
    },
  ): Promise<Float32Array | undefined> {
    const state = 4 * c.rows * c.r;
    const inBuf = this.upload(c.inputs, STORAGE_IN, 'reservoir inputs');
    const params = this.uniform(c.params, 'reservoir params');
    const x = [
      this.pool.acquire(state, STORAGE_OUT, 'state a'),
      this.pool.acquire(state, STORAGE_OUT, 'state b'),
    ];
    const acc = this.pool.acquire(state, STORAGE_OUT, 'state mean');
    const outBuf = this.pool.acquire(4 * c.rows * c.width, STORAGE_OUT, 'reservoir out');
    try {
      const groups = [0, 1].map((from) => {
        const resources = sparse
          ? [params, inBuf, c.weights, c.cscBuf, x[from]!, x[1 - from]!, acc, outBuf]
          : [params, inBuf, c.weights, x[from]!, x[1 - from]!, acc, outBuf];
        return bind(this.gpu, kernel, 0, resources);
      });
      const stepGroup = bind(this.gpu, kernel, 1, [{ buffer: c.stepBuf, size: 48 }]);
      const record = (pass: GPUComputePassEncoder) => {
        pass.setPipeline(kernel.pipeline);
        for (let t = 0; t < c.steps; t++) {
          pass.setBindGroup(0, groups[t % 2]!);
          pass.setBindGroup(1, stepGroup, [256 * t]);
          if (sparse) {
            const y = Math.min(c.rows, MAX_GROUPS);
            pass.dispatchWorkgroups(Math.ceil(c.r / 64), y, Math.ceil(c.rows / MAX_GROUPS));
          } else {
            pass.dispatchWorkgroups(Math.ceil(c.r / 64), Math.ceil(c.rows / 64));
          }
          this.counters.dispatches++;
        }
      };
      const clear = (encoder: GPUCommandEncoder) => {
        encoder.clearBuffer(x[0]!, 0, state);
        encoder.clearBuffer(acc, 0, state);
      };
      const bytes = 4 * c.rows * c.width;
      if (c.target) {
        const { buffer, offset } = c.target;
        await this.submit('reservoirRun', record, clear, (encoder) =>
          encoder.copyBufferToBuffer(outBuf, 0, buffer, offset, bytes),
        );
        return undefined;
      }
      const [read] = await this.run('reservoirRun', record, [{ buffer: outBuf, bytes }], clear);
      const part = new Float32Array(read!);
      checkFinite(part, 'reservoirRun');
      return part;
    } finally {
      this.pool.release(inBuf, params, x[0]!, x[1]!, acc, outBuf);
    }
  }

  spikingRun(run: SpikingRun & { readonly keep: true }): Promise<Features>;
  spikingRun(run: SpikingRun): Promise<Matrix>;
  async spikingRun(run: SpikingRun & KeepOption): Promise<Features> {
    checkDrive(run, run.inputWeights);
    const { inputs, steps, windows } = run;
    const r = run.inputWeights.cols;
    if (!Number.isInteger(windows) || windows < 1 || windows > steps) {
      throw new RangeError(`windows must be in [1, ${steps}], got ${windows}`);
    }
    if (run.sampleKeys.length !== inputs.rows) throw new RangeError('one sample key per row is needed');
    if (r > SPIKING_MAX_UNITS || run.inputDim > SPIKING_MAX_INPUTS) {
      throw new BackendError(
        `spikingRun: ${r} neurons and ${run.inputDim} inputs; the WebGPU kernel takes at most ` +
          `${SPIKING_MAX_UNITS} neurons and ${SPIKING_MAX_INPUTS} inputs a step`,
        'NEUROCLUSTER_ERR_KERNEL',
      );
    }
    const kernel = await this.begin('spiking');
    const width = r * windows;
    const recurrentKind = run.recurrent ? (run.recurrent.kind === 'csr' ? 2 : 1) : 0;
    const csc = run.recurrent?.kind === 'csr' ? toCsc(run.recurrent) : undefined;
    const dense = run.recurrent?.kind === 'dense' ? f32(run.recurrent.matrix.data) : undefined;
    const { packed, wInAt, biasAt, wAt } = packWeights(run.inputWeights, run.bias, csc?.values ?? dense);
    const [key0, key1] = philoxKey(run.seed);
    const readoutCode = { counts: 0, rates: 1, 'first-spike': 2, trace: 3 }[run.readout];
    const weights = this.upload(packed, STORAGE_IN, 'spiking weights');
    const cscBuf = this.upload(csc?.offsets ?? new Uint32Array(1), STORAGE_IN, 'spiking csc');
    const kept = this.keepable(run, inputs.rows, width);
    const out = kept ? undefined : new Float32Array(inputs.rows * width);
    try {
      // Inputs, the sample key, the features and their readback, per sample (weights counted).
      const rows = this.chunkRows(
        inputs.rows,
        4 * (inputs.cols + 1 + 2 * width),
        4 * Math.max(inputs.cols, width),
        0,
        'spikingRun',
      );
      for (let start = 0; start < inputs.rows; start += rows) {
        throwIfAborted(run.signal);
        const count = Math.min(rows, inputs.rows - start);
        const inBuf = this.upload(
          f32(inputs.data.subarray(start * inputs.cols, (start + count) * inputs.cols)),
          STORAGE_IN,
          'spiking inputs',
        );
        const keyBuf = this.upload(run.sampleKeys.subarray(start, start + count), STORAGE_IN, 'sample keys');
        const outBuf = this.pool.acquire(4 * count * width, STORAGE_OUT, 'spiking out');
        const params = this.uniform(
          paramsOf('spiking', {
            n: count,
            r,
            dim: run.inputDim,
            in_cols: inputs.cols,
            sequence: run.sequence ? 1 : 0,
            rate: run.encoding === 'rate' ? 1 : 0,
            recurrent: recurrentKind,
            steps,
            windows,
            readout: readoutCode,
            refractory: run.refractorySteps,
            key0,
            key1,
            decay: run.decay,
            threshold: run.threshold,
            reset: run.reset,
            trace_decay: run.traceDecay,
            w_in_at: wInAt,
            bias_at: biasAt,
            w_at: wAt,
            scale: run.scale ?? 1,
          }),
          'spiking params',
        );
        try {
          const group = bind(this.gpu, kernel, 0, [params, inBuf, weights, cscBuf, keyBuf, outBuf]);
          const record = (pass: GPUComputePassEncoder) =>
            this.dispatch(pass, kernel, [group], Math.min(count, MAX_GROUPS), Math.ceil(count / MAX_GROUPS));
          const bytes = 4 * count * width;
          if (kept) {
            const target = kept.buffer;
            await this.submit('spikingRun', record, undefined, (encoder) =>
              encoder.copyBufferToBuffer(outBuf, 0, target, 4 * start * width, bytes),
            );
            continue;
          }
          const [read] = await this.run('spikingRun', record, [{ buffer: outBuf, bytes }]);
          const part = new Float32Array(read!);
          checkFinite(part, 'spikingRun');
          out!.set(part, start * width);
        } finally {
          this.pool.release(inBuf, keyBuf, outBuf, params);
        }
      }
    } catch (error) {
      kept?.release();
      throw error;
    } finally {
      this.pool.release(weights, cscBuf);
    }
    return kept ?? { rows: inputs.rows, cols: width, data: out! };
  }

  /**
   * The buffer that keeps an encoder's n x width output on the device, when the run asks to keep
   * it and it fits one binding and a quarter of the budget; otherwise undefined (read back).
   */
  private keepable(run: KeepOption, n: number, width: number): KeptFeatures | undefined {
    const bytes = 4 * n * width;
    if (run.keep !== true || !this.bindable(bytes)) return undefined;
    const buffer = this.pool.acquire(Math.max(4, bytes), STORAGE_OUT, 'kept features');
    return new KeptFeatures(
      this,
      n,
      width,
      buffer,
      (kept) => this.readKept(kept),
      (b) => this.pool.release(b),
    );
  }

  /** The host copy of kept features: one readback. */
  private async readKept(kept: KeptFeatures): Promise<Matrix> {
    this.check();
    const bytes = 4 * kept.rows * kept.cols;
    const [read] = await this.run('read kept features', () => undefined, [{ buffer: kept.buffer, bytes }]);
    const data = new Float32Array(read!);
    checkFinite(data, 'the kept features');
    return { rows: kept.rows, cols: kept.cols, data };
  }

  /** Kept features of this backend, or undefined for host values; another device's are refused. */
  private keptOf(m: Features, what: string): KeptFeatures | undefined {
    if (!isDeviceMatrix(m)) return undefined;
    if (m instanceof KeptFeatures && m.owner === this) return m;
    throw new TypeError(`${what}: features kept by another ${m.backend} device`);
  }

  /**
   * Whether a matrix of `bytes` may live on the device whole: within one binding and a quarter of
   * the budget, so the kernels working beside it still have room. Points K-means keeps, the
   * pairwise operand K-means++ passes again and again, kept encoder output and host blocks.
   */
  private bindable(bytes: number): boolean {
    return bytes <= this.bindingLimit && bytes <= this.pool.budgetBytes / RESIDENT_SHARE;
  }

  /** The row order on the device (one unused word when there is none). */
  private uploadOrder(order: Int32Array | undefined, n: number): GPUBuffer {
    const words = order ? new Uint32Array(order.buffer, order.byteOffset, n) : new Uint32Array(1);
    return this.upload(words, STORAGE_IN, 'row order');
  }

  /**
   * Two passes (sums, then squared deviations), each summing 64 columns a workgroup over one
   * segment of rows and finishing the segments in order: one submission, one readback of 2d
   * numbers. A host matrix too big to bind whole is summed on the host, as the reference does.
   */
  async columnMoments(m: Features, order?: Int32Array): Promise<Moments> {
    const kept = this.keptOf(m, 'columnMoments');
    const { rows: n, cols: d } = m;
    checkOrder(order, n, 'columnMoments');
    if (n === 0 || d === 0) throw new RangeError(`columnMoments: a ${n} x ${d} matrix`);
    if (!kept && !this.bindable(4 * n * d)) return momentsOnHost(m, order);
    const sums = await this.begin('momentSums');
    const finish = await this.kernels.get('momentFinish');
    const source = kept?.buffer ?? this.residentCopy((m as Matrix).data, 'moments input');
    // Segments of at least 256 rows, at most 1024 of them: the shape depends on n alone.
    const segment = Math.max(256, Math.ceil(n / 1024));
    const segments = Math.ceil(n / segment);
    const orderBuf = this.uploadOrder(order, n);
    const partial = this.pool.acquire(4 * segments * d, STORAGE_OUT, 'moment partial sums');
    const moments = this.pool.acquire(8 * d, STORAGE_OUT, 'moments');
    const params = [0, 1].map((pass) =>
      this.uniform(
        paramsOf('moments', { n, d, segment, segments, ordered: order ? 1 : 0, pass_: pass }),
        'moments params',
      ),
    );
    try {
      const record = (pass: GPUComputePassEncoder) => {
        for (const p of params) {
          this.dispatch(
            pass,
            sums,
            [bind(this.gpu, sums, 0, [p, source, orderBuf, partial, moments])],
            Math.ceil(d / 64),
            segments,
          );
          this.dispatch(pass, finish, [bind(this.gpu, finish, 0, [p, partial, moments])], Math.ceil(d / 64));
        }
      };
      const [read] = await this.run('columnMoments', record, [{ buffer: moments, bytes: 8 * d }]);
      const both = new Float32Array(read!);
      checkFinite(both, 'columnMoments');
      return {
        means: Float64Array.from(both.subarray(0, d)),
        variances: Float64Array.from(both.subarray(d)),
      };
    } finally {
      this.pool.release(orderBuf, partial, moments, ...params);
    }
  }

  /**
   * Each block's kept columns gathered (rows in `order`), centred and scaled into one n x width
   * buffer: one dispatch a block, one submission, one readback. The buffer stays on the device as
   * the copy of the returned matrix, so the K-means kernels that take it next upload nothing.
   * Blocks too big to bind whole are put together on the host, as the reference does.
   */
  async assembleBlocks(blocks: readonly FeatureBlock[], order?: Int32Array): Promise<Matrix> {
    const { rows: n, width } = checkBlocks(blocks, order);
    const kept = blocks.map((b, i) => this.keptOf(b.features, `assembleBlocks block ${i}`));
    const hostBytes = blocks.reduce(
      (s, b, i) => s + (kept[i] ? 0 : 4 * b.features.rows * b.features.cols),
      0,
    );
    if (!this.bindable(4 * n * width) || !this.bindable(hostBytes)) {
      const onHost = await Promise.all(
        blocks.map(async (b, i) => ({ ...b, features: kept[i] ? await kept[i].read() : b.features })),
      );
      return assembleOnHost(onHost, order);
    }
    const kernel = await this.begin('assemble');
    const out = this.pool.acquire(Math.max(4, 4 * n * width), STORAGE_OUT, 'features');
    const orderBuf = this.uploadOrder(order, n);
    const small: GPUBuffer[] = [orderBuf];
    try {
      const groups: { group: GPUBindGroup; count: number }[] = [];
      let offset = 0;
      blocks.forEach((b, i) => {
        const count = b.keep.length;
        if (count === 0) return;
        const source = kept[i]?.buffer ?? this.residentCopy((b.features as Matrix).data, 'block');
        const columns = this.upload(Uint32Array.from(b.keep), STORAGE_IN, 'kept columns');
        const means = this.upload(Float32Array.from(b.means), STORAGE_IN, 'block means');
        const params = this.uniform(
          paramsOf('assemble', {
            n,
            src_cols: b.features.cols,
            width,
            offset,
            kept: count,
            ordered: order ? 1 : 0,
            scale: b.scale,
          }),
          'assemble params',
        );
        small.push(columns, means, params);
        groups.push({
          group: bind(this.gpu, kernel, 0, [params, source, orderBuf, columns, means, out]),
          count,
        });
        offset += count;
      });
      const [read] = await this.run(
        'assembleBlocks',
        (pass) => {
          for (const { group, count } of groups) {
            const wgs = Math.ceil((n * count) / 256);
            this.dispatch(pass, kernel, [group], Math.min(wgs, MAX_GROUPS), Math.ceil(wgs / MAX_GROUPS));
          }
        },
        [{ buffer: out, bytes: 4 * n * width }],
      );
      const data = new Float32Array(read!);
      checkFinite(data, 'assembleBlocks');
      this.copies.put(data, out);
      return { rows: n, cols: width, data };
    } catch (error) {
      this.pool.release(out);
      throw error;
    } finally {
      this.pool.release(...small);
    }
  }

  /**
   * Device bytes the buffer pool holds in use, its budget (for the resource monitor), and what it
   * has allocated now and at its peak (for the metrics).
   */
  memoryStats(): { used: number; total: number; allocated: number; peak: number } {
    const stats = this.pool.stats();
    return {
      used: stats.bytesInUse,
      total: this.pool.budgetBytes,
      allocated: stats.bytesAllocated,
      peak: stats.peakBytesAllocated,
    };
  }

  /** The device-memory budget work is planned against now. */
  get memoryBudgetBytes(): number {
    return this.pool.budgetBytes;
  }

  /**
   * After an out-of-memory error: halves the device-memory budget, so every later call plans
   * smaller chunks (the cached copies are dropped); false once it is at 16 MiB.
   */

  shrinkMemoryBudget(): boolean {
    const floor = 16 * 1024 * 1024;
    if (this.pool.budgetBytes <= floor) return false;
    this.copies.evictAll();
    this.pool.budgetBytes = Math.max(floor, Math.floor(this.pool.budgetBytes / 2));
    return true;
  }

  async dispose(): Promise<void> {
    this.pool.destroy();
    this.gpu.destroy();
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Opens the device lazily; under `auto` a software adapter is refused unless allowed. */
export function webGpuBackendFactory(settings: WebGpuSettings = {}): BackendFactory {
  return {
    name: 'webgpu',
    priority: 20,
    smallProblems: false,
    async create({ auto, options }) {
      const resolved: WebGpuSettings = { ...settings, ...definedOnly(options?.webgpu ?? {}) };
      const opened = await openDevice(resolved, auto);
      return new WebGpuBackend(opened, {
        budgetBytes: resolved.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES,
        allowSoftware: resolved.allowSoftware === true,
      });
    },
    autoRefusal(backend) {
      const software = backend instanceof WebGpuBackend && backend.software;
      return software && !backend.allowSoftware
        ? `the WebGPU adapter is a software one (${backend.device}); set NEUROCLUSTER_WEBGPU_ALLOW_SOFTWARE=1 to use it`
        : undefined;
    },
  };
}
