/**
 * The spiking encoders, both run by the backend's spiking kernel: `snn`, one layer of leaky
 * integrate-and-fire neurons, and `lsm`, a recurrent liquid of excitatory and inhibitory LIF
 * neurons wired by distance on a 3-D grid (Maass et al. 2002).
 */
import type { Backend, Drive, RecurrentWeights, SpikingRun } from '../backends/backend.js';
import type { LsmConfig, SnnConfig } from '../config/schema.js';
import { UsageError } from '../core/errors.js';
import type { Features, Matrix } from '../core/matrix.js';
import { Random } from '../core/random.js';
import { encodeSamples, sliceRows } from './chunks.js';
import { driveOf, type EncoderInput, readValues, requireOwnEnds } from './drive.js';
import { modelSpace } from './model-space.js';
import { liquidWiring, normalMatrix, recurrentWeights } from './weights.js';

export interface SpikingState {
  readonly kind: 'snn' | 'lsm';
  readonly params: SnnConfig | LsmConfig;
  readonly inputWeights: Matrix;
  readonly recurrent?: RecurrentWeights | undefined;
  /** Keys the Philox stream of the input spikes (rate coding). */
  readonly spikeSeed: number;
}

/** A LIF layer: weights from `seed`, input spikes from `spikeSeed`. */
export function createSnn(
  params: SnnConfig,
  inputDim: number,
  seed: number,
  spikeSeed: number,
): SpikingState {
  const rng = new Random(seed);
  return {
    kind: 'snn',
    params,
    inputWeights: normalMatrix(rng, inputDim, params.neurons, params.inputScaling),
    spikeSeed,
  };
}

/** A liquid: weights and wiring from `seed`, input spikes from `spikeSeed`. */
export function createLsm(
  params: LsmConfig,
  inputDim: number,
  seed: number,
  spikeSeed: number,
): SpikingState {
  const rng = new Random(seed);
  const inputWeights = normalMatrix(rng, inputDim, params.neurons, params.inputScaling);
  const liquid = liquidWiring(rng, params.neurons, {
    excitatory: params.excitatory,
    connectivity: params.connectivity,
    lambda: params.lambda,
    weightScale: params.weightScale,
  });
  return { kind: 'lsm', params, inputWeights, recurrent: recurrentWeights(liquid.weights), spikeSeed };
}

const logistic = (x: number) => 1 / (1 + Math.exp(-x));

type SpikingReadout = 'rates' | 'counts' | 'first-spike' | 'trace' | 'model-space';

/** The readout actually used: `auto` is rates (snn) or counts (lsm) for a static input, the model space for a sequence. */
export function spikingReadout(state: SpikingState, sequence: boolean): SpikingReadout {
  const readout = state.params.readout;
  if (readout === 'model-space' && !sequence) {
    throw new UsageError(`the ${state.kind} readout "model-space" needs time series input`);
  }
  if (readout !== 'auto') return readout;
  if (sequence) return 'model-space';
  return state.kind === 'snn' ? 'rates' : 'counts';
}

/**
 * Runs the layer; features are per-window rates (Hz), counts, first-spike latencies (ms) or
 * traces, left on the device by a backend that keeps outputs.
 */
export async function runSpiking(
  backend: Backend,
  state: SpikingState,
  input: EncoderInput,
): Promise<Features> {
  const p = state.params;
  const staticSteps = Math.max(1, Math.round(p.duration / p.dt));
  let values = readValues(input);
  // A sequence shows each value for one step: one coin flip at p <= maxRate dt would lose it, so
  // `auto` codes a sequence as current and only a static input (seen for many steps) as rates.
  const encoding = p.encoding === 'auto' ? (input.series ? 'current' : 'rate') : p.encoding;
  if (encoding === 'rate') {
    // Rate coding: a standardized value maps through the logistic to a firing probability per
    // step, at most maxRate; rounded to float32 so every backend sees the same probabilities.
    const scale = (p.maxRate * p.dt) / 1000;
    values = { ...values, data: Float32Array.from(values.data, (v) => Math.fround(scale * logistic(v))) };
  }
  const drive = driveOf(input, staticSteps, values);
  const mode = spikingReadout(state, drive.sequence);
  requireOwnEnds(input, state.kind, mode);
  // The model space needs the trace after every step; the others keep a few windows of a sequence.
  const windows =
    mode === 'model-space' ? drive.steps : drive.sequence ? Math.min(p.timePoints, drive.steps) : 1;
  const readout = mode === 'model-space' ? 'trace' : mode;
  // Rates from spikes per step to Hz; latencies from steps to ms.
  const scale = mode === 'rates' ? 1000 / p.dt : mode === 'first-spike' ? p.dt : 1;
  const kernelRun = (d: Drive, keys: Uint32Array): SpikingRun => ({
    ...d,
    encoding,
    seed: state.spikeSeed,
    sampleKeys: keys,
    inputWeights: state.inputWeights,
    ...(state.recurrent ? { recurrent: state.recurrent } : {}),
    decay: p.dt / p.tauMembrane,
    threshold: p.threshold,
    reset: p.reset,
    refractorySteps: Math.round(p.refractory / p.dt),
    traceDecay: Math.exp(-p.dt / p.tauSynaptic),
    readout,
    windows,
    scale,
    signal: input.signal,
  });
  // The model space predicts the next input value itself, not its firing probability.
  const targets = driveOf(input, staticSteps);
  const units = state.inputWeights.cols;
  const bytesPerSample = units * windows * 8;
  return encodeSamples(backend, input, {
    encoder: state.kind,
    drive,
    bytesPerSample,
    // The model space is fitted on the host from every trace, so its traces always come back.
    kept:
      mode === 'model-space'
        ? undefined
        : () => backend.spikingRun({ ...kernelRun(drive, input.sampleKeys), keep: true }),
    chunk: async (part, start, end) => {
      const out = await backend.spikingRun(kernelRun(part, input.sampleKeys.subarray(start, end)));
      if (mode === 'model-space') {
        const next = { ...targets, inputs: sliceRows(targets.inputs, start, end) };
        const lengths = input.padded?.lengths.subarray(start, end);
        return modelSpace(out, units, next, p.washout, p.ridge, input.signal, lengths);
      }
      return out;
    },
  });
}
