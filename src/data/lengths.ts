/**
 * Series of unequal lengths, as users have them: a wide table whose shorter rows end in empty
 * cells, tslearn's `to_time_series_dataset` (a 3-D array padded with NaN), or a long table whose
 * series have different numbers of steps. Each series ends after its last step with a value; the
 * steps past it are padding, kept as zeros. The reservoirs read each series to its own end; what
 * needs one width for every row (the input block, K-means on the series) reads each series
 * resampled to the longest.
 */
import type { Matrix } from '../core/matrix.js';
import { type Dataset, type SeriesLayout, seriesColumns } from './dataset.js';

/**
 * Each row's own length: one past its last step with a value in any dimension (only NaN, a
 * missing cell, is padding: an infinity is a bad value). Undefined when every row fills the
 * layout. A row without a single value keeps the full length: its missing values are the NaN
 * policy's to judge.
 */
export function ownLengths(values: Float64Array, n: number, layout: SeriesLayout): Int32Array | undefined {
  const { length, dims } = layout;
  const width = length * dims;
  const out = new Int32Array(n);
  let unequal = false;
  for (let r = 0; r < n; r++) {
    let end = length;
    const missing = (t: number) => {
      for (let j = 0; j < dims; j++) if (!Number.isNaN(values[r * width + t * dims + j]!)) return false;
      return true;
    };
    while (end > 0 && missing(end - 1)) end--;
    if (end === 0) end = length;
    out[r] = end;
    if (end < length) unequal = true;
  }
  return unequal ? out : undefined;
}

/** Whether the value at flat index `i` lies within its series' own length. */
export function withinLength(
  i: number,
  width: number,
  dims: number,
  lengths: Int32Array | undefined,
): boolean {
  return lengths === undefined || Math.floor((i % width) / dims) < lengths[Math.floor(i / width)]!;
}

/**
 * Every series resampled linearly over its own steps to the layout's length, dimension by
 * dimension (a one-step series is held flat): the same width for every row.
 */
export function resampleSeries(points: Matrix, layout: SeriesLayout, lengths: Int32Array): Matrix {
  const { length, dims } = layout;
  const width = length * dims;
  const out = new Float64Array(points.rows * width);
  for (let r = 0; r < points.rows; r++) {
    const own = lengths[r]!;
    const base = r * width;
    for (let t = 0; t < length; t++) {
      const at = length > 1 ? (t * (own - 1)) / (length - 1) : 0;
      const lo = Math.floor(at);
      const hi = Math.min(own - 1, lo + 1);
      const w = at - lo;
      for (let j = 0; j < dims; j++) {
        const a = points.data[base + lo * dims + j]!;
        const b = points.data[base + hi * dims + j]!;
        out[base + t * dims + j] = w === 0 ? a : a + w * (b - a);
      }
    }
  }
  return { rows: points.rows, cols: width, data: out };
}

/** Cleaned series of unequal lengths as the reservoirs read them: padded with zeros, and each one's length. */
export interface PaddedSeries {
  readonly values: Matrix;
  readonly lengths: Int32Array;
}

/**
 * The cleaned input as every stage takes it: one width per row (series of unequal lengths
 * resampled to the longest), and, for such series, the padded series the reservoirs read.
 */
export function splitPadded(
  values: Matrix,
  layout: SeriesLayout | undefined,
  lengths: Int32Array | undefined,
): { cleaned: Matrix; padded?: PaddedSeries } {
  if (!layout || !lengths) return { cleaned: values };
  return { cleaned: resampleSeries(values, layout, lengths), padded: { values, lengths } };
}

/**
 * Series shorter than a model's layout padded to it (new series to label may be shorter than the
 * longest the model was fitted on); anything else as it is, for the scaler to check.
 */
export function padToLayout(ds: Dataset, layout: SeriesLayout | undefined): Dataset {
  const from = ds.series;
  if (!layout || !from || from.dims !== layout.dims || from.length >= layout.length) return ds;
  const { dims } = layout;
  const width = layout.length * dims;
  const values = new Float64Array(ds.n * width);
  for (let r = 0; r < ds.n; r++) values.set(ds.values.subarray(r * ds.width, (r + 1) * ds.width), r * width);
  return {
    ...ds,
    width,
    values,
    columns: seriesColumns(layout),
    series: layout,
    lengths: ds.lengths ?? new Int32Array(ds.n).fill(from.length),
  };
}
