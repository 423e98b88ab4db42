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
import { fitPca, type Pca, pcaTransform } from '../linalg/pca.js';
import { CHUNK_BUDGET_BYTES, encodeSamples, inSampleChunks, sliceRows } from './chunks.js';
import { driveOf, type EncoderInput, evenSteps, requireOwnEnds } from './drive.js';
import { modelSpace } from './model-space.js';
import { recurrentWeights, reservoirMatrix, uniformMatrix } from './weights.js';

/** The fitted ESN: its parameters and weights, as stored in the model file. */
export interface EsnState {
  readonly params: EsnConfig;
  readonly inputWeights: Matrix;
  readonly bias: Float64Array;
  readonly recurrent: RecurrentWeights;
  /** The PCA of the reservoir states (`stateComponents`), fitted on the training series. */
  readonly statePca?: Pca | undefined;
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

/** What the reservoir kernel runs: the ESN's weights and leak over `drive`, read out as asked. */
function reservoirRun(
  esn: EsnState,
  drive: Drive,
  readout: StateReadout,
  signal?: AbortSignal,
): ReservoirRun {
  const { inputWeights, bias, recurrent, params } = esn;
  return { ...drive, inputWeights, bias, recurrent, leak: params.leak, readout, signal };
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
  // A series read backwards too; a static input held still reads the same either way.
  const backwards = params.bidirectional && drive.sequence;
  const washout = Math.min(params.washout, drive.steps - 1);
  const statePca = mode === 'model-space' ? esn.statePca : undefined;
  if (mode === 'model-space' && params.stateComponents > 0 && !statePca)
    throw new Error('the esn state PCA is not fitted (fitEsnStates)');
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
  const kernelRun = (d: Drive): ReservoirRun => reservoirRun(esn, d, readout, input.signal);
  // The model space needs every state of every step, hence its bigger footprint per sample.
  const bytesPerSample = readoutBlocks(readout) * params.units * 8;
  return encodeSamples(backend, input, {
    encoder: 'esn',
    drive,
    bytesPerSample,
    // The model space is fitted on the host from every state, so its states always come back;
    // so are the states of both directions, put side by side there.
    kept:
      mode === 'model-space' || backwards
        ? undefined
        : () => backend.reservoirRun({ ...kernelRun(drive), keep: true }),
    chunk: async (part, start, end) => {
      const lengths = input.padded?.lengths.subarray(start, end);
      const features = async (d: Drive) => {
        const states = await backend.reservoirRun(kernelRun(d));
        if (mode !== 'model-space') return states;
        const reduced = statePca ? await reduceStates(backend, statePca, states, d.steps) : states;
        const units = statePca?.nComponents ?? params.units;
        const target = params.modelSpaceTarget === 'state' ? { values: reduced, dims: units } : undefined;
        return modelSpace(reduced, units, d, washout, params.ridge, input.signal, lengths, target);
      };
      const forward = await features(part);
      return backwards ? sideBySide(forward, await features(reversed(part, lengths))) : forward;
    },
  });
}

/** The drive with every series read from its own end back to its start (its padding left after it). */
export function reversed(drive: Drive, lengths?: Int32Array): Drive {
  const { inputs, inputDim: dims, steps } = drive;
  const data = new Float64Array(inputs.rows * inputs.cols);
  for (let r = 0; r < inputs.rows; r++) {
    const end = lengths?.[r] ?? steps;
    const base = r * inputs.cols;
    for (let t = 0; t < end; t++) {
      for (let j = 0; j < dims; j++)
        data[base + t * dims + j] = inputs.data[base + (end - 1 - t) * dims + j]!;
    }
  }
  return { ...drive, inputs: { ...inputs, data } };
}

/** Two feature matrices of the same rows, side by side. */
function sideBySide(a: Matrix, b: Matrix): Matrix {
  const cols = a.cols + b.cols;
  const data = new Float64Array(a.rows * cols);
  for (let r = 0; r < a.rows; r++) {
    data.set(a.data.subarray(r * a.cols, (r + 1) * a.cols), r * cols);
    data.set(b.data.subarray(r * b.cols, (r + 1) * b.cols), r * cols + a.cols);
  }
  return { rows: a.rows, cols, data };
}

/** Series the state PCA is fitted on at most, evenly spread over the training set's order. */
const STATE_SAMPLE_SERIES = 256;
/** Reservoir states (rows) the state PCA is fitted on at most (fewer for a reservoir so wide they pass 64 MB). */
const STATE_SAMPLE_ROWS = 32_768;

/** States the state PCA is fitted on at most, for a reservoir of `units`: see {@link fitEsnStates}. */
export function stateSampleRows(units: number): number {
  return Math.max(1, Math.min(STATE_SAMPLE_ROWS, Math.floor(CHUNK_BUDGET_BYTES / (8 * units))));
}

/**
 * Fits the PCA of the reservoir states the model space reads (`stateComponents` > 0, series
 * input), on at most {@link STATE_SAMPLE_SERIES} training series taken evenly along `order` (the
 * canonical order, so the fit does not depend on the file's row order) and both directions when
 * the ESN reads both; every other ESN is returned as it is.
 */
export async function fitEsnStates(
  backend: Backend,
  esn: EsnState,
  input: EncoderInput,
  order: Int32Array,
): Promise<EsnState> {
  const { params } = esn;
  const drive = driveOf(input, params.steps);
  if (params.stateComponents === 0 || esnReadout(params, drive.sequence) !== 'model-space') return esn;
  const n = drive.inputs.rows;
  const picked = Array.from(
    { length: Math.min(n, STATE_SAMPLE_SERIES) },
    (_, i) => order[Math.floor((i * n) / Math.min(n, STATE_SAMPLE_SERIES))]!,
  );
  const cols = drive.inputs.cols;
  const sample = new Float64Array(picked.length * cols);
  for (const [i, row] of picked.entries())
    sample.set(drive.inputs.data.subarray(row * cols, (row + 1) * cols), i * cols);
  const lengths = input.padded ? Int32Array.from(picked, (row) => input.padded!.lengths[row]!) : undefined;
  const part: Drive = { ...drive, inputs: { rows: picked.length, cols, data: sample } };
  const parts = params.bidirectional ? [part, reversed(part, lengths)] : [part];
  const washout = Math.min(params.washout, drive.steps - 1);
  // The steps the model space reads of each series (its first as there: a short series keeps two).
  const firstOf = (i: number) => Math.max(0, Math.min(washout, (lengths?.[i] ?? drive.steps) - 2));
  const available = picked.reduce((sum, _, i) => sum + (lengths?.[i] ?? drive.steps) - firstOf(i), 0);
  // Thinned evenly to the row cap, itself within one chunk's budget however wide the reservoir.
  const cap = stateSampleRows(params.units);
  const stride = Math.max(1, Math.ceil((available * parts.length) / cap));
  const units = params.units;
  const sampled = new Float64Array(parts.length * Math.ceil(available / stride) * units);
  let filled = 0;
  const all = Array.from({ length: drive.steps }, (_, t) => t);
  for (const d of parts) {
    let seen = 0;
    await inSampleChunks(
      d.inputs.rows,
      { bytesPerSample: drive.steps * units * 8, signal: input.signal },
      async (start, end) => {
        const slice = { ...d, inputs: sliceRows(d.inputs, start, end) };
        const states = await backend.reservoirRun(reservoirRun(esn, slice, { times: all }, input.signal));
        for (let i = start; i < end; i++) {
          const last = lengths?.[i] ?? drive.steps;
          for (let t = firstOf(i); t < last; t++, seen++) {
            if (seen % stride !== 0) continue;
            const at = (i - start) * states.cols + t * units;
            sampled.set(states.data.subarray(at, at + units), filled);
            filled += units;
          }
        }
        // The sampled states are kept above; a chunk hands nothing on to stack.
        return { rows: 0, cols: 0, data: new Float64Array(0) };
      },
    );
  }
  const states: Matrix = { rows: filled / units, cols: units, data: sampled.subarray(0, filled) };
  return { ...esn, statePca: await fitPca(backend, states, params.stateComponents, input.signal) };
}

/** Every step's state of every series (N x (steps x units)) projected: N x (steps x components). */
async function reduceStates(backend: Backend, pca: Pca, states: Matrix, steps: number): Promise<Matrix> {
  const units = states.cols / steps;
  const projected = await pcaTransform(backend, pca, {
    rows: states.rows * steps,
    cols: units,
    data: states.data,
  });
  return { rows: states.rows, cols: steps * pca.nComponents, data: projected.data };
}
