/**
 * Features on the device. An encoder run asked to keep its output leaves it on the device
 * (KeptFeatures), the moments and the assembly read it there, and the assembled matrix stays as
 * the device copy of the host matrix returned, so the features go from the encoders to K-means
 * without leaving the device.
 */
import {
  checkOrder,
  type DeviceMatrix,
  type FeatureBlock,
  type Features,
  isDeviceMatrix,
  type Matrix,
  type Moments,
} from '../../../core/matrix.js';
import { assembleOnHost, checkBlocks, momentsOnHost } from '../../../linalg/blocks.js';
import type { KeepOption } from '../../backend.js';
import type { Chunk, ChunkWork } from '../chunked.js';
import { checkFinite, type GpuContext, MAX_GROUPS, STORAGE_IN, STORAGE_OUT } from '../context.js';

/** An encoder's output kept in one device buffer (float32, row-major) until read or released. */
class KeptFeatures implements DeviceMatrix {
  readonly backend = 'webgpu' as const;
  private freed = false;

  constructor(
    readonly owner: GpuContext,
    readonly rows: number,
    readonly cols: number,
    private readonly held: GPUBuffer,
  ) {}

  /** The device buffer; a released one is a programming error. */
  get buffer(): GPUBuffer {
    if (this.freed) throw new Error('the kept features were released');
    return this.held;
  }

  read(): Promise<Matrix> {
    return readKept(this.owner, this);
  }

  release(): void {
    if (this.freed) return;
    this.freed = true;
    this.owner.pool.release(this.held);
  }
}

/** The host copy of kept features: one readback. */
async function readKept(ctx: GpuContext, kept: KeptFeatures): Promise<Matrix> {
  ctx.check();
  const bytes = 4 * kept.rows * kept.cols;
  const [read] = await ctx.run('read kept features', () => undefined, [{ buffer: kept.buffer, bytes }]);
  const data = new Float32Array(read!);
  checkFinite(data, 'the kept features');
  return { rows: kept.rows, cols: kept.cols, data };
}

/** Kept features of this context's device, or undefined for host values; another device's are refused. */
function keptOf(ctx: GpuContext, m: Features, what: string): KeptFeatures | undefined {
  if (!isDeviceMatrix(m)) return undefined;
  if (m instanceof KeptFeatures && m.owner === ctx) return m;
  throw new TypeError(`${what}: features kept by another ${m.backend} device`);
}

/**
 * Where an encoder run's n x width output goes, chunk by chunk: the buffer that keeps it on the
 * device, when the run asks to keep it and it fits one binding and a quarter of the budget;
 * otherwise a host array it is read back into.
 */
export class EncoderOutput {
  readonly kept: KeptFeatures | undefined;
  private readonly host: Float32Array | undefined;

  constructor(
    ctx: GpuContext,
    run: KeepOption,
    private readonly n: number,
    readonly width: number,
  ) {
    const bytes = 4 * n * width;
    this.kept =
      run.keep === true && ctx.bindable(bytes)
        ? new KeptFeatures(ctx, n, width, ctx.pool.acquire(Math.max(4, bytes), STORAGE_OUT, 'kept features'))
        : undefined;
    this.host = this.kept ? undefined : new Float32Array(n * width);
  }

  /** Chunk `c`'s rows, in `outBuf`: copied into the kept buffer behind the pass, or read back. */
  take(what: string, c: Chunk, outBuf: GPUBuffer): Pick<ChunkWork, 'after' | 'reads' | 'done'> {
    const bytes = 4 * c.count * this.width;
    if (this.kept) {
      const target = this.kept.buffer;
      const offset = 4 * c.start * this.width;
      return { after: (encoder) => encoder.copyBufferToBuffer(outBuf, 0, target, offset, bytes) };
    }
    const host = this.host!;
    return {
      reads: [{ buffer: outBuf, bytes }],
      done: ([read]) => {
        const part = new Float32Array(read!);
        checkFinite(part, what);
        host.set(part, c.start * this.width);
      },
    };
  }

  /** The features, once every chunk has run. */
  result(): Features {
    return this.kept ?? { rows: this.n, cols: this.width, data: this.host! };
  }
}

/** The row order on the device (one unused word when there is none). */
function uploadOrder(ctx: GpuContext, order: Int32Array | undefined, n: number): GPUBuffer {
  const words = order ? new Uint32Array(order.buffer, order.byteOffset, n) : new Uint32Array(1);
  return ctx.upload(words, STORAGE_IN, 'row order');
}

/**
 * Two passes (sums, then squared deviations), each summing 64 columns a workgroup over one
 * segment of rows and finishing the segments in order: one submission, one readback of 2d
 * numbers. A host matrix too big to bind whole is summed on the host, as the reference does.
 */
export async function columnMoments(ctx: GpuContext, m: Features, order?: Int32Array): Promise<Moments> {
  const kept = keptOf(ctx, m, 'columnMoments');
  const { rows: n, cols: d } = m;
  checkOrder(order, n, 'columnMoments');
  if (n === 0 || d === 0) throw new RangeError(`columnMoments: a ${n} x ${d} matrix`);
  if (!kept && !ctx.bindable(4 * n * d)) return momentsOnHost(m, order);
  const sums = await ctx.begin('momentSums');
  const finish = await ctx.kernels.get('momentFinish');
  const source = kept?.buffer ?? ctx.residentCopy((m as Matrix).data, 'moments input');
  // Segments of at least 256 rows, at most 1024 of them: the shape depends on n alone.
  const segment = Math.max(256, Math.ceil(n / 1024));
  const segments = Math.ceil(n / segment);
  const orderBuf = uploadOrder(ctx, order, n);
  const partial = ctx.pool.acquire(4 * segments * d, STORAGE_OUT, 'moment partial sums');
  const moments = ctx.pool.acquire(8 * d, STORAGE_OUT, 'moments');
  const params = [0, 1].map((pass) =>
    ctx.params('moments', { n, d, segment, segments, ordered: order ? 1 : 0, pass_: pass }, 'moments params'),
  );
  try {
    const record = (pass: GPUComputePassEncoder) => {
      for (const p of params) {
        ctx.dispatch(
          pass,
          sums,
          [ctx.bindGroup(sums, [p, source, orderBuf, partial, moments])],
          Math.ceil(d / 64),
          segments,
        );
        ctx.dispatch(pass, finish, [ctx.bindGroup(finish, [p, partial, moments])], Math.ceil(d / 64));
      }
    };
    const [read] = await ctx.run('columnMoments', record, [{ buffer: moments, bytes: 8 * d }]);
    const both = new Float32Array(read!);
    checkFinite(both, 'columnMoments');
    return {
      means: Float64Array.from(both.subarray(0, d)),
      variances: Float64Array.from(both.subarray(d)),
    };
  } finally {
    ctx.pool.release(orderBuf, partial, moments, ...params);
  }
}

/**
 * Each block's kept columns gathered (rows in `order`), centred and scaled into one n x width
 * buffer: one dispatch a block, one submission, one readback. The buffer stays on the device as
 * the copy of the returned matrix, so the K-means kernels that take it next upload nothing.
 * Blocks too big to bind whole are put together on the host, as the reference does.
 */
export async function assembleBlocks(
  ctx: GpuContext,
  blocks: readonly FeatureBlock[],
  order?: Int32Array,
): Promise<Matrix> {
  const { rows: n, width } = checkBlocks(blocks, order);
  const kept = blocks.map((b, i) => keptOf(ctx, b.features, `assembleBlocks block ${i}`));
  const hostBytes = blocks.reduce((s, b, i) => s + (kept[i] ? 0 : 4 * b.features.rows * b.features.cols), 0);
  if (!ctx.bindable(4 * n * width) || !ctx.bindable(hostBytes)) {
    const onHost = await Promise.all(
      blocks.map(async (b, i) => ({ ...b, features: kept[i] ? await kept[i].read() : b.features })),
    );
    return assembleOnHost(onHost, order);
  }
  const kernel = await ctx.begin('assemble');
  const out = ctx.pool.acquire(Math.max(4, 4 * n * width), STORAGE_OUT, 'features');
  const orderBuf = uploadOrder(ctx, order, n);
  const small: GPUBuffer[] = [orderBuf];
  try {
    const groups: { group: GPUBindGroup; count: number }[] = [];
    let offset = 0;
    blocks.forEach((b, i) => {
      const count = b.keep.length;
      if (count === 0) return;
      const source = kept[i]?.buffer ?? ctx.residentCopy((b.features as Matrix).data, 'block');
      const columns = ctx.upload(Uint32Array.from(b.keep), STORAGE_IN, 'kept columns');
      const means = ctx.upload(Float32Array.from(b.means), STORAGE_IN, 'block means');
      const params = ctx.params(
        'assemble',
        { n, src_cols: b.features.cols, width, offset, kept: count, ordered: order ? 1 : 0, scale: b.scale },
        'assemble params',
      );
      small.push(columns, means, params);
      groups.push({ group: ctx.bindGroup(kernel, [params, source, orderBuf, columns, means, out]), count });
      offset += count;
    });
    const [read] = await ctx.run(
      'assembleBlocks',
      (pass) => {
        for (const { group, count } of groups) {
          const wgs = Math.ceil((n * count) / 256);
          ctx.dispatch(pass, kernel, [group], Math.min(wgs, MAX_GROUPS), Math.ceil(wgs / MAX_GROUPS));
        }
      },
      [{ buffer: out, bytes: 4 * n * width }],
    );
    const data = new Float32Array(read!);
    checkFinite(data, 'assembleBlocks');
    ctx.copies.put(data, out);
    return { rows: n, cols: width, data };
  } catch (error) {
    ctx.pool.release(out);
    throw error;
  } finally {
    ctx.pool.release(...small);
  }
}
