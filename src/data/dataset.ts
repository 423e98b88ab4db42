/** The Dataset type: what every reader produces and every later stage consumes. */

/** Layout of a time-series dataset: each row holds `length` steps of `dims` values, time-major. */
export interface SeriesLayout {
  readonly length: number;
  readonly dims: number;
}

/** A validated numeric matrix with its provenance; values are finite after loading. */
export interface Dataset {
  /** Where it came from (a path, or `<memory>`), for error messages. */
  readonly source: string;
  readonly n: number;
  /** Values per row: d for tabular data, T x dims for a series. */
  readonly width: number;
  /** n x width, row-major. For a series, the value of dimension j at step t is at `t * dims + j`. */
  readonly values: Float64Array;
  /** A name per value column (`d{j}_t{i}` or `t{i}` for series). */
  readonly columns: readonly string[];
  readonly series?: SeriesLayout;
  /**
   * Series of unequal lengths: each row's own length in steps (its steps past it are padding,
   * zeros in `values`); absent when every series fills the layout.
   */
  readonly lengths?: Int32Array;
  /** The `--id-column` value of every row, carried through to the output. */
  readonly ids?: readonly string[];
  /** The `--label-column` value of every row: ground truth for external scores. */
  readonly truth?: readonly string[];
  /** 0-based indices of input records dropped by the `drop-rows` NaN policy. */
  readonly droppedRows?: readonly number[];
}

/** The column names of a series layout, time-major: `t{i}`, or `d{j}_t{i}` for several dimensions. */
export function seriesColumns({ length, dims }: SeriesLayout): string[] {
  return Array.from({ length: length * dims }, (_, c) =>
    dims === 1 ? `t${c}` : `d${c % dims}_t${Math.floor(c / dims)}`,
  );
}

/** The row of `values` at index `i`, as a view. */
export function rowOf(ds: Pick<Dataset, 'values' | 'width'>, i: number): Float64Array {
  return ds.values.subarray(i * ds.width, (i + 1) * ds.width);
}
