/**
 * The LIF layer (an LSM when it has recurrent weights): all T steps of a chunk of samples in one
 * submission, one workgroup a sample, spikes drawn from Philox keyed by each sample's key, so a
 * seed gives the JS reference's spikes bit for bit.
 */
import { BackendError } from '../../../core/errors.js';
import type { Features } from '../../../core/matrix.js';
import { philoxKey } from '../../../core/philox.js';
import { checkDrive, type KeepOption, type SpikingRun } from '../../backend.js';
import { runChunked } from '../chunked.js';
import { type GpuContext, MAX_GROUPS, STORAGE_IN, STORAGE_OUT } from '../context.js';
import { EncoderOutput } from './features.js';
import { uploadWeights } from './weights.js';

/** Workgroup-memory sizes the WGSL fixes (spiking.wgsl). */
const SPIKING_MAX_UNITS = 4096;
const SPIKING_MAX_INPUTS = 2048;

export async function spikingRun(ctx: GpuContext, run: SpikingRun & KeepOption): Promise<Features> {
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
  const kernel = await ctx.begin('spiking');
  const width = r * windows;
  const recurrentKind = run.recurrent ? (run.recurrent.kind === 'csr' ? 2 : 1) : 0;
  const [key0, key1] = philoxKey(run.seed);
  const readoutCode = { counts: 0, rates: 1, 'first-spike': 2, trace: 3 }[run.readout];
  const { weights, cscBuf, wInAt, biasAt, wAt } = uploadWeights(ctx, run, 'spiking');
  const out = new EncoderOutput(ctx, run, inputs.rows, width);
  try {
    // Inputs, the sample key, the features and their readback, per sample (weights counted).
    const rows = ctx.chunkRows(
      inputs.rows,
      4 * (inputs.cols + 1 + 2 * width),
      4 * Math.max(inputs.cols, width),
      0,
      'spikingRun',
    );
    await runChunked(ctx, 'spikingRun', { end: inputs.rows, rows, signal: run.signal }, (c) => {
      const { start, count } = c;
      const inBuf = c.rowsOf(inputs.data, inputs.cols, 'spiking inputs');
      const keyBuf = c.upload(run.sampleKeys.subarray(start, start + count), STORAGE_IN, 'sample keys');
      const outBuf = c.acquire(4 * count * width, STORAGE_OUT, 'spiking out');
      const params = c.params(
        'spiking',
        {
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
        },
        'spiking params',
      );
      const group = ctx.bindGroup(kernel, [params, inBuf, weights, cscBuf, keyBuf, outBuf]);
      return {
        record: (pass) =>
          ctx.dispatch(pass, kernel, [group], Math.min(count, MAX_GROUPS), Math.ceil(count / MAX_GROUPS)),
        ...out.take('spikingRun', c, outBuf),
      };
    });
  } catch (error) {
    out.kept?.release();
    throw error;
  } finally {
    ctx.pool.release(weights, cscBuf);
  }
  return out.result();
}
