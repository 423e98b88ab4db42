/**
 * The echo state network encoder: a leaky tanh reservoir run by the backend's reservoir kernel,
 * weights made on the host from the seed.
 */
import {
  type Backend,
  type Drive,
  type RecurrentWeights,
  type ReservoirRun,
  readoutBlocks,
  type StateReadout,
} from '../backends/backend.js';
import type { EsnConfig } from '../config/schema.js';
import { UsageError } from '../core/errors.js';
import type { Features, Matrix } from '../core/matrix.js';
import { Random } from '../core/random.js';
import { encodeSamples } from './chunks.js';
import { driveOf, type EncoderInput, evenSteps, requireOwnEnds } from './drive.js';
import { modelSpace } from './model-space.js';
import { recurrentWeights, reservoirMatrix, uniformMatrix } from './weights.js';

/** The fitted ESN: its parameters and weights, as stored in the model file. */
export interface EsnState {
  readonly params: EsnConfig;
  readonly inputWeights: Matrix;
  readonly bias: Float64Array;
  readonly recurrent: RecurrentWeights;
}

/** Makes the reservoir for inputs of `inputDim` values per step. */
export function createEsn(params: EsnConfig, inputDim: number, seed: number): EsnState {
  const rng = new Random(seed);
  const inputWeights = uniformMatrix(rng, inputDim, params.units, params.inputScaling);
  const bias = uniformMatrix(rng, 1, params.units, params.biasScaling).data as Float64Array;
  const recurrent = recurrentWeights(
    reservoirMatrix(rng, params.units, params.connectivity, params.spectralRadius),
  );
  return { params, inputWeights, bias, recurrent };
}

/** The readout actually used: `auto` is last+mean for a static input, the model space for a sequence. */
export function esnReadout(params: EsnConfig, sequence: boolean): Exclude<EsnConfig['readout'], 'auto'> {
  if (params.readout === 'model-space' && !sequence) {
    throw new UsageError(
      'the esn readout "model-space" needs time series input (a static input has no next step)',
    );
  }
  if (params.readout !== 'auto') return params.readout;
  return sequence ? 'model-space' : 'last+mean';
}

/**
 * Runs the reservoir over every sample; returns its readout features (the input not included),
 * left on the device by a backend that keeps outputs.
 */
export async function runEsn(backend: Backend, esn: EsnState, input: EncoderInput): Promise<Features> {
  const { params } = esn;
  const drive = driveOf(input, params.steps);
  const mode = esnReadout(params, drive.sequence);
  requireOwnEnds(input, 'esn', mode);
  const washout = Math.min(params.washout, drive.steps - 1);
  const readout: StateReadout =
    mode === 'last'
      ? { last: true }
      : mode === 'mean'
        ? { mean: true, washout }
        : mode === 'last+mean'
          ? { last: true, mean: true, washout }
          : mode === 'times'
            ? { times: evenSteps(drive.steps, params.timePoints) }
            : { times: Array.from({ length: drive.steps }, (_, t) => t) };
  const kernelRun = (d: Drive): ReservoirRun => ({
    ...d,
    inputWeights: esn.inputWeights,
    bias: esn.bias,
    recurrent: esn.recurrent,
    leak: params.leak,
    readout,
    signal: input.signal,
  });
  // The model space needs every state of every step, hence its bigger footprint per sample.
  const bytesPerSample = readoutBlocks(readout) * params.units * 8;
  return encodeSamples(backend, input, {
    encoder: 'esn',
    drive,
    bytesPerSample,
    // The model space is fitted on the host from every state, so its states always come back.
    kept:
      mode === 'model-space' ? undefined : () => backend.reservoirRun({ ...kernelRun(drive), keep: true }),
    chunk: async (part, start, end) => {
      const states = await backend.reservoirRun(kernelRun(part));
      const lengths = input.padded?.lengths.subarray(start, end);
      return mode === 'model-space'
        ? modelSpace(states, params.units, part, washout, params.ridge, input.signal, lengths)
        : states;
    },
  });
}
