/**
 * The leaky tanh reservoir, dense or sparse (CSC) recurrent weights: all T steps of a chunk of
 * samples in one submission, the state on the device throughout, the readout blocks written by
 * the steps that read them out.
 */
import { BackendError } from '../../../core/errors.js';
import type { Features } from '../../../core/matrix.js';
import {
  checkDrive,
  checkReadout,
  type KeepOption,
  type ReservoirRun,
  readoutBlocks,
} from '../../backend.js';
import { type Chunk, type ChunkWork, runChunked } from '../chunked.js';
import { type GpuContext, MAX_GROUPS, STORAGE_OUT, UNIFORM } from '../context.js';
import type { Kernel } from '../kernels.js';
import { EncoderOutput } from './features.js';
import { uploadWeights } from './weights.js';

/** Readout blocks one step may write (the 256-byte step slot of reservoir.wgsl holds them). */
const MAX_BLOCKS_PER_STEP = 8;

export async function reservoirRun(ctx: GpuContext, run: ReservoirRun & KeepOption): Promise<Features> {
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
  const kernel = await ctx.begin(sparse ? 'reservoirSparse' : 'reservoirDense');
  const width = r * blocks;
  const lastBlock = readout.last ? (readout.times?.length ?? 0) : -1;
  const meanBlock = readout.mean ? blocks - 1 : 0xffffffff;
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
  const { weights, cscBuf, wInAt, biasAt, wAt } = uploadWeights(ctx, run, 'reservoir');
  const stepBuf = ctx.upload(stepWords, UNIFORM, 'reservoir steps');
  const out = new EncoderOutput(ctx, run, inputs.rows, width);
  try {
    // Inputs, two states, the running mean, the features and their readback, per sample; the
    // weights are already counted in the pool.
    const rowBytes = 4 * (inputs.cols + 3 * r + 2 * width);
    const rows = ctx.chunkRows(inputs.rows, rowBytes, 4 * Math.max(inputs.cols, width), 0, 'reservoirRun', {
      maxRows: MAX_GROUPS * 64,
    });
    await runChunked(ctx, 'reservoirRun', { end: inputs.rows, rows, signal: run.signal }, (c) =>
      reservoirChunk(ctx, c, kernel, sparse, {
        params: {
          n: c.count,
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
        },
        inputs,
        weights,
        cscBuf,
        stepBuf,
        r,
        steps,
        out,
      }),
    );
  } catch (error) {
    out.kept?.release();
    throw error;
  } finally {
    ctx.pool.release(weights, cscBuf, stepBuf);
  }
  return out.result();
}

/**
 * One chunk of a reservoir run: all steps in one submission, the features read back once, or
 * copied into the rows of the buffer that keeps them on the device.
 */
function reservoirChunk(
  ctx: GpuContext,
  c: Chunk,
  kernel: Kernel,
  sparse: boolean,
  run: {
    params: Readonly<Record<string, number>>;
    inputs: ReservoirRun['inputs'];
    weights: GPUBuffer;
    cscBuf: GPUBuffer;
    stepBuf: GPUBuffer;
    r: number;
    steps: number;
    out: EncoderOutput;
  },
): ChunkWork {
  const rows = c.count;
  const state = 4 * rows * run.r;
  const inBuf = c.rowsOf(run.inputs.data, run.inputs.cols, 'reservoir inputs');
  const params = c.params('reservoir', run.params, 'reservoir params');
  const x = [c.acquire(state, STORAGE_OUT, 'state a'), c.acquire(state, STORAGE_OUT, 'state b')];
  const acc = c.acquire(state, STORAGE_OUT, 'state mean');
  const outBuf = c.acquire(4 * rows * run.out.width, STORAGE_OUT, 'reservoir out');
  const groups = [0, 1].map((from) => {
    const resources = sparse
      ? [params, inBuf, run.weights, run.cscBuf, x[from]!, x[1 - from]!, acc, outBuf]
      : [params, inBuf, run.weights, x[from]!, x[1 - from]!, acc, outBuf];
    return ctx.bindGroup(kernel, resources);
  });
  const stepGroup = ctx.bindGroup(kernel, [{ buffer: run.stepBuf, size: 48 }], 1);
  const record = (pass: GPUComputePassEncoder) => {
    pass.setPipeline(kernel.pipeline);
    for (let t = 0; t < run.steps; t++) {
      pass.setBindGroup(0, groups[t % 2]!);
      pass.setBindGroup(1, stepGroup, [256 * t]);
      if (sparse) {
        const y = Math.min(rows, MAX_GROUPS);
        pass.dispatchWorkgroups(Math.ceil(run.r / 64), y, Math.ceil(rows / MAX_GROUPS));
      } else {
        pass.dispatchWorkgroups(Math.ceil(run.r / 64), Math.ceil(rows / 64));
      }
      ctx.counters.dispatches++;
    }
  };
  const clear = (encoder: GPUCommandEncoder) => {
    encoder.clearBuffer(x[0]!, 0, state);
    encoder.clearBuffer(acc, 0, state);
  };
  return { record, before: clear, ...run.out.take('reservoirRun', c, outBuf) };
}
