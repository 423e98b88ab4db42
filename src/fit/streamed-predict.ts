/**
 * Predictions over a file's chunks: every chunk cleaned with the model's scaler, encoded with its
 * pipeline and assigned to its centroids, the labels written as they come (src/fit/chunks.ts has
 * what the passes share with the streamed fit).
 */
import type { Backend } from '../backends/backend.js';
import { throwIfAborted } from '../core/cancel.js';
import { UsageError } from '../core/errors.js';
import type { ChunkedFile } from '../data/chunked.js';
import { type LabelsSink, writeLabelsFile } from '../data/labels-file.js';
import { RunningMoments } from '../linalg/running.js';
import { chunkRowsOfJob, featuresOf, imputationMeans, PassMeter, type Plan, readOptions } from './chunks.js';
import type { FittedModel } from './persistence.js';
import type { LoadContext } from './stages.js';
import type { StreamedDeps } from './streamed.js';

/** What a prediction gives: the labels (when held), how many rows, the clusters' sizes. */
export interface Prediction {
  /** A label per row in file order; empty past `output.inlineLabelsMax` rows of a streamed file. */
  readonly labels: Int32Array;
  readonly rows: number;
  readonly sizes: readonly number[];
  readonly ids: readonly string[] | undefined;
  readonly droppedRows: readonly number[] | undefined;
  /** Whether the file was read in chunks. */
  readonly streamed: boolean;
}

/**
 * Labels the rows of `file` under a fitted model, a chunk at a time: each chunk cleaned with the
 * model's scaler (missing values imputed with the file's own means under `impute-mean`, as in
 * memory: a first pass finds them), encoded with its pipeline and assigned to its centroids; the
 * labels written to `labelsOut` as they come, and held only up to `output.inlineLabelsMax` rows.
 */
export async function streamedPredict(
  ctx: LoadContext,
  file: ChunkedFile,
  model: FittedModel,
  backend: Backend,
  deps: Pick<StreamedDeps, 'monitor' | 'labelsOut'>,
): Promise<Prediction> {
  const { config, signal } = ctx;
  const { scaler, k, d } = model;
  // A chunk is sized by the model's own method and members, whatever the configuration says now.
  const { pipeline } = model;
  const voters = pipeline?.voters?.length ?? 0;
  const members = voters > 0 ? voters : 1 + (pipeline?.moreMembers?.length ?? 0);
  const sized = {
    ...ctx,
    config: {
      ...config,
      engine: { ...config.engine, method: model.method },
      encoders: {
        ...config.encoders,
        members,
        consensus: voters > 0 ? ('co-association' as const) : ('stack' as const),
        hybrid: { ...config.encoders.hybrid, inputWeight: pipeline?.inputWeight ?? 1 },
      },
    },
  };
  const chunkRows = chunkRowsOfJob(sized, deps.monitor, scaler, k);
  let imputeWith: number[] | undefined;
  if (config.data.nanPolicy === 'impute-mean') {
    const moments = new RunningMoments(scaler.inputColumns.length);
    const meter = new PassMeter(ctx, 'survey', file.records);
    for await (const { data } of file.chunks(chunkRows, readOptions(config, 'defer'), signal)) {
      moments.add(data.values, data.n);
      meter.add(data.n);
    }
    imputeWith = imputationMeans(moments, scaler.inputColumns, file.source);
  }
  const plan: Plan = { scaler, imputeWith, pipeline: model.pipeline };
  const centres = { rows: k, cols: d, data: model.centroids };
  const inlineMax = config.output.inlineLabelsMax;
  const held: Int32Array[] = [];
  const ids: string[] = [];
  const dropped: number[] = [];
  const sizes = new Array<number>(k).fill(0);
  let rows = 0;
  // Rows have ids exactly when an id column is named (a file without it is refused by the reader).
  const withIds = config.data.idColumn !== undefined;
  const meter = new PassMeter(ctx, 'assign', file.records);
  const pass = async (sink: LabelsSink | undefined) => {
    for await (const { data } of file.chunks(
      chunkRows,
      readOptions(config, imputeWith),
      signal,
      ctx.logger,
    )) {
      throwIfAborted(signal);
      if (data.droppedRows) for (const r of data.droppedRows) dropped.push(r);
      if (data.n === 0) continue;
      const features = await featuresOf(backend, plan, data, signal);
      const { labels } = await backend.kmeansAssign(features, centres);
      for (const l of labels) sizes[l]!++;
      rows += data.n;
      if (rows <= inlineMax) {
        held.push(labels);
        if (data.ids) for (const id of data.ids) ids.push(id);
      } else if (!sink) {
        throw new UsageError(
          `more than output.inlineLabelsMax (${inlineMax}) rows: the labels are not returned inline, so a labels file (--labels-out, or labelsOut) is required`,
          'NEUROCLUSTER_ERR_USAGE',
        );
      }
      await sink?.(labels, data.ids);
      meter.add(data.n);
    }
  };
  const out = deps.labelsOut;
  if (out) {
    await writeLabelsFile(out, withIds, pass);
  } else {
    await pass(undefined);
  }
  const inline = rows <= inlineMax;
  const labels = new Int32Array(inline ? rows : 0);
  if (inline) {
    let at = 0;
    for (const part of held) {
      labels.set(part, at);
      at += part.length;
    }
  }
  return {
    labels,
    rows,
    sizes,
    ids: inline && withIds ? ids : undefined,
    droppedRows: dropped.length > 0 ? dropped : undefined,
    streamed: true,
  };
}
