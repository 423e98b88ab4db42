/**
 * From cleaned input to the features K-means clusters: run the method's encoders, centre each
 * feature block (the input too, when it joins the readout) and scale it as a whole to unit total
 * variance, so every block weighs the same whatever its width, then (for `hybrid`) PCA. A block is
 * scaled as a whole, not column by column: a neuron that barely fires has little variance and
 * should keep little weight, where per-column standardization would blow its noise up to the level
 * of the informative units (measured: per-column scaling cost snn and lsm their Coffee ARI, 0.6 to 0). Everything fitted here is kept in
 * the model file, so `predict` encodes new data exactly as `fit` did.
 */
import type { Backend } from '../backends/backend.js';
import type { EncoderMethod, SettledEncoders } from '../config/schema.js';
import { throwIfAborted } from '../core/cancel.js';
import { DataError, requireFinite } from '../core/errors.js';
import { type Features, isDeviceMatrix, type Matrix } from '../core/matrix.js';
import { Random } from '../core/random.js';
import { fitPca, type Pca, pcaTransform } from '../linalg/pca.js';
import type { EncoderInput } from './drive.js';
import { createEsn, type EsnState, esnReadout, fitEsnStates, runEsn } from './esn.js';
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
  /**
   * The other members of a consensus (`encoders.members` > 1), each with weights of its own; the
   * first member is `esn`, `snn` and `lsm` above, so a one-member model reads as before.
   */
  readonly moreMembers?: Member[] | undefined;
  /** Members combined by their co-association (`encoders.consensus`); stacked when absent. */
  readonly consensus?: 'co-association' | undefined;
  /**
   * A fitted co-association consensus: each member's own fitted pipeline (its encoders in it, none
   * above) and the centroids that partitioned its features; the features are every member's
   * label, one-hot.
   */
  readonly voters?: Voter[] | undefined;
}

/** One member of a co-association consensus, fitted. */
export interface Voter {
  readonly pipeline: PipelineState;
  /** k x d, the member's own K-means centroids on its own features. */
  readonly centroids: Float64Array;
  readonly k: number;
}

/**
 * Clusters one member's features (rows in the canonical order) for a co-association consensus:
 * the stage that owns K-means gives it to {@link fitPipeline}.
 */
export type ClusterMember = (
  features: Matrix,
  member: number,
) => Promise<{ readonly centroids: Float64Array; readonly labels: Int32Array; readonly k: number }>;

function blocksOf(method: EncoderMethod): ('esn' | 'snn' | 'lsm')[] {
  return method === 'hybrid' ? ['esn', 'snn', 'lsm'] : [method];
}

/** One copy of the method's encoders. */
export interface Member {
  readonly esn?: EsnState | undefined;
  readonly snn?: SpikingState | undefined;
  readonly lsm?: SpikingState | undefined;
}

/**
 * Makes one member's encoders from the next draws of `seeds`: four seeds, in a fixed order, so
 * adding an encoder to a method does not change the others. The SNN's spikes take `snnSpikeSeed`
 * (the engine seed for the first member, as before members existed), else a fifth draw.
 */
function createMember(
  method: EncoderMethod,
  config: SettledEncoders,
  inputDim: number,
  seeds: Random,
  snnSpikeSeed?: number,
): Member {
  const esnSeed = seeds.uint32();
  const snnSeed = seeds.uint32();
  const lsmSeed = seeds.uint32();
  // The liquid draws its spikes from a stream of its own.
  const lsmSpikeSeed = seeds.uint32();
  const snnSpikes = snnSpikeSeed ?? seeds.uint32();
  const wanted = new Set(blocksOf(method));
  return {
    esn: wanted.has('esn') ? createEsn(config.esn, inputDim, esnSeed) : undefined,
    snn: wanted.has('snn') ? createSnn(config.snn, inputDim, snnSeed, snnSpikes) : undefined,
    lsm: wanted.has('lsm') ? createLsm(config.lsm, inputDim, lsmSeed, lsmSpikeSeed) : undefined,
  };
}

/**
 * Makes the encoders of a method (weights from the seed) for inputs of `inputDim` values a step:
 * `config.members` copies, each with weights of its own, whose features are stacked.
 */
export function createPipeline(
  method: EncoderMethod,
  config: SettledEncoders,
  inputDim: number,
  seed: number,
): PipelineState {
  const seeds = new Random(seed);
  const first = createMember(method, config, inputDim, seeds, seed);
  const more: Member[] = [];
  for (let i = 1; i < config.members; i++) more.push(createMember(method, config, inputDim, seeds));
  const includeInput =
    method === 'hybrid'
      ? config.hybrid.includeInput
      : (config[method] as { includeInput: boolean }).includeInput;
  return {
    method,
    seed,
    includeInput,
    inputWeight: method === 'hybrid' ? config.hybrid.inputWeight : 1,
    ...first,
    ...(more.length > 0 ? { moreMembers: more } : {}),
    ...(more.length > 0 && config.consensus === 'co-association' ? { consensus: 'co-association' } : {}),
  };
}

/** One block of features as an encoder left it: on the host, or kept on the device. */
interface RawBlock {
  readonly name: BlockName;
  readonly features: Features;
}

/**
 * Runs the method's encoders; the caller releases what they kept on the device ({@link release}),
 * whatever happens after.
 */
async function rawBlocks(backend: Backend, state: PipelineState, input: EncoderInput, out: RawBlock[]) {
  if (state.includeInput) out.push({ name: 'input', features: input.points });
  for (const member of [state, ...(state.moreMembers ?? [])]) {
    for (const name of blocksOf(state.method)) {
      throwIfAborted(input.signal);
      const features =
        name === 'esn'
          ? await runEsn(backend, member.esn!, input)
          : await runSpiking(backend, (name === 'snn' ? member.snn : member.lsm)!, input);
      out.push({ name, features });
      // Kept features are checked by the moments and the assembly that read them on the device.
      if (!isDeviceMatrix(features)) requireFinite(features.data, `the ${name} encoder`);
    }
  }
}

function release(blocks: readonly RawBlock[]): void {
  for (const { features } of blocks) if (isDeviceMatrix(features)) features.release();
}

async function fitBlock(
  backend: Backend,
  { name, features }: RawBlock,
  order: Int32Array,
  share: number,
): Promise<BlockScaler> {
  const { means: colMeans, variances } = await backend.columnMoments(features, order);
  requireFinite(colMeans, `the ${name} encoder`);
  requireFinite(variances, `the ${name} encoder`);
  const keep: number[] = [];
  const means: number[] = [];
  let total = 0;
  for (let j = 0; j < features.cols; j++) {
    if (Math.sqrt(variances[j]!) > 1e-9 * Math.max(1, Math.abs(colMeans[j]!))) {
      keep.push(j);
      means.push(colMeans[j]!);
      total += variances[j]!;
    }
  }
  return { name, keep, means, scale: total > 0 ? share / Math.sqrt(total) : 0 };
}

/** One member as a pipeline of its own, as if `encoders.members` were 1 with its weights. */
function memberAlone(state: PipelineState, member: Member): PipelineState {
  const { method, seed, includeInput, inputWeight, keyedBy } = state;
  return {
    method,
    seed,
    includeInput,
    inputWeight,
    keyedBy,
    esn: member.esn,
    snn: member.snn,
    lsm: member.lsm,
  };
}

/**
 * Every member's label, one-hot, side by side: the squared distance between two samples is twice
 * the number of members that put them apart, so K-means on these rows clusters the co-association
 * (how often members put two samples together) without the n x n matrix.
 */
function oneHot(labels: readonly Int32Array[], voters: readonly Voter[]): Matrix {
  const rows = labels[0]?.length ?? 0;
  const cols = voters.reduce((sum, v) => sum + v.k, 0);
  const data = new Float64Array(rows * cols);
  let offset = 0;
  for (const [m, member] of labels.entries()) {
    for (let i = 0; i < rows; i++) data[i * cols + offset + member[i]!] = 1;
    offset += voters[m]!.k;
  }
  return { rows, cols, data };
}

/** Every member's ESN with what it fits on the training data before it encodes (its state PCA). */
async function fitReservoirs(
  backend: Backend,
  state: PipelineState,
  input: EncoderInput,
  order: Int32Array,
): Promise<PipelineState> {
  const fitted = async <M extends Member>(member: M): Promise<M> =>
    member.esn ? { ...member, esn: await fitEsnStates(backend, member.esn, input, order) } : member;
  const first = await fitted(state);
  if (!state.moreMembers) return first;
  const more: Member[] = [];
  for (const member of state.moreMembers) more.push(await fitted(member));
  return { ...first, moreMembers: more };
}

/** Centred, scaled blocks side by side, rows in `order` if given; by the backend, on its device if it has one. */
function assemble(
  backend: Backend,
  blocks: readonly RawBlock[],
  scalers: readonly BlockScaler[],
  order?: Int32Array,
): Promise<Matrix> {
  return backend.assembleBlocks(
    blocks.map(({ features }, b) => ({ features, ...scalers[b]! })),
    order,
  );
}

/**
 * Encodes the training data and fits the block scalers and the PCA over the rows in `order` (see
 * src/data/order.ts); returns the fitted state and the features in that order (row i is sample
 * order[i]), which is the order K-means takes them in. `reduce` times the PCA (fit and
 * projection). On a device backend the encoders' output stays on the device through the moments
 * and the assembly, and the assembled features stay there for K-means. A co-association consensus
 * fits each member as a pipeline of its own, has `clusterMember` cluster it, and returns the
 * members' labels, one-hot, as the features.
 */
export async function fitPipeline(
  backend: Backend,
  state: PipelineState,
  input: EncoderInput,
  components: number,
  order: Int32Array,
  reduce: <T>(work: () => Promise<T>) => Promise<T> = (work) => work(),
  clusterMember?: ClusterMember,
): Promise<{ state: PipelineState; ordered: Matrix }> {
  if (state.consensus === 'co-association' && state.moreMembers) {
    if (!clusterMember) throw new Error('a co-association consensus needs its members clustered');
    const voters: Voter[] = [];
    const labels: Int32Array[] = [];
    for (const [m, member] of [state, ...state.moreMembers].entries()) {
      const alone = await fitPipeline(backend, memberAlone(state, member), input, components, order, reduce);
      const found = await clusterMember(alone.ordered, m);
      voters.push({ pipeline: alone.state, centroids: found.centroids, k: found.k });
      labels.push(found.labels);
    }
    const { esn: _e, snn: _s, lsm: _l, moreMembers: _m, ...rest } = state;
    return { state: { ...rest, voters }, ordered: oneHot(labels, voters) };
  }
  const blocks: RawBlock[] = [];
  let assembled: Matrix;
  const scalers: BlockScaler[] = [];
  try {
    state = await fitReservoirs(backend, state, input, order);
    await rawBlocks(backend, state, input, blocks);
    // The members of a consensus share one encoder's weight: together, the variance of one block.
    const memberShare = 1 / Math.sqrt(1 + (state.moreMembers?.length ?? 0));
    for (const b of blocks) {
      scalers.push(await fitBlock(backend, b, order, b.name === 'input' ? state.inputWeight : memberShare));
    }
    if (scalers.every((b) => b.keep.length === 0)) {
      throw new DataError(
        'NEUROCLUSTER_ERR_DATA_SHAPE',
        `the ${state.method} encoder produced no feature that varies over the samples (too few steps or samples?)`,
      );
    }
    assembled = await assemble(backend, blocks, scalers, order);
  } finally {
    release(blocks);
  }
  if (state.method !== 'hybrid') return { state: { ...state, blocks: scalers }, ordered: assembled };
  const { pca, ordered } = await reduce(async () => {
    const fitted = await fitPca(backend, assembled, components, input.signal);
    return { pca: fitted, ordered: await pcaTransform(backend, fitted, assembled) };
  });
  return { state: { ...state, blocks: scalers, pca }, ordered };
}

/** Encodes new data with a fitted pipeline; rows in the input's order. */
export async function transformPipeline(
  backend: Backend,
  state: PipelineState,
  input: EncoderInput,
): Promise<Matrix> {
  if (state.voters) {
    const labels: Int32Array[] = [];
    for (const { pipeline, centroids, k } of state.voters) {
      // By the backend's own assignment, as K-means labelled the member's samples at the fit.
      const features = await transformPipeline(backend, pipeline, input);
      const { labels: nearest } = await backend.kmeansAssign(features, {
        rows: k,
        cols: features.cols,
        data: centroids,
      });
      labels.push(nearest);
    }
    return oneHot(labels, state.voters);
  }
  if (!state.blocks) throw new Error('pipeline is not fitted');
  const blocks: RawBlock[] = [];
  let features: Matrix;
  try {
    await rawBlocks(backend, state, input, blocks);
    features = await assemble(backend, blocks, state.blocks);
  } finally {
    release(blocks);
  }
  return state.pca ? pcaTransform(backend, state.pca, features) : features;
}

/**
 * Widths of the blocks a method emits for `inputDim` values a step (`sequence`: time series); `k`,
 * the clusters, sets the width of a co-association consensus's features.
 */
export function featureWidths(
  method: EncoderMethod,
  config: SettledEncoders,
  inputDim: number,
  inputCols: number,
  sequence: boolean,
  k = 0,
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
              : modelSpaceWidth(config.esn, inputDim);
      // A series read backwards too gives as many features again.
      raw += sequence && config.esn.bidirectional ? 2 * width : width;
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
  const inputWidth = includeInput ? inputCols : 0;
  const final = (width: number) => (method === 'hybrid' ? Math.min(config.hybrid.components, width) : width);
  // A co-association consensus fits one member at a time and keeps only each one's label.
  if (config.members > 1 && config.consensus === 'co-association')
    return { raw, final: Math.max(final(raw), config.members * k), perSampleChunk };
  // Stacked members run one after another; each adds its blocks to the features.
  raw = inputWidth + (raw - inputWidth) * config.members;
  return { raw, final: final(raw), perSampleChunk };
}

/** Coefficients of one direction's ESN model space: (state width + 1) x what it predicts. */
function modelSpaceWidth(esn: SettledEncoders['esn'], inputDim: number): number {
  const width = esn.stateComponents > 0 ? Math.min(esn.stateComponents, esn.units) : esn.units;
  return (width + 1) * (esn.modelSpaceTarget === 'state' ? width : inputDim);
}
