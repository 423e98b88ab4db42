/**
 * A fit's admission by its memory: the peak it would need, estimated from the shape of the job
 * (rows, columns, k, the encoders' widths and weights), refused before anything runs when it would
 * pass the critical share of the memory budget, or any engine's largest array.
 */
import type { RunConfig } from '../config/schema.js';
import { ResourceExhaustedError } from '../core/errors.js';
import type { Matrix } from '../core/matrix.js';
import type { Scaler } from '../data/clean.js';
import { stateSampleRows } from '../encoders/esn.js';
import { featureWidths } from '../encoders/pipeline.js';
import type { Logger } from '../observability/logger.js';
import type { EngineMetrics } from '../observability/metrics.js';
import { estimateJob, MAX_TYPED_ARRAY_LENGTH, type ResourceMonitor } from '../observability/resources.js';

/** What admission reads of a prepared job: its cleaned input and the scaler that made it. */
export interface PreparedInput {
  readonly cleaned: Matrix;
  readonly scaler: Scaler;
}

/** The bytes a fit of the prepared job would need at its peak, its feature width, and an array no engine can make. */
export function jobMemory(config: RunConfig, prepared: PreparedInput, k: number, logger: Logger) {
  const { cleaned, scaler } = prepared;
  const method = config.engine.method;
  const inputDim = scaler.series?.dims ?? cleaned.cols;
  const widths =
    method === 'kmeans'
      ? { raw: 0, final: cleaned.cols, perSampleChunk: 0 }
      : featureWidths(method, config.encoders, inputDim, cleaned.cols, scaler.series !== undefined, k);
  const enc = config.encoders;
  if (method === 'hybrid' && enc.hybrid.components > widths.raw) {
    logger.warn(
      { components: enc.hybrid.components, featureCount: widths.raw },
      `encoders.hybrid.components (${enc.hybrid.components}) is more than the ${widths.raw} features: PCA keeps ${widths.raw}`,
    );
  }
  const uses = (name: string) => method === name || method === 'hybrid';
  // Every member of a consensus holds weights of its own.
  const weights =
    enc.members *
    ((uses('esn') ? enc.esn.units * (enc.esn.units + inputDim) : 0) +
      (uses('snn') ? enc.snn.neurons * inputDim : 0) +
      (uses('lsm') ? enc.lsm.neurons * (enc.lsm.neurons + inputDim) : 0));
  const { bytes, oversized } = estimateJob({
    rows: cleaned.rows,
    cols: cleaned.cols,
    k,
    rawFeatures: widths.raw,
    features: widths.final,
    chunkBytesPerSample: widths.perSampleChunk,
    weights,
    deviceBytesPerValue: 4,
    pca: method === 'hybrid',
    // Both directions' sampled states, each direction's last chunk rounded up by a row.
    ...(uses('esn') && scaler.series && enc.esn.stateComponents > 0
      ? { stateSample: (stateSampleRows(enc.esn.units) + 2) * enc.esn.units }
      : {}),
  });
  return { bytes, features: widths.final, oversized };
}

/**
 * Estimates the job's memory from its shape and refuses it (RESOURCE_EXHAUSTED) when the
 * process would pass the critical share of its budget; warns past the warning share.
 */
export function admitJob(
  config: RunConfig,
  monitor: ResourceMonitor,
  logger: Logger,
  prepared: PreparedInput,
  k: number,
  metrics: EngineMetrics,
): void {
  const { cleaned } = prepared;
  const { bytes, features, oversized } = jobMemory(config, prepared, k, logger);
  const sizes = { rows: cleaned.rows, columns: cleaned.cols, features, bytes };
  if (oversized) {
    // No budget admits it: the engine cannot make the array (`Invalid typed array length`).
    throw new ResourceExhaustedError(
      `${oversized.what} would be one array of ${oversized.elements} values, past this engine's limit of ${MAX_TYPED_ARRAY_LENGTH} per typed array: refused before it starts`,
      { context: { sizes } },
    );
  }
  const { verdict, rss, budget } = monitor.admit(bytes);
  metrics.jobMemoryEstimate.observe(bytes);
  metrics.admissions.inc({ verdict });
  const mib = (b: number) => `${Math.ceil(b / 2 ** 20)} MiB`;
  const what = `the job needs about ${mib(bytes)}; the process holds ${mib(rss)} of a memory budget of ${mib(budget)}`;
  if (verdict === 'refused') {
    throw new ResourceExhaustedError(
      `${what}, past its critical share (${config.monitoring.memoryCritical}): refused before it starts`,
      { context: { sizes } },
    );
  }
  if (verdict === 'warning') logger.warn({ bytes, rss, budget }, `memory: ${what}, past its warning share`);
}
