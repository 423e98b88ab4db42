/**
 * Encoders run their kernels over chunks of samples: a chunk's output stays under a memory budget
 * (the model space needs every state of every step: N x T x R doubles add up fast), and a
 * cancelled operation stops between chunks rather than after the whole data set.
 */
import type { Backend } from '../backends/backend.js';
import { throwIfAborted } from '../core/cancel.js';
import type { Features, Matrix } from '../core/matrix.js';
import type { EncodeProgress, EncoderInput } from './drive.js';

/** What one chunk's kernel output may take. */
export const CHUNK_BUDGET_BYTES = 64 * 1024 * 1024;

/** Samples per chunk at most, so progress and cancellation come every few seconds on a CPU. */
const MAX_CHUNK_ROWS = 8192;

/** Rows `[start, end)` of a matrix, as a view. */
export function sliceRows(m: Matrix, start: number, end: number): Matrix {
  return { rows: end - start, cols: m.cols, data: m.data.subarray(start * m.cols, end * m.cols) };
}

export interface ChunkOptions {
  /** Bytes the chunk function holds per sample at its peak. */
  readonly bytesPerSample: number;
  readonly signal?: AbortSignal | undefined;
  readonly budgetBytes?: number;
  /** Called after each chunk with the samples done so far. */
  readonly onChunk?: ((done: number, total: number) => void) | undefined;
}

/** Runs `chunk` over `[0, n)` in chunks within the budget and stacks the feature rows they return. */
export async function inSampleChunks(
  n: number,
  { bytesPerSample, signal, budgetBytes = CHUNK_BUDGET_BYTES, onChunk }: ChunkOptions,
  chunk: (start: number, end: number) => Promise<Matrix>,
): Promise<Matrix> {
  const rows = Math.min(MAX_CHUNK_ROWS, Math.max(1, Math.floor(budgetBytes / Math.max(1, bytesPerSample))));
  const parts: Matrix[] = [];
  for (let start = 0; start < n; start += rows) {
    throwIfAborted(signal);
    const end = Math.min(n, start + rows);
    parts.push(await chunk(start, end));
    onChunk?.(end, n);
  }
  if (parts.length === 1) return parts[0]!;
  const cols = parts[0]?.cols ?? 0;
  const data = new Float64Array(n * cols);
  let offset = 0;
  for (const part of parts) {
    data.set(part.data, offset);
    offset += part.data.length;
  }
  return { rows: n, cols, data };
}

/** What {@link encodeSamples} runs an encoder's kernel with. */
export interface EncoderKernel<D extends { readonly inputs: Matrix }> {
  readonly encoder: EncodeProgress['encoder'];
  /** The drive of every sample; its input rows are what is chunked. */
  readonly drive: D;
  /** Bytes a chunk holds per sample at its peak. */
  readonly bytesPerSample: number;
  /** Every sample in one call, the output left where the backend keeps it; none: always chunk. */
  readonly kept: (() => Promise<Features>) | undefined;
  /** The samples `[start, end)` of `drive` (as `part`) on the host. */
  readonly chunk: (part: D, start: number, end: number) => Promise<Matrix>;
}

/**
 * Runs an encoder kernel over all its samples, reporting progress to `input`. A backend that keeps
 * outputs (a GPU) gets them in one call, `kept()`, and may leave the output on its device for the
 * feature pipeline and K-means to take from there; it splits the work by its own memory. Every
 * other backend runs `chunk` over chunks of samples on the host, as {@link inSampleChunks}.
 */
export async function encodeSamples<D extends { readonly inputs: Matrix }>(
  backend: Backend,
  input: Pick<EncoderInput, 'signal' | 'onProgress'>,
  kernel: EncoderKernel<D>,
): Promise<Features> {
  const { drive, encoder, kept } = kernel;
  const n = drive.inputs.rows;
  const options: ChunkOptions = {
    bytesPerSample: kernel.bytesPerSample,
    signal: input.signal,
    onChunk: (done, total) => input.onProgress?.({ type: 'encode', encoder, done, total }),
  };
  if (!kept || !backend.keepsOutputs) {
    return inSampleChunks(n, options, (start, end) =>
      kernel.chunk({ ...drive, inputs: sliceRows(drive.inputs, start, end) }, start, end),
    );
  }
  throwIfAborted(options.signal);
  const out = await kept();
  options.onChunk?.(n, n);
  return out;
}
