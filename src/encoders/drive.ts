/** What every encoder is given: the cleaned input, its layout, and each sample's identity. */
import type { Drive } from '../backends/backend.js';
import { UsageError } from '../core/errors.js';
import type { Matrix } from '../core/matrix.js';
import { fnv1a } from '../core/philox.js';
import type { SeriesLayout } from '../data/dataset.js';
import type { PaddedSeries } from '../data/lengths.js';

/** Progress of an encoder over the samples, reported after each chunk. */
export interface EncodeProgress {
  readonly type: 'encode';
  readonly encoder: 'esn' | 'snn' | 'lsm';
  readonly done: number;
  readonly total: number;
}

export interface EncoderInput {
  /** n x width cleaned values; a series row holds T x dims values, time-major. */
  readonly points: Matrix;
  readonly series?: SeriesLayout | undefined;
  /**
   * Series of unequal lengths: what the reservoirs read (each to its own end); `points` holds
   * them resampled to one length, for the input block.
   */
  readonly padded?: PaddedSeries | undefined;
  /** A 32-bit identity per sample for spike randomness: see {@link sampleKeys}. */
  readonly sampleKeys: Uint32Array;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((event: EncodeProgress) => void) | undefined;
}

/**
 * The identity of every sample: a hash of its id when ids are known, else of its content, so the
 * spikes a sample gets do not depend on where it stands in the file.
 */
export function sampleKeys(points: Matrix, ids?: readonly string[]): Uint32Array {
  const keys = new Uint32Array(points.rows);
  const encoder = new TextEncoder();
  const row = new Float64Array(points.cols);
  for (let i = 0; i < points.rows; i++) {
    if (ids) {
      keys[i] = fnv1a(encoder.encode(ids[i]!));
    } else {
      for (let t = 0; t < points.cols; t++) row[t] = points.data[i * points.cols + t]!;
      keys[i] = fnv1a(new Uint8Array(row.buffer));
    }
  }
  return keys;
}

/** What a reservoir reads of the input: the series each to its own end, or the rows. */
export function readValues(input: EncoderInput): Matrix {
  return input.padded?.values ?? input.points;
}

/**
 * Series of unequal lengths are read to their own ends only by the model space: a readout at fixed
 * steps would read the padding of the shorter ones.
 */
export function requireOwnEnds(input: EncoderInput, encoder: string, readout: string): void {
  if (input.padded && readout !== 'model-space') {
    throw new UsageError(
      `the ${encoder} readout "${readout}" reads every series at the same steps; series of unequal lengths need the "model-space" readout (the default for series)`,
    );
  }
}

/** The drive of a dynamics kernel: a static vector held `staticSteps` steps, or the series itself. */
export function driveOf(input: EncoderInput, staticSteps: number, values: Matrix = readValues(input)): Drive {
  return input.series
    ? { inputs: values, inputDim: input.series.dims, steps: input.series.length, sequence: true }
    : { inputs: values, inputDim: values.cols, steps: staticSteps, sequence: false };
}

/** `count` steps evenly spread over [0, steps), the last one included. */
export function evenSteps(steps: number, count: number): number[] {
  const n = Math.min(count, steps);
  return Array.from({ length: n }, (_, i) => Math.round(((i + 1) * steps) / n) - 1);
}
