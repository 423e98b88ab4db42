/**
 * Cleaning fitted on the training data and replayed on new data: constant columns dropped, z-score
 * standardization (population standard deviation, as scikit-learn's StandardScaler) for tabular
 * data, per-series z-normalization for time series.
 */

import { BackendError, DataError } from '../core/errors.js';
import {
  columnMoments,
  maxAbsOf,
  requireSafeMagnitude,
  SAFE_MAGNITUDE,
  standardized,
  stridedMoments,
} from '../linalg/moments.js';
import type { Dataset } from './dataset.js';
import type { DataWarnings } from './table.js';

/** What cleaning learned from the training data; stored in the model file. */
export interface Scaler {
  readonly kind: 'tabular' | 'series';
  /** Input width the scaler was fitted on, and the names of those columns. */
  readonly inputColumns: readonly string[];
  /** Indices of the input columns kept (constant ones are dropped). */
  readonly keep: readonly number[];
  /** Per kept column; identity (0 and 1) when standardization is off. */
  readonly means: readonly number[];
  readonly scales: readonly number[];
  readonly standardize: boolean;
  readonly series?: { readonly length: number; readonly dims: number };
}

/**
 * Unstandardized data whose spread is below 1 / SAFE_MAGNITUDE would have every squared distance
 * underflow to 0 (all points alike, inertia 0): refused with NUMERICAL.
 */
function requireSpread(spread: number, what: string): void {
  if (spread >= 1 / SAFE_MAGNITUDE) return;
  throw new BackendError(
    `the data's spread (${what} ${spread}) is below ${1 / SAFE_MAGNITUDE}, where squared distances underflow float64: standardize it (drop --no-standardize) or rescale it`,
    'NEUROCLUSTER_ERR_NUMERICAL',
  );
}

/**
 * Learns the cleaning of a dataset. Sums run over the rows in `order` (by default file order); the
 * clusterer passes its canonical order so the scaler does not depend on the order of the rows.
 */
export function fitScaler(
  ds: Dataset,
  standardize: boolean,
  warnings?: DataWarnings,
  order?: Int32Array,
): Scaler {
  const { n, width, values } = ds;
  if (ds.series) {
    if (!standardize) requireSpread(maxAbsOf(values), 'largest magnitude');
    return seriesScaler(ds, ds.series, standardize);
  }
  // Overflow-free moments (src/linalg/moments.ts): values near 1e300 or subnormal ones are
  // standardized like any other, scale-free.
  const moments = columnMoments({ rows: n, cols: width, data: values }, order);
  return tabularScaler(ds, moments.means, moments.stds, standardize, warnings);
}

/**
 * The cleaning of tabular data from its columns' means and standard deviations (over all rows,
 * however they were summed: at once, or merged over chunks).
 */
export function tabularScaler(
  ds: Pick<Dataset, 'columns' | 'source'>,
  columnMeans: ArrayLike<number>,
  columnStds: ArrayLike<number>,
  standardize: boolean,
  warnings?: DataWarnings,
): Scaler {
  const keep: number[] = [];
  const means: number[] = [];
  const scales: number[] = [];
  const constant: string[] = [];
  let widest = 0;
  for (let j = 0; j < ds.columns.length; j++) {
    const mean = columnMeans[j]!;
    const std = columnStds[j]!;
    // A column whose spread is lost in rounding (relative to its values) is constant for every
    // purpose here.
    if (std === 0 || std <= 1e-12 * Math.abs(mean)) {
      constant.push(ds.columns[j]!);
      continue;
    }
    keep.push(j);
    widest = Math.max(widest, std);
    means.push(standardize ? mean : 0);
    scales.push(standardize ? std : 1);
  }
  if (constant.length > 0) {
    warnings?.warn(
      { columns: constant, source: ds.source },
      `constant columns dropped: ${constant.join(', ')}`,
    );
  }
  if (keep.length === 0) {
    throw new DataError(
      'NEUROCLUSTER_ERR_DATA_VALUE',
      'every feature column is constant: nothing to cluster',
      {
        location: { file: ds.source },
      },
    );
  }
  if (!standardize) requireSpread(widest, 'standard deviation');
  return { kind: 'tabular', inputColumns: ds.columns, keep, means, scales, standardize };
}

/** The cleaning of time series: per-series z-normalization (when standardizing), no column dropped. */
export function seriesScaler(
  ds: Pick<Dataset, 'columns'>,
  series: NonNullable<Dataset['series']>,
  standardize: boolean,
): Scaler {
  const keep = Array.from({ length: ds.columns.length }, (_, j) => j);
  return {
    kind: 'series',
    inputColumns: ds.columns,
    keep,
    means: keep.map(() => 0),
    scales: keep.map(() => 1),
    standardize,
    series,
  };
}

/** Applies a fitted cleaning; new data must have the width the scaler was fitted on. */
export function applyScaler(ds: Dataset, scaler: Scaler): Float64Array {
  if (ds.width !== scaler.inputColumns.length) {
    throw new DataError(
      'NEUROCLUSTER_ERR_DATA_SHAPE',
      `data has ${ds.width} feature columns; the model was fitted on ${scaler.inputColumns.length} (${scaler.inputColumns.join(', ')})`,
      { location: { file: ds.source } },
    );
  }
  const { n, width, values } = ds;
  let out: Float64Array;
  if (scaler.kind === 'series') {
    out = values.slice();
    if (scaler.standardize) zNormalizeSeries(out, n, scaler.series!.length, scaler.series!.dims, ds.lengths);
  } else {
    const m = scaler.keep.length;
    out = new Float64Array(n * m);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < m; c++) {
        out[i * m + c] = standardized(
          values[i * width + scaler.keep[c]!]!,
          scaler.means[c]!,
          scaler.scales[c]!,
        );
      }
    }
  }
  // What K-means and the metrics square must stay finite: unstandardized values near 1e300, or
  // new data far outside the training scale, are refused rather than clustered as infinities.
  requireSafeMagnitude(
    out,
    `the cleaned data of ${ds.source}${scaler.standardize ? '' : ' (not standardized: drop --no-standardize or rescale it)'}`,
  );
  return out;
}

/**
 * Z-normalizes every dimension of every series in place, over its own steps when `lengths` says
 * (its padding stays zero); a flat series becomes zeros.
 */
export function zNormalizeSeries(
  values: Float64Array,
  n: number,
  steps: number,
  dims: number,
  lengths?: Int32Array,
): void {
  const width = steps * dims;
  for (let i = 0; i < n; i++) {
    const base = i * width;
    const length = lengths?.[i] ?? steps;
    for (let j = 0; j < dims; j++) {
      const { mean, std } = stridedMoments(values, base + j, length, dims);
      const flat = std === 0 || std <= 1e-12 * Math.abs(mean);
      // The reciprocal of a subnormal std overflows: then divide.
      const inv = flat ? 0 : 1 / std;
      for (let t = 0; t < length; t++) {
        const at = base + t * dims + j;
        const z = (values[at]! - mean) * inv;
        values[at] = Number.isFinite(z) ? z : standardized(values[at]!, mean, std);
      }
    }
  }
}
