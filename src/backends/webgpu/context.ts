/**
 * What every kernel family of the WebGPU backend shares, as ONNX Runtime Web's and tfjs's WebGPU
 * backends give their ops one backend object: the device, the buffer pool and the device copies
 * kept in it, the pipeline cache, uniforms written by field name, and the one way work is
 * recorded, submitted and read back.
 *
 * Each kernel call records its dispatches into one command buffer and reads its result back with
 * one `mapAsync` ({@link GpuContext.run}); work that would pass the device-memory budget or a
 * binding limit is split into chunks of rows ({@link GpuContext.chunkRows}, run by `runChunked`).
 */
import { BackendError } from '../../core/errors.js';
import type { Floats } from '../../core/matrix.js';
import { guarded, MAP_READ, Usage } from './device.js';
import { bind, type Kernel, KernelCache, type KernelName } from './kernels.js';
import { paramsOf } from './params.js';
import { BufferPool } from './pool.js';
import { Residency } from './residency.js';
import type { WgslModule } from './wgsl.generated.js';

export const STORAGE_IN = Usage.STORAGE | Usage.COPY_DST;
export const STORAGE_OUT = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;
export const UNIFORM = Usage.UNIFORM | Usage.COPY_DST;
const READBACK = Usage.MAP_READ | Usage.COPY_DST;

export const MAX_GROUPS = 65535;

/** A matrix kept whole on the device takes at most 1 / RESIDENT_SHARE of the budget. */
const RESIDENT_SHARE = 4;

/** Counts of what the backend asked of the device, for tests and metrics. */
export interface WebGpuCounters {
  submits: number;
  readbacks: number;
  dispatches: number;
}

export const f32 = (data: Floats | Int32Array | Uint32Array): Float32Array =>
  data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);

export function checkFinite(data: Float32Array, what: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      throw new BackendError(
        `${what}: the device returned a non-finite value at ${i}`,
        'NEUROCLUSTER_ERR_NUMERICAL',
      );
    }
  }
}

/** A range of a buffer to read back (`offset` 0 unless given). */
export interface Readback {
  readonly buffer: GPUBuffer;
  readonly bytes: number;
  readonly offset?: number;
}

/** Fills the compute pass of a command buffer. */
export type Recorder = (pass: GPUComputePassEncoder, encoder: GPUCommandEncoder) => void;
/** Adds commands before or after the compute pass (clears, copies). */
export type EncoderStep = (encoder: GPUCommandEncoder) => void;

export class GpuContext {
  readonly counters: WebGpuCounters = { submits: 0, readbacks: 0, dispatches: 0 };
  readonly pool: BufferPool;
  readonly kernels: KernelCache;
  /** Largest buffer one binding may see. */
  readonly bindingLimit: number;
  private lostReason: string | undefined;
  /** Set by {@link timeKernels}. */
  private kernelTimer: { seconds: number } | undefined;
  /** Device copies of host arrays used again and again (K-means points), while those live. */
  readonly copies: Residency;
  /** The label state of each Lloyd run, kept until its array is collected. */
  readonly labelStates: Residency;

  constructor(
    readonly device: GPUDevice,
    budgetBytes: number,
  ) {
    const limits = device.limits;
    this.bindingLimit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    this.pool = new BufferPool(device, budgetBytes, limits.maxBufferSize);
    this.copies = new Residency(this.pool);
    this.labelStates = new Residency(this.pool);
    this.kernels = new KernelCache(device);
    void device.lost.then((info) => {
      this.lostReason = info.message || info.reason;
    });
  }

  /** Fails fast, typed, once the device is lost. */
  check(): void {
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
  async begin(name: KernelName): Promise<Kernel> {
    this.check();
    if (this.pool.stats().bytesInUse > this.pool.budgetBytes / 2) this.copies.evictAll();
    return this.kernels.get(name);
  }

  /**
   * Rows per chunk so that `bytesPerRow` x rows plus `fixedBytes` stay within the budget, every
   * per-row buffer (`widestRowBytes` a row) within the binding limit, and at most `maxRows` (a
   * dispatch limit); a multiple of `align` unless all rows fit.
   */
  chunkRows(
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

  /**
   * Whether a matrix of `bytes` may live on the device whole: within one binding and a quarter of
   * the budget, so the kernels working beside it still have room. Points K-means keeps, the
   * pairwise operand K-means++ passes again and again, kept encoder output and host blocks.
   */
  bindable(bytes: number): boolean {
    return bytes <= this.bindingLimit && bytes <= this.pool.budgetBytes / RESIDENT_SHARE;
  }

  upload(data: ArrayBufferView & { byteLength: number }, usage: number, label: string): GPUBuffer {
    const buffer = this.pool.acquire(Math.max(4, data.byteLength), usage, label);
    this.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    return buffer;
  }

  uniform(words: ArrayBuffer, label: string): GPUBuffer {
    return this.upload(new Uint8Array(words), UNIFORM, label);
  }

  /** A uniform buffer holding `module`'s `struct Params`, its fields given by name. */
  params(module: WgslModule, values: Readonly<Record<string, number>>, label: string): GPUBuffer {
    return this.uniform(paramsOf(module, values), label);
  }

  /** A device copy of `data` kept while the host array lives (inputs are immutable by contract). */
  residentCopy(data: Floats, label: string): GPUBuffer {
    return this.copies.get(data) ?? this.copies.put(data, this.upload(f32(data), STORAGE_IN, label));
  }

  /** A bind group of `kernel` (see {@link bind}). */
  bindGroup(kernel: Kernel, resources: readonly (GPUBuffer | GPUBufferBinding)[], group = 0): GPUBindGroup {
    return bind(this.device, kernel, group, resources);
  }

  dispatch(pass: GPUComputePassEncoder, kernel: Kernel, groups: GPUBindGroup[], x: number, y = 1, z = 1) {
    pass.setPipeline(kernel.pipeline);
    groups.forEach((g, i) => {
      pass.setBindGroup(i, g);
    });
    pass.dispatchWorkgroups(x, y, z);
    this.counters.dispatches++;
  }

  /** One command buffer: `before` (clears), the compute pass `record` fills, then `after` (copies). */
  private commands(
    what: string,
    record?: Recorder,
    before?: EncoderStep,
    after?: EncoderStep,
  ): GPUCommandBuffer {
    const encoder = this.device.createCommandEncoder({ label: what });
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
  async submit(what: string, record: Recorder, before?: EncoderStep, after?: EncoderStep): Promise<void> {
    this.check();
    await this.timed(() =>
      guarded(this.device, what, () => {
        this.device.queue.submit([this.commands(what, record, before, after)]);
        this.counters.submits++;
      }),
    );
  }

  /**
   * Records work into one command buffer, copies the named buffers into one staging buffer,
   * submits once and maps once; returns the bytes of each copy. Under {@link timeKernels} the
   * copies go in a second submission, so that the timed one holds the kernels alone.
   */
  async run(
    what: string,
    record: Recorder,
    reads: readonly Readback[],
    before?: EncoderStep,
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
        await guarded(this.device, what, () =>
          this.device.queue.submit([this.commands(`${what} readback`, undefined, undefined, copy)]),
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
    await this.device.queue.onSubmittedWorkDone();
    const t0 = performance.now();
    await submitting();
    await this.device.queue.onSubmittedWorkDone();
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

  /**
   * After an out-of-memory error: halves the device-memory budget, so every later call plans
   * smaller chunks (the cached copies are dropped); false once it is at 16 MiB.
   */
  shrinkBudget(): boolean {
    const floor = 16 * 1024 * 1024;
    if (this.pool.budgetBytes <= floor) return false;
    this.copies.evictAll();
    this.pool.budgetBytes = Math.max(floor, Math.floor(this.pool.budgetBytes / 2));
    return true;
  }

  dispose(): void {
    this.pool.destroy();
    this.device.destroy();
  }
}
