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
 *
 * This class is the facade: the device, pool and submission live in {@link GpuContext}
 * (context.ts), the kernels in one file per family under ops/, as in ONNX Runtime Web's and
 * tfjs's WebGPU backends.
 */
import type * as M from '../../core/matrix.js';
import type { Backend, KeepOption, ReservoirRun, SpikingRun } from '../backend.js';
import { GpuContext, type WebGpuCounters } from './context.js';
import type { OpenedDevice } from './device.js';
import { assembleBlocks, columnMoments } from './ops/features.js';
import { clusterDistanceSums, kmeansAssign, kmeansReduce, kmeansStep } from './ops/kmeans.js';
import { matmul, pairwiseDistances } from './ops/linalg.js';
import { reservoirRun } from './ops/reservoir.js';
import { spikingRun } from './ops/spiking.js';
import type { PoolStats } from './pool.js';

export type { WebGpuCounters } from './context.js';

/** Default device-memory budget when none is configured (the pool never holds more). */
export const DEFAULT_MEMORY_BUDGET_BYTES = 1024 * 1024 * 1024;

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu' as const;
  readonly precision = 'float32' as const;
  /** Encoder outputs asked to be kept stay on the device when they fit (see ops/features.ts). */
  readonly keepsOutputs = true;
  readonly device: string;
  /** True on a software adapter (SwiftShader, llvmpipe). */
  readonly software: boolean;
  readonly counters: WebGpuCounters;
  /** Dawn's instance, held as long as the device (public so no linter takes it for dead code). */
  readonly instance: GPU;
  private readonly ctx: GpuContext;

  /** Whether `auto` may take this backend although its adapter is a software one. */
  readonly allowSoftware: boolean;

  constructor(
    opened: OpenedDevice,
    { budgetBytes, allowSoftware = false }: { budgetBytes: number; allowSoftware?: boolean },
  ) {
    this.allowSoftware = allowSoftware;
    this.instance = opened.gpu;
    this.device = `${opened.name}${opened.software ? ' (software)' : ''}`;
    this.software = opened.software;
    this.ctx = new GpuContext(opened.device, budgetBytes);
    this.counters = this.ctx.counters;
  }

  /** Bytes in use, allocated and at peak in the buffer pool. */
  memory(): PoolStats {
    return this.ctx.pool.stats();
  }

  /**
   * Runs `work` and returns the seconds its kernels took with their data already on the device,
   * as PyTorch is timed with its tensors resident: each submission is timed alone, after the
   * uploads before it, without the readback after it. For benchmarks: it waits for the device
   * at every submission.
   */
  timeKernels(work: () => Promise<unknown>): Promise<number> {
    return this.ctx.timeKernels(work);
  }

  matmul(a: M.Matrix, b: M.Matrix, bias?: M.Floats): Promise<M.Matrix> {
    return matmul(this.ctx, a, b, bias);
  }

  pairwiseDistances(a: M.Matrix, b: M.Matrix, options: { squared?: boolean } = {}): Promise<M.Matrix> {
    return pairwiseDistances(this.ctx, a, b, options);
  }

  kmeansAssign(points: M.Matrix, centroids: M.Matrix): Promise<M.Assignment> {
    return kmeansAssign(this.ctx, points, centroids);
  }

  kmeansReduce(points: M.Matrix, labels: Int32Array, k: number): Promise<M.ClusterSums> {
    return kmeansReduce(this.ctx, points, labels, k);
  }

  kmeansStep(points: M.Matrix, centroids: M.Matrix, labels: Int32Array): Promise<M.LloydStep> {
    return kmeansStep(this.ctx, points, centroids, labels);
  }

  clusterDistanceSums(points: M.Matrix, labels: Int32Array, k: number, rowStart: number, rowEnd: number) {
    return clusterDistanceSums(this.ctx, points, labels, k, rowStart, rowEnd);
  }

  reservoirRun(run: ReservoirRun & { readonly keep: true }): Promise<M.Features>;
  reservoirRun(run: ReservoirRun): Promise<M.Matrix>;
  reservoirRun(run: ReservoirRun & KeepOption): Promise<M.Features> {
    return reservoirRun(this.ctx, run);
  }

  spikingRun(run: SpikingRun & { readonly keep: true }): Promise<M.Features>;
  spikingRun(run: SpikingRun): Promise<M.Matrix>;
  spikingRun(run: SpikingRun & KeepOption): Promise<M.Features> {
    return spikingRun(this.ctx, run);
  }

  columnMoments(m: M.Features, order?: Int32Array): Promise<M.Moments> {
    return columnMoments(this.ctx, m, order);
  }

  assembleBlocks(blocks: readonly M.FeatureBlock[], order?: Int32Array): Promise<M.Matrix> {
    return assembleBlocks(this.ctx, blocks, order);
  }

  /**
   * Device bytes the buffer pool holds in use, its budget (for the resource monitor), and what it
   * has allocated now and at its peak (for the metrics).
   */
  memoryStats(): { used: number; total: number; allocated: number; peak: number } {
    const stats = this.ctx.pool.stats();
    return {
      used: stats.bytesInUse,
      total: this.ctx.pool.budgetBytes,
      allocated: stats.bytesAllocated,
      peak: stats.peakBytesAllocated,
    };
  }

  /** The device-memory budget work is planned against now. */
  get memoryBudgetBytes(): number {
    return this.ctx.pool.budgetBytes;
  }

  /**
   * After an out-of-memory error: halves the device-memory budget, so every later call plans
   * smaller chunks (the cached copies are dropped); false once it is at 16 MiB.
   */
  shrinkMemoryBudget(): boolean {
    return this.ctx.shrinkBudget();
  }

  async dispose(): Promise<void> {
    this.ctx.dispose();
  }
}
