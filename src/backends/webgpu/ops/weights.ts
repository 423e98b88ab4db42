/** Encoder weights as the reservoir and spiking kernels read them. */
import type { Floats, Matrix } from '../../../core/matrix.js';
import type { RecurrentWeights } from '../../backend.js';
import { f32, type GpuContext, STORAGE_IN } from '../context.js';

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

/** An encoder's weights: input weights, bias and, when it has them, recurrent weights. */
export interface EncoderWeights {
  readonly inputWeights: Matrix;
  readonly bias?: Floats | undefined;
  readonly recurrent?: RecurrentWeights | undefined;
}

/**
 * The weights on the device: one float buffer (W_in, bias, then the recurrent values, dense or in
 * CSC order), with where each part starts, and the CSC offsets and row indices of sparse recurrent
 * weights (one unused word otherwise).
 */
export function uploadWeights(ctx: GpuContext, w: EncoderWeights, label: string) {
  const csc = w.recurrent?.kind === 'csr' ? toCsc(w.recurrent) : undefined;
  const dense = w.recurrent?.kind === 'dense' ? f32(w.recurrent.matrix.data) : undefined;
  const recurrent = csc?.values ?? dense;
  const r = w.inputWeights.cols;
  const wInAt = 0;
  const biasAt = w.inputWeights.data.length;
  const wAt = biasAt + r;
  const packed = new Float32Array(wAt + (recurrent?.length ?? 0));
  packed.set(f32(w.inputWeights.data), wInAt);
  if (w.bias) packed.set(f32(w.bias), biasAt);
  if (recurrent) packed.set(recurrent, wAt);
  const weights = ctx.upload(packed, STORAGE_IN, `${label} weights`);
  const cscBuf = ctx.upload(csc?.offsets ?? new Uint32Array(1), STORAGE_IN, `${label} csc`);
  return { weights, cscBuf, wInAt, biasAt, wAt };
}
