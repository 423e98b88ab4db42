/** The projection and distance kernels: matmul with bias, and blocked pairwise distances. */
import type { Floats, Matrix } from '../../../core/matrix.js';
import { runChunked } from '../chunked.js';
import { checkFinite, f32, type GpuContext, MAX_GROUPS, STORAGE_IN, STORAGE_OUT } from '../context.js';

export async function matmul(ctx: GpuContext, a: Matrix, b: Matrix, bias?: Floats): Promise<Matrix> {
  if (a.cols !== b.rows) throw new RangeError(`matmul: ${a.rows}x${a.cols} @ ${b.rows}x${b.cols}`);
  if (bias && bias.length !== b.cols) throw new RangeError(`matmul: bias length ${bias.length} != ${b.cols}`);
  const { rows: m, cols: k } = a;
  const n = b.cols;
  const kernel = await ctx.begin('matmul');
  const out = new Float32Array(m * n);
  // A left operand already on the device (the assembled features PCA projects) is bound there,
  // in chunks on 64-row boundaries; a projection of it made in one chunk stays on the device as
  // the copy of the returned matrix, for the K-means kernels that take it next.
  const residentA = ctx.copies.get(a.data);
  let kept: GPUBuffer | undefined;
  const bBuf = ctx.upload(f32(b.data), STORAGE_IN, 'matmul b');
  const biasBuf = ctx.upload(bias ? f32(bias) : new Float32Array(1), STORAGE_IN, 'matmul bias');
  try {
    const rows = ctx.chunkRows(m, 4 * ((residentA ? 0 : k) + 2 * n), 4 * Math.max(k, n), 0, 'matmul', {
      maxRows: MAX_GROUPS * 64,
      align: residentA ? 64 : 1,
    });
    await runChunked(ctx, 'matmul', { end: m, rows }, (c) => {
      const aSlice = c.rowsOf(a.data, k, 'matmul a', residentA);
      const bytes = 4 * c.count * n;
      // The one chunk of a resident a keeps its output: acquired outside the chunk's buffers.
      if (residentA && c.count === m) kept = ctx.pool.acquire(bytes, STORAGE_OUT, 'matmul c');
      const cBuf = kept ?? c.acquire(bytes, STORAGE_OUT, 'matmul c');
      const params = c.params('matmul', { m: c.count, n, k, has_bias: bias ? 1 : 0 }, 'matmul params');
      const group = ctx.bindGroup(kernel, [params, aSlice, bBuf, biasBuf, cBuf]);
      return {
        record: (pass) => ctx.dispatch(pass, kernel, [group], Math.ceil(n / 64), Math.ceil(c.count / 64)),
        reads: [{ buffer: cBuf, bytes }],
        done: ([read]) => out.set(new Float32Array(read!), c.start * n),
      };
    });
    checkFinite(out, 'matmul');
  } catch (error) {
    if (kept) ctx.pool.release(kept);
    throw error;
  } finally {
    ctx.pool.release(bBuf, biasBuf);
  }
  if (kept) ctx.copies.put(out, kept);
  return { rows: m, cols: n, data: out };
}

export async function pairwiseDistances(
  ctx: GpuContext,
  a: Matrix,
  b: Matrix,
  options: { squared?: boolean } = {},
): Promise<Matrix> {
  if (a.cols !== b.cols) throw new RangeError(`pairwiseDistances: widths differ (${a.cols} vs ${b.cols})`);
  const { rows: m, cols: d } = a;
  const n = b.rows;
  const kernel = await ctx.begin('pairwise');
  const out = new Float32Array(m * n);
  // b stays on the device (K-means++ passes the points again and again) when it fits easily;
  // else it goes up block by block. Blocks stay within one dispatch dimension (16 rows a
  // workgroup) and start on 64-row boundaries, so a block of the resident b binds aligned.
  const bBytes = 4 * b.data.length;
  const resident = ctx.bindable(bBytes) ? ctx.residentCopy(b.data, 'pairwise b') : undefined;
  let bBlock = Math.min(n, 64 * Math.floor((MAX_GROUPS * 16) / 64));
  if (!resident) bBlock = Math.max(1, Math.min(bBlock, Math.floor(ctx.pool.budgetBytes / 8 / (4 * d))));
  for (let bStart = 0; bStart < n; bStart += bBlock) {
    const nb = Math.min(bBlock, n - bStart);
    const uploaded = resident
      ? undefined
      : ctx.upload(f32(b.data.subarray(bStart * d, (bStart + nb) * d)), STORAGE_IN, 'pairwise b');
    try {
      const bSlice = resident ? { buffer: resident, offset: 4 * bStart * d, size: 4 * nb * d } : uploaded!;
      const rows = ctx.chunkRows(m, 4 * (d + 2 * nb), 4 * Math.max(d, nb), 0, 'pairwiseDistances', {
        maxRows: MAX_GROUPS * 16,
      });
      await runChunked(ctx, 'pairwiseDistances', { end: m, rows }, (c) => {
        const aBuf = c.rowsOf(a.data, d, 'pairwise a');
        const outBuf = c.acquire(4 * c.count * nb, STORAGE_OUT, 'pairwise out');
        const params = c.params(
          'distances',
          { m: c.count, n: nb, d, flag: options.squared ? 1 : 0, k: 0 },
          'pairwise params',
        );
        const group = ctx.bindGroup(kernel, [params, aBuf, bSlice, outBuf]);
        return {
          record: (pass) => ctx.dispatch(pass, kernel, [group], Math.ceil(nb / 16), Math.ceil(c.count / 16)),
          reads: [{ buffer: outBuf, bytes: 4 * c.count * nb }],
          done: ([bytes]) => {
            const block = new Float32Array(bytes!);
            for (let i = 0; i < c.count; i++)
              out.set(block.subarray(i * nb, (i + 1) * nb), (c.start + i) * n + bStart);
          },
        };
      });
    } finally {
      if (uploaded) ctx.pool.release(uploaded);
    }
  }
  checkFinite(out, 'pairwiseDistances');
  return { rows: m, cols: n, data: out };
}
