/**
 * From cleaned input to the features K-means clusters: run the method's encoders, centre each
 * feature block (the input too, when it joins the readout) and scale it as a whole to unit total
 * variance, so every block weighs the same whatever its width, then (for `hybrid`) PCA. A block is
 * scaled as a whole, not column by column: a neuron that barely fires has little variance and
 * should keep little weight, where per-column standardization would blow its noise up to the level
 * of the informative units (measured: per-column scaling cost snn and lsm their Coffee ARI, 0.6 to 0). Everything fitted here is kept in
 * the model file, so `predict` encodes new data exactly as `fit` did.
 */
import type { Backend, Matrix } from '../backends/backend.js';
import type { EncoderMethod, EncodersConfig } from '../config/schema.js';
import { permuteRows } from '../data/order.js';
import { columnMoments } from '../linalg/moments.js';
import { fitPca, type Pca, pcaTransform } from '../linalg/pca.js';
import { Random } from '../random.js';
import { DataError, requireFinite, throwIfAborted } from '../resilience/errors.js';
import type { EncoderInput } from './drive.js';
import { createEsn, type EsnState, esnReadout, runEsn } from './esn.js';
import { createLsm, createSnn, runSpiking, type SpikingState, spikingReadout } from './spiking.js';

type BlockName = 'input' | 'esn' | 'snn' | 'lsm';

/** Centring and scale of one feature block, fitted on the training features. */
interface BlockScaler {
  readonly name: BlockName;
  /** Columns that vary (a silent neuron carries nothing). */
  readonly keep: number[];
  readonly means: number[];
  /** Multiplies the centred block: its share over the block's total standard deviation. */
  readonly scale: number;
}

/** Everything the pipeline fitted; JSON-safe for the model file. */
export interface PipelineState {
  readonly method: EncoderMethod;
  readonly seed: number;
  readonly esn?: EsnState | undefined;
  readonly snn?: SpikingState | undefined;
  readonly lsm?: SpikingState | undefined;
  readonly includeInput: boolean;
  /** Relative weight of the input block (1: the same total variance as one encoder block). */
  readonly inputWeight: number;
  /** What identified the training samples for spike randomness: their ids or their content. */
  readonly keyedBy?: 'id' | 'content' | undefined;
  readonly blocks?: BlockScaler[] | undefined;
  readonly pca?: Pca | undefined;
}

function blocksOf(method: EncoderMethod): ('esn' | 'snn' | 'lsm')[] {
  return method === 'hybrid' ? ['esn', 'snn', 'lsm'] : [method];
}

/** Makes the encoders of a method (weights from the seed) for inputs of `inputDim` values a step. */
export function createPipeline(
  method: EncoderMethod,
  config: EncodersConfig,
  inputDim: number,
  seed: number,
): PipelineState {
  // Each encoder gets its own weight stream, so adding one does not change the others.
  const seeds = new Random(seed);
  const esnSeed = seeds.uint32();
  const snnSeed = seeds.uint32();
  const lsmSeed = seeds.uint32();
  // The layer keeps the engine seed for its spikes; the liquid draws from a stream of its own.
  const lsmSpikeSeed = seeds.uint32();
  const wanted = new Set(blocksOf(method));
  const includeInput =
    method === 'hybrid'
      ? config.hybrid.includeInput
      : (config[method] as { includeInput: boolean }).includeInput;
  return {
    method,
    seed,
    includeInput,
    inputWeight: method === 'hybrid' ? config.hybrid.inputWeight : 1,
    esn: wanted.has('esn') ? createEsn(config.esn, inputDim, esnSeed) : undefined,
    snn: wanted.has('snn') ? createSnn(config.snn, inputDim, snnSeed, seed) : undefined,
    lsm: wanted.has('lsm') ? createLsm(config.lsm, inputDim, lsmSeed, lsmSpikeSeed) : undefined,
  };
}

async function rawBlocks(backend: Backend, state: PipelineState, input: EncoderInput) {
  const out: { name: BlockName; features: Matrix }[] = [];
  if (state.includeInput) out.push({ name: 'input', features: input.points });
  for (const name of blocksOf(state.method)) {
    throwIfAborted(input.signal);
    const features =
      name === 'esn'
        ? await runEsn(backend, state.esn!, input)
        : await runSpiking(backend, (name === 'snn' ? state.snn : state.lsm)!, input);
    requireFinite(features.data, `the ${name} encoder`);
    out.push({ name, features });
  }
  return out;
}

function fitBlock(name: BlockName, m: Matrix, order: Int32Array, share: number): BlockScaler {
  const { means: colMeans, variances } = columnMoments(m, order);
  const keep: number[] = [];
  const means: number[] = [];
  let total = 0;
  for (let j = 0; j < m.cols; j++) {
    if (Math.sqrt(variances[j]!) > 1e-9 * Math.max(1, Math.abs(colMeans[j]!))) {
      keep.push(j);
      means.push(colMeans[j]!);
      total += variances[j]!;
    }
  }
  return { name, keep, means, scale: total > 0 ? share / Math.sqrt(total) : 0 };
}

/** Centred, scaled blocks side by side. */
function assemble(blocks: { features: Matrix }[], scalers: BlockScaler[]): Matrix {
  const n = blocks[0]!.features.rows;
  const width = scalers.reduce((s, b) => s + b.keep.length, 0);
  const data = new Float64Array(n * width);
  let offset = 0;
  blocks.forEach(({ features: m }, b) => {
    const sc = scalers[b]!;
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < sc.keep.length; c++) {
        data[i * width + offset + c] = (m.data[i * m.cols + sc.keep[c]!]! - sc.means[c]!) * sc.scale;
      }
    }
    offset += sc.keep.length;
  });
  return { rows: n, cols: width, data };
}

/**
 * Encodes the training data and fits the block scalers and the PCA over the rows in `order` (see
 * src/data/order.ts); returns the fitted state too. `reduce` times the PCA (fit and projection).
 */
export async function fitPipeline(
  backend: Backend,
  state: PipelineState,
  input: EncoderInput,
  components: number,
  order: Int32Array,
  reduce: <T>(work: () => Promise<T>) => Promise<T> = (work) => work(),
): Promise<{ state: PipelineState; features: Matrix }> {
  const blocks = await rawBlocks(backend, state, input);
  const scalers = blocks.map((b) =>
    fitBlock(b.name, b.features, order, b.name === 'input' ? state.inputWeight : 1),
  );
  if (scalers.every((b) => b.keep.length === 0)) {
    throw new DataError(
      'NEUROCLUSTER_ERR_DATA_SHAPE',
      `the ${state.method} encoder produced no feature that varies over the samples (too few steps or samples?)`,
    );
  }
  let features = assemble(blocks, scalers);
  let pca: Pca | undefined;
  if (state.method === 'hybrid') {
    const assembled = features;
    ({ pca, features } = await reduce(async () => {
      const fitted = await fitPca(backend, permuteRows(assembled, order), components, input.signal);
      return { pca: fitted, features: await pcaTransform(backend, fitted, assembled) };
    }));
  }
  return { state: { ...state, blocks: scalers, pca }, features };
}

/** Encodes new data with a fitted pipeline. */
export async function transformPipeline(
  backend: Backend,
  state: PipelineState,
  input: EncoderInput,
): Promise<Matrix> {
  if (!state.blocks) throw new Error('pipeline is not fitted');
  const blocks = await rawBlocks(backend, state, input);
  const features = assemble(blocks, state.blocks);
  return state.pca ? pcaTransform(backend, state.pca, features) : features;
}

/** Widths of the blocks a method emits for `inputDim` values a step (`sequence`: time series). */
export function featureWidths(
  method: EncoderMethod,
  config: EncodersConfig,
  inputDim: number,
  inputCols: number,
  sequence: boolean,
): { raw: number; final: number; perSampleChunk: number } {
  let raw = 0;
  let perSampleChunk = 0;
  const includeInput =
    method === 'hybrid'
      ? config.hybrid.includeInput
      : (config[method] as { includeInput: boolean }).includeInput;
  if (includeInput) raw += inputCols;
  for (const name of blocksOf(method)) {
    if (name === 'esn') {
      const u = config.esn.units;
      const mode = esnReadout(config.esn, sequence);
      const width =
        mode === 'last' || mode === 'mean'
          ? u
          : mode === 'last+mean'
            ? 2 * u
            : mode === 'times'
              ? u * config.esn.timePoints
              : (u + 1) * inputDim;
      raw += width;
      // The model space holds every step's state of a chunk before the readout.
      const steps = sequence ? inputCols / inputDim : config.esn.steps;
      perSampleChunk += 8 * (mode === 'model-space' ? u * steps : width);
    } else {
      const params = config[name];
      const mode = spikingReadout({ kind: name, params } as SpikingState, sequence);
      const steps = sequence ? inputCols / inputDim : Math.round(params.duration / params.dt);
      const width =
        mode === 'model-space'
          ? (params.neurons + 1) * inputDim
          : params.neurons * (sequence ? Math.min(params.timePoints, steps) : 1);
      raw += width;
      perSampleChunk += 8 * (mode === 'model-space' ? params.neurons * steps : width);
    }
  }
  return { raw, final: method === 'hybrid' ? Math.min(config.hybrid.components, raw) : raw, perSampleChunk };
}
