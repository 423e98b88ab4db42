/**
 * The K-means kernels: assign (fused distance + argmin), reduce (per-cluster sums and counts), a
 * Lloyd step (both, with the label state kept on the device, one readback of k x d + k + 2
 * numbers) and the per-cluster distance sums behind the silhouette.
 */
import { BackendError } from '../../../core/errors.js';
import type { Assignment, ClusterSums, LloydStep, Matrix } from '../../../core/matrix.js';
import { checkLabels } from '../../backend.js';
import { runChunked } from '../chunked.js';
import { checkFinite, f32, type GpuContext, MAX_GROUPS, STORAGE_IN, STORAGE_OUT } from '../context.js';

/** The most clusters the workgroup memory of kmeans.wgsl holds. */
const KMEANS_MAX_K = 1024;

/** Checks K-means shapes against the limits the WGSL fixes. */
function checkK(points: Matrix, centroids: Matrix, what: string): void {
  if (points.cols !== centroids.cols)
    throw new RangeError(`${what}: widths differ (${points.cols} vs ${centroids.cols})`);
  checkClusterCount(centroids.rows, what);
}

function checkClusterCount(k: number, what: string): void {
  if (k > KMEANS_MAX_K) {
    throw new BackendError(
      `${what}: k = ${k} is more than the WebGPU kernel's ${KMEANS_MAX_K} clusters`,
      'NEUROCLUSTER_ERR_KERNEL',
    );
  }
}

/** The points on the device whole when they fit, else undefined (they go up chunk by chunk). */
function pointsOnDevice(ctx: GpuContext, points: Matrix): GPUBuffer | undefined {
  return ctx.bindable(4 * points.data.length) ? ctx.residentCopy(points.data, 'points') : undefined;
}

export async function kmeansAssign(ctx: GpuContext, points: Matrix, centroids: Matrix): Promise<Assignment> {
  checkK(points, centroids, 'kmeansAssign');
  const { rows: n, cols: d } = points;
  const kernel = await ctx.begin('assign');
  const labels = new Int32Array(n);
  const distances = new Float64Array(n);
  const whole = pointsOnDevice(ctx, points);
  const cBuf = ctx.upload(f32(centroids.data), STORAGE_IN, 'centroids');
  try {
    const rows = whole
      ? n
      : ctx.chunkRows(n, 4 * (2 * d + 4), 4 * d, 4 * centroids.data.length, 'kmeansAssign');
    await runChunked(ctx, 'kmeansAssign', { end: n, rows }, (c) => {
      const slice = c.rowsOf(points.data, d, 'points', whole);
      const lBuf = c.acquire(4 * c.count, STORAGE_OUT, 'labels');
      const dBuf = c.acquire(4 * c.count, STORAGE_OUT, 'distances');
      const params = c.params('kmeans', { n: c.count, d, k: centroids.rows, groups: 0 }, 'assign params');
      const group = ctx.bindGroup(kernel, [params, slice, cBuf, lBuf, dBuf]);
      const blocks = Math.ceil(c.count / 256);
      return {
        record: (pass) =>
          ctx.dispatch(pass, kernel, [group], Math.min(blocks, MAX_GROUPS), Math.ceil(blocks / MAX_GROUPS)),
        reads: [
          { buffer: lBuf, bytes: 4 * c.count },
          { buffer: dBuf, bytes: 4 * c.count },
        ],
        done: ([lab, dist]) => {
          labels.set(new Int32Array(lab!), c.start);
          const dd = new Float32Array(dist!);
          checkFinite(dd, 'kmeansAssign');
          distances.set(dd, c.start);
        },
      };
    });
  } finally {
    ctx.pool.release(cBuf);
  }
  return { labels, distances };
}

export async function kmeansReduce(
  ctx: GpuContext,
  points: Matrix,
  labels: Int32Array,
  k: number,
): Promise<ClusterSums> {
  checkLabels(labels, points.rows, k, 'kmeansReduce');
  checkClusterCount(k, 'kmeansReduce');
  const lBuf = ctx.upload(labels, STORAGE_IN, 'labels');
  try {
    const { sums, counts } = await reduceOnDevice(ctx, 'kmeansReduce', 'reduce', points, k, lBuf);
    return { sums, counts };
  } finally {
    ctx.pool.release(lBuf);
  }
}

export async function kmeansStep(
  ctx: GpuContext,
  points: Matrix,
  centroids: Matrix,
  labels: Int32Array,
): Promise<LloydStep> {
  checkK(points, centroids, 'kmeansStep');
  // The run's label state lives on the device from its first pass on.
  const lBuf =
    ctx.labelStates.get(labels) ??
    ctx.labelStates.put(labels, ctx.upload(labels, STORAGE_OUT, 'label state'));
  const cBuf = ctx.upload(f32(centroids.data), STORAGE_IN, 'centroids');
  try {
    return await reduceOnDevice(ctx, 'kmeansStep', 'lloyd', points, centroids.rows, lBuf, cBuf);
  } finally {
    ctx.pool.release(cBuf);
  }
}

/**
 * Per-cluster sums and counts of the points, by `entry` (`lloyd` assigns to the centroids
 * first, updating the label state; `reduce` takes the labels as they are), partial sums per
 * workgroup added up on the device. Points that fit stay on the device and take one
 * submission; otherwise each chunk of points is uploaded, reduced into the same results and
 * submitted before the next reuses its buffers. Either way the results are read back once.
 */
async function reduceOnDevice(
  ctx: GpuContext,
  what: string,
  entry: 'lloyd' | 'reduce',
  points: Matrix,
  k: number,
  lBuf: GPUBuffer,
  cBuf?: GPUBuffer,
): Promise<LloydStep> {
  const { rows: n, cols: d } = points;
  const kernel = await ctx.begin(entry);
  const finish = await ctx.kernels.get('lloydFinish');
  const kd = k * d;
  const whole = pointsOnDevice(ctx, points);
  const resultF = ctx.pool.acquire(4 * (kd + 1), STORAGE_OUT, `${what} sums`);
  const resultU = ctx.pool.acquire(4 * (k + 1), STORAGE_OUT, `${what} counts`);
  try {
    // Per row: the points, and the partial sums' share; chunks start on 64-row boundaries, as
    // the labels are bound at 256-byte-aligned offsets.
    const rows = whole ? n : ctx.chunkRows(n, 4 * 2 * d, 4 * d, 4 * (2 * kd + k + 2), what, { align: 64 });
    const clear = (encoder: GPUCommandEncoder) => {
      encoder.clearBuffer(resultF);
      encoder.clearBuffer(resultU);
    };
    let result: LloydStep | undefined;
    await runChunked(ctx, what, { end: n, rows }, (c) => {
      const blocks = Math.ceil(c.count / 256);
      // Workgroups, each reducing a share of the blocks into its own partial sums.
      const groups = Math.max(
        1,
        Math.min(blocks, 1024, Math.floor(ctx.pool.budgetBytes / 8 / (4 * (kd + k + 2)))),
      );
      const slice = c.rowsOf(points.data, d, 'points', whole);
      const partialF = c.acquire(4 * groups * (kd + 1), STORAGE_OUT, `${what} partial sums`);
      const partialU = c.acquire(4 * groups * (k + 1), STORAGE_OUT, `${what} partial counts`);
      const params = c.params('kmeans', { n: c.count, d, k, groups }, `${what} params`);
      const labelSlice = { buffer: lBuf, offset: 4 * c.start, size: 4 * c.count };
      const g1 = cBuf
        ? ctx.bindGroup(kernel, [params, slice, cBuf, labelSlice, partialF, partialU])
        : ctx.bindGroup(kernel, [params, slice, labelSlice, partialF, partialU]);
      const g2 = ctx.bindGroup(finish, [params, partialF, partialU, resultF, resultU]);
      return {
        record: (pass) => {
          ctx.dispatch(pass, kernel, [g1], groups);
          ctx.dispatch(pass, finish, [g2], Math.ceil((kd + 1) / 256));
        },
        before: c.start === 0 ? clear : undefined,
        // Chunks before the last are submitted alone; the results are read once, after the last.
        reads: c.last
          ? [
              { buffer: resultF, bytes: 4 * (kd + 1) },
              { buffer: resultU, bytes: 4 * (k + 1) },
            ]
          : undefined,
        done: ([sumBytes, countBytes]) => {
          const sf = new Float32Array(sumBytes!);
          checkFinite(sf, what);
          const su = new Uint32Array(countBytes!);
          result = {
            sums: Float64Array.from(sf.subarray(0, kd)),
            counts: Float64Array.from(su.subarray(0, k)),
            inertia: sf[kd]!,
            changed: su[k]!,
          };
        },
      };
    });
    if (!result) throw new RangeError(`${what}: no points`);
    return result;
  } finally {
    ctx.pool.release(resultF, resultU);
  }
}

export async function clusterDistanceSums(
  ctx: GpuContext,
  points: Matrix,
  labels: Int32Array,
  k: number,
  rowStart: number,
  rowEnd: number,
): Promise<Float64Array> {
  const { rows: n, cols: d } = points;
  const kernel = await ctx.begin('clusterSums');
  // k + 1 offsets, then the point indices ordered by cluster (a counting sort).
  checkLabels(labels, n, k, 'clusterDistanceSums');
  const index = new Uint32Array(k + 1 + n);
  for (let i = 0; i < n; i++) index[labels[i]! + 1]!++;
  for (let j = 0; j < k; j++) index[j + 1]! += index[j]!;
  const fill = index.slice(0, k);
  for (let i = 0; i < n; i++) index[k + 1 + fill[labels[i]!]!++] = i;
  if (k > MAX_GROUPS)
    throw new BackendError(`clusterDistanceSums: k = ${k} clusters`, 'NEUROCLUSTER_ERR_KERNEL');
  const pBuf = ctx.residentCopy(points.data, 'points');
  const iBuf = ctx.upload(index, STORAGE_IN, 'cluster order');
  const out = new Float64Array((rowEnd - rowStart) * k);
  try {
    // Row blocks within one dispatch dimension (64 rows a workgroup).
    const span = { start: rowStart, end: rowEnd, rows: MAX_GROUPS * 64 };
    await runChunked(ctx, 'clusterDistanceSums', span, (c) => {
      const outBuf = c.acquire(4 * Math.max(1, c.count * k), STORAGE_OUT, 'cluster sums');
      const params = c.params('distances', { m: c.count, n, d, flag: c.start, k }, 'cluster sums params');
      const group = ctx.bindGroup(kernel, [params, pBuf, iBuf, outBuf]);
      return {
        record: (pass) => ctx.dispatch(pass, kernel, [group], Math.ceil(c.count / 64), k),
        reads: [{ buffer: outBuf, bytes: 4 * c.count * k }],
        done: ([bytes]) => {
          const part = new Float32Array(bytes!);
          checkFinite(part, 'clusterDistanceSums');
          out.set(part, (c.start - rowStart) * k);
        },
      };
    });
    return out;
  } finally {
    ctx.pool.release(iBuf);
  }
}
