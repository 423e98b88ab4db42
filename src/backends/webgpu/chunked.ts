/**
 * The one loop of every kernel call that splits its rows into chunks (sized by
 * `GpuContext.chunkRows` or by a dispatch limit): for each chunk, the caller uploads and acquires
 * what the chunk needs through {@link Chunk} and says what to record and what to read back; the
 * chunk is submitted (and read back, when it reads anything) and its buffers go back to the pool.
 */
import { throwIfAborted } from '../../core/cancel.js';
import type { Floats } from '../../core/matrix.js';
import {
  type EncoderStep,
  f32,
  type GpuContext,
  type Readback,
  type Recorder,
  STORAGE_IN,
} from './context.js';
import type { WgslModule } from './wgsl.generated.js';

/** One chunk of rows `[start, start + count)`, and buffers that live as long as its work. */
export interface Chunk {
  readonly start: number;
  readonly count: number;
  /** Whether no chunk follows. */
  readonly last: boolean;
  upload(data: ArrayBufferView & { byteLength: number }, usage: number, label: string): GPUBuffer;
  acquire(bytes: number, usage: number, label: string): GPUBuffer;
  /** A uniform buffer of `module`'s `struct Params` (see `GpuContext.params`). */
  params(module: WgslModule, values: Readonly<Record<string, number>>, label: string): GPUBuffer;
  /**
   * The chunk's rows of a row-major host matrix `cols` wide: a range of `resident`, its device
   * copy, when there is one; else uploaded as float32.
   */
  rowsOf(data: Floats, cols: number, label: string, resident?: GPUBuffer): GPUBuffer | GPUBufferBinding;
}

/** What one chunk submits: a pass, and either buffers to read back or copies behind the pass. */
export interface ChunkWork {
  readonly record: Recorder;
  readonly before?: EncoderStep | undefined;
  /** Copies behind the pass; taken only when nothing is read back. */
  readonly after?: EncoderStep | undefined;
  /** What to read back (one readback); none: the chunk is submitted alone. */
  readonly reads?: readonly Readback[] | undefined;
  /** Takes the bytes of each read. */
  readonly done?: ((bytes: ArrayBuffer[]) => void) | undefined;
}

/** Rows `[start, end)` in chunks of `rows`; `signal` is checked before each chunk. */
export interface ChunkSpan {
  readonly start?: number;
  readonly end: number;
  readonly rows: number;
  readonly signal?: AbortSignal | undefined;
}

/**
 * Runs `chunk` for each chunk of the span, one submission each. The buffers a chunk gets through
 * {@link Chunk} are released once its work is submitted (and read): the queue runs a later
 * chunk's uploads after this work, so the next chunk may reuse them.
 */
export async function runChunked(
  ctx: GpuContext,
  what: string,
  { start: first = 0, end, rows, signal }: ChunkSpan,
  chunk: (c: Chunk) => ChunkWork,
): Promise<void> {
  for (let start = first; start < end; start += rows) {
    throwIfAborted(signal);
    const count = Math.min(rows, end - start);
    const owned: GPUBuffer[] = [];
    const own = (buffer: GPUBuffer) => {
      owned.push(buffer);
      return buffer;
    };
    const c: Chunk = {
      start,
      count,
      last: start + count >= end,
      upload: (data, usage, label) => own(ctx.upload(data, usage, label)),
      acquire: (bytes, usage, label) => own(ctx.pool.acquire(bytes, usage, label)),
      params: (module, values, label) => own(ctx.params(module, values, label)),
      rowsOf: (data, cols, label, resident) =>
        resident
          ? { buffer: resident, offset: 4 * start * cols, size: 4 * count * cols }
          : own(ctx.upload(f32(data.subarray(start * cols, (start + count) * cols)), STORAGE_IN, label)),
    };
    try {
      const work = chunk(c);
      if (work.reads) {
        const bytes = await ctx.run(what, work.record, work.reads, work.before);
        work.done?.(bytes);
      } else {
        await ctx.submit(what, work.record, work.before, work.after);
      }
    } finally {
      ctx.pool.release(...owned);
    }
  }
}
