/**
 * What every pass over a file's chunks shares (src/fit/streamed.ts fits with them,
 * src/fit/streamed-predict.ts predicts): whether a file streams, the size of a chunk under the
 * memory budget, the reading options of a pass, the progress of a pass, and a chunk's features
 * under a fitted plan.
 */
import type { Backend } from '../backends/backend.js';
import type { Config } from '../config/schema.js';
import { DataError, ResourceExhaustedError, UsageError } from '../core/errors.js';
import type { Matrix } from '../core/matrix.js';
import { quoteValue } from '../core/printable.js';
import type { ChunkedFile } from '../data/chunked.js';
import { applyScaler, type Scaler } from '../data/clean.js';
import type { Dataset } from '../data/dataset.js';
import type { TableOptions } from '../data/table.js';
import { sampleKeys } from '../encoders/drive.js';
import { type PipelineState, transformPipeline } from '../encoders/pipeline.js';
import type { RunningMoments } from '../linalg/running.js';
import type { ResourceMonitor } from '../observability/resources.js';
import { jobMemory } from './admission.js';
import type { PassProgress } from './result.js';
import type { LoadContext, StageContext } from './stages.js';

/** The fitted plan a pass over the features applies to every chunk. */
export interface Plan {
  readonly scaler: Scaler;
  /** Column means to impute with, under `impute-mean`. */
  readonly imputeWith: readonly number[] | undefined;
  readonly pipeline: PipelineState | undefined;
}

/**
 * Whether a fit may stream under the configuration: not with `stream.mode: off`, nor under
 * privacy or k-anonymity (DP K-means and the merging of small clusters need every row in memory).
 */
export function streamsAtAll(config: Config): boolean {
  const p = config.privacy;
  // A long table's series may spread over the whole file: it is read whole.
  return (
    config.stream.mode !== 'off' &&
    p.epsilon === undefined &&
    p.minClusterSize === undefined &&
    config.data.seriesIdColumn === undefined
  );
}

/**
 * Whether a fit of `file` streams: always under `on`; under `auto` when it holds more rows than
 * `stream.sampleRows` (a text file's rows estimated from the bytes of its first lines). A file of
 * fewer rows is its own sample, so streaming it would fit the same thing: it is read whole.
 */
export function streams(config: Config, file: ChunkedFile): boolean {
  if (!streamsAtAll(config)) return false;
  const rows = file.records ?? file.bytes / file.bytesPerRecord;
  return config.stream.mode === 'on' || rows > config.stream.sampleRows;
}

/** Refuses, as a usage error, more rows than `output.inlineLabelsMax` with no labels file to put them in. */
export function tooManyToHold(rows: number, inlineMax: number, labelsOut: string | undefined): void {
  if (rows <= inlineMax || labelsOut) return;
  throw new UsageError(
    `${rows} rows is more than output.inlineLabelsMax (${inlineMax}): the labels are not returned inline, so a labels file (--labels-out, or labelsOut) is required`,
    'NEUROCLUSTER_ERR_USAGE',
  );
}

/** Reports a pass's rows as they are done. */
export class PassMeter {
  private readonly t0 = performance.now();
  private rows = 0;

  constructor(
    private readonly ctx: LoadContext,
    private readonly pass: PassProgress['pass'],
    private readonly total: number | undefined,
    private readonly iteration?: number,
  ) {}

  add(rows: number): void {
    this.rows += rows;
    const seconds = (performance.now() - this.t0) / 1000;
    const rate = seconds > 0 ? this.rows / seconds : 0;
    this.ctx.onProgress?.({
      type: 'pass',
      pass: this.pass,
      ...(this.iteration === undefined ? {} : { iteration: this.iteration }),
      rows: this.rows,
      totalRows: this.total,
      rowsPerSecond: rate,
      etaSeconds:
        this.total !== undefined && rate > 0 ? Math.max(0, this.total - this.rows) / rate : undefined,
    });
  }
}

/**
 * Rows of a chunk the memory budget leaves room for: a quarter of what is left under the
 * warning share (a chunk, its cleaned copy, its features and the encoders' working set are alive
 * at once), at most `stream.chunkRows`. Refused only when not one row fits.
 */
export function chunkRowsFor(config: Config, monitor: ResourceMonitor, bytesPerRow: number): number {
  const { rss, budget } = monitor.admit(0);
  const room = budget * config.monitoring.memoryWarning - rss;
  const rows = Math.floor(room / 4 / bytesPerRow);
  if (rows < 1) {
    const mib = (b: number) => `${Math.ceil(b / 2 ** 20)} MiB`;
    throw new ResourceExhaustedError(
      `not one chunk fits: a row needs about ${Math.ceil(bytesPerRow)} bytes and the process holds ${mib(rss)} of a memory budget of ${mib(budget)}`,
    );
  }
  return Math.min(config.stream.chunkRows, rows);
}

/** Rows of a chunk for a job of this shape: the memory estimate of one more row of it ({@link chunkRowsFor}). */
export function chunkRowsOfJob(
  ctx: StageContext,
  monitor: ResourceMonitor,
  scaler: Scaler,
  k: number,
): number {
  const bytes = (rows: number) =>
    jobMemory(
      ctx.config,
      { cleaned: { rows, cols: scaler.keep.length, data: new Float64Array(0) }, scaler },
      k,
      ctx.logger,
    ).bytes;
  return chunkRowsFor(ctx.config, monitor, (bytes(2048) - bytes(1024)) / 1024);
}

/**
 * The reading options of a streamed pass: imputation with the file's means once known, and the
 * columns the survey decided (a later pass reads chunks of another size, whose first chunk could
 * otherwise decide other columns).
 */
export function readOptions(
  config: Config,
  imputeWith: TableOptions['imputeWith'],
  featureColumns?: readonly string[],
): TableOptions {
  return {
    ...config.data,
    ...(config.data.nanPolicy === 'impute-mean' ? { imputeWith } : {}),
    ...(featureColumns ? { featureColumns } : {}),
  };
}

/** The means `impute-mean` fills with: refused for a column with no finite value, as in memory. */
export function imputationMeans(
  moments: RunningMoments,
  columns: readonly string[],
  source: string,
): number[] {
  const empty = columns.findIndex((_, j) => moments.count[j] === 0);
  if (empty >= 0) {
    throw new DataError(
      'NEUROCLUSTER_ERR_DATA_VALUE',
      `column ${quoteValue(columns[empty]!)} has no finite value to impute from`,
      {
        location: { file: source, column: columns[empty]! },
      },
    );
  }
  return Array.from(moments.mean);
}

/** A chunk's features under the plan: cleaned, then encoded when the method has encoders. */
export async function featuresOf(
  backend: Backend,
  plan: Plan,
  data: Dataset,
  signal?: AbortSignal,
): Promise<Matrix> {
  const cleaned = { rows: data.n, cols: plan.scaler.keep.length, data: applyScaler(data, plan.scaler) };
  if (!plan.pipeline) return cleaned;
  const raw = { rows: data.n, cols: data.width, data: data.values };
  return transformPipeline(backend, plan.pipeline, {
    points: cleaned,
    series: plan.scaler.series,
    sampleKeys: sampleKeys(raw, data.ids),
    signal,
  });
}
