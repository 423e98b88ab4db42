/**
 * From a table of cells (CSV or JSON) to a Dataset: column roles, numeric parsing, the time-series
 * layout and the NaN/Inf policy. Every rejected cell is reported with its file, row and column.
 */
import type { NanPolicy } from '../config/schema.js';
import { DataError, UsageError } from '../core/errors.js';
import { quoteValue } from '../core/printable.js';
import type { Dataset, SeriesLayout } from './dataset.js';
import { ownLengths, withinLength } from './lengths.js';
import { longToDataset } from './long.js';
import type { Cell, DecimalMark, RawTable } from './raw.js';

export type { Cell, DecimalMark, RawTable } from './raw.js';

export interface TableOptions {
  labelColumn?: string | undefined;
  idColumn?: string | undefined;
  seriesLength?: number | undefined;
  /** Long format: the column naming each row's series (src/data/long.ts). */
  seriesIdColumn?: string | undefined;
  /** Long format: the column ordering a series' steps; file order when absent. */
  timeColumn?: string | undefined;
  nanPolicy: NanPolicy;
  /** A delimited text file's delimiter (`tab` for a tab); sniffed when absent. */
  delimiter?: string | undefined;
  /** The decimal mark of text cells; `auto` (or absent): a comma in a `;` file, else a point. */
  decimal?: DecimalMark | 'auto' | undefined;
  /** Whether a delimited text file's first row is its header (true when absent). */
  header?: boolean | undefined;
  /**
   * The feature columns, by name, when an earlier part of the same file decided them: a chunk
   * of a streamed file takes the columns of the first chunk instead of deciding its own.
   */
  featureColumns?: readonly string[] | undefined;
  /**
   * Under `impute-mean`: the means to impute with (a streamed file's, over all its rows), or
   * `defer` to leave non-finite values for a later pass that knows them.
   */
  imputeWith?: readonly number[] | 'defer' | undefined;
}

/** Receives warnings about the input (dropped columns, dropped rows). */
export interface DataWarnings {
  warn(obj: object, msg: string): void;
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
/** Thousands grouped by commas, a point for the decimals: `1,200`, `-12,345.5`. */
const GROUPED_POINT = /^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?$/;
/** A comma for the decimals, thousands grouped by points or not: `1,5`, `1.200,5`, `12`. */
const COMMA_DECIMAL = /^[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d*)?(?:[eE][+-]?\d+)?$/;
const MISSING = new Set(['', 'nan', '+nan', '-nan', 'na', 'n/a', 'null', 'none']);
const POS_INF = new Set(['inf', '+inf', 'infinity', '+infinity']);
const NEG_INF = new Set(['-inf', '-infinity']);

/**
 * A cell as a number: a finite value, NaN for a missing value (empty, NaN, NA, null), +/-Infinity,
 * or `undefined` when the cell is not numeric at all. Stricter than `Number()`, which reads "" as 0
 * and "0x10" as 16.
 */
export function parseCell(cell: Cell, decimal: DecimalMark = '.'): number | undefined {
  if (cell === null || cell === undefined) return Number.NaN;
  if (typeof cell === 'number') return cell;
  if (typeof cell === 'boolean') return undefined;
  const s = cell.trim();
  if (decimal === '.') {
    if (NUMBER.test(s)) return Number(s);
    if (GROUPED_POINT.test(s)) return Number(s.replace(/,/g, ''));
  } else if (COMMA_DECIMAL.test(s)) {
    return Number(s.replace(/\./g, '').replace(',', '.'));
  }
  const lower = s.toLowerCase();
  if (MISSING.has(lower)) return Number.NaN;
  if (POS_INF.has(lower)) return Number.POSITIVE_INFINITY;
  if (NEG_INF.has(lower)) return Number.NEGATIVE_INFINITY;
  return undefined;
}

function cellText(cell: Cell): string {
  return cell === null || cell === undefined ? '' : String(cell);
}

/**
 * The cell of row `r` in numeric column `c` as a number (NaN when missing); a cell that is not a
 * number is an error naming its row and column.
 */
function numericCell(table: RawTable, r: number, c: number, decimal: DecimalMark): number {
  const cell = table.rows[r]![c];
  const v = parseCell(cell, decimal);
  if (v !== undefined) return v;
  const column = table.header[c]!;
  throw new DataError(
    'NEUROCLUSTER_ERR_DATA_VALUE',
    `non-numeric value ${quoteValue(cellText(cell))} in numeric column ${quoteValue(column)}`,
    { location: { file: table.source, row: table.rowNumber(r), column } },
  );
}

/**
 * A column is numeric when at least half of its non-missing cells are numbers; its other cells
 * are then errors, so a typo is reported rather than the column silently dropped.
 */
function isNumericColumn(rows: readonly (readonly Cell[])[], col: number, decimal: DecimalMark): boolean {
  let numeric = 0;
  let text = 0;
  for (const row of rows) {
    const v = parseCell(row[col], decimal);
    if (v === undefined) text++;
    else if (!Number.isNaN(v)) numeric++;
  }
  return numeric > 0 && numeric >= text;
}

const UNIVARIATE = /^t(\d+)$/;
const MULTIVARIATE = /^d(\d+)_t(\d+)$/;

/**
 * Detects a wide time-series header: `t0..t{T-1}` or `d{j}_t{i}` covering every (j, i) once.
 * Returns the column order that lays the values out time-major, or undefined if not a series.
 */
function detectSeries(names: readonly string[]): { layout: SeriesLayout; order: number[] } | undefined {
  if (names.length === 0) return undefined;
  const uni = names.map((n) => UNIVARIATE.exec(n));
  if (uni.every((m) => m !== null)) {
    const steps = uni.map((m) => Number(m![1]));
    const order = new Array<number>(names.length);
    for (let c = 0; c < steps.length; c++) {
      const t = steps[c]!;
      if (t >= names.length || order[t] !== undefined) return undefined;
      order[t] = c;
    }
    return { layout: { length: names.length, dims: 1 }, order };
  }
  const multi = names.map((n) => MULTIVARIATE.exec(n));
  if (multi.every((m) => m !== null)) {
    const dims = Math.max(...multi.map((m) => Number(m![1]))) + 1;
    const length = Math.max(...multi.map((m) => Number(m![2]))) + 1;
    if (dims * length !== names.length) return undefined;
    const order = new Array<number>(names.length);
    for (let c = 0; c < multi.length; c++) {
      const slot = Number(multi[c]![2]) * dims + Number(multi[c]![1]);
      if (order[slot] !== undefined) return undefined;
      order[slot] = c;
    }
    return { layout: { length, dims }, order };
  }
  return undefined;
}

function findColumn(table: RawTable, name: string | undefined, flag: string): number | undefined {
  if (name === undefined) return undefined;
  const index = table.header.indexOf(name);
  if (index < 0) {
    const known = table.header.map((h) => quoteValue(h)).join(', ');
    throw new UsageError(
      `${flag} ${quoteValue(name)} is not a column of ${table.source} (columns: ${known})`,
    );
  }
  return index;
}

/** Names that usually hold the ground truth, not a feature. */
const TRUTH_NAMES = new Set([
  'label',
  'labels',
  'class',
  'target',
  'y',
  'truth',
  'ground_truth',
  'groundtruth',
]);

/**
 * Warnings about how the table was read: a header row that looks like data (a file without a
 * header loses its first row to it), and a numeric column named like the ground truth that is
 * clustered as a feature.
 */
function judgeColumns(
  table: RawTable,
  featureCols: readonly number[],
  options: TableOptions,
  decimal: DecimalMark,
  warnings: DataWarnings | undefined,
): void {
  const { header, source } = table;
  const numericNames = header.filter((h) => {
    const v = parseCell(h, decimal);
    return v !== undefined && Number.isFinite(v);
  });
  if (header.length > 0 && numericNames.length === header.length) {
    warnings?.warn(
      { source, header },
      `the header row (${header.slice(0, 4).join(', ')}${header.length > 4 ? ', ...' : ''}) looks like data: if the file has no header, give --no-header (data.header: false), or its first row is lost`,
    );
  }
  if (options.labelColumn === undefined) {
    for (const c of featureCols) {
      const name = header[c]!;
      if (TRUTH_NAMES.has(name.trim().toLowerCase())) {
        warnings?.warn(
          { source, column: name },
          `column ${quoteValue(name)} is clustered as a feature; if it is the ground truth, give --label-column ${quoteValue(name)}`,
        );
      }
    }
  }
}

/** What to try when a text table has no numeric column: another delimiter, or the decimal comma. */
function dialectHint(table: RawTable, decimal: DecimalMark): string {
  const cells = [...table.header, ...(table.rows[0] ?? [])].map((c) => (typeof c === 'string' ? c : ''));
  if (table.header.length === 1 && /[;\t|]/.test(table.header[0]!)) {
    return ' (the header is one column: give the delimiter with --delimiter)';
  }
  if (decimal === '.' && cells.some((c) => COMMA_DECIMAL.test(c.trim()) && c.includes(','))) {
    return ' (the numbers look like decimal commas: give --decimal ,)';
  }
  return '';
}

/** Interprets a raw table as a Dataset according to the options. */
export function tableToDataset(table: RawTable, options: TableOptions, warnings?: DataWarnings): Dataset {
  const { header, rows, source } = table;
  const decimal: DecimalMark =
    options.decimal === '.' || options.decimal === ',' ? options.decimal : (table.decimal ?? '.');
  if (rows.length === 0) {
    throw new DataError('NEUROCLUSTER_ERR_DATA_FORMAT', 'no data rows after the header', {
      location: { file: source },
    });
  }
  if (options.seriesIdColumn !== undefined) {
    const { dataset, firstRows } = longToDataset(table, options, {
      find: (name, flag) => findColumn(table, name, flag),
      isNumeric: (col) => isNumericColumn(rows, col, decimal),
      parse: (cell) => parseCell(cell, decimal),
      value: (r, c) => numericCell(table, r, c, decimal),
      text: cellText,
      ignored: (columns) =>
        warnings?.warn({ columns, source }, `non-numeric columns ignored: ${columns.join(', ')}`),
    });
    return applyNanPolicy(
      dataset,
      options.nanPolicy,
      (r) => table.rowNumber(firstRows[r]!),
      warnings,
      options.imputeWith,
    );
  }
  const labelCol = findColumn(table, options.labelColumn, '--label-column');
  const idCol = findColumn(table, options.idColumn, '--id-column');
  if (labelCol !== undefined && labelCol === idCol) {
    throw new UsageError('--label-column and --id-column name the same column');
  }
  const candidates = header.map((_, i) => i).filter((i) => i !== labelCol && i !== idCol);

  // Column roles: a series header wins; otherwise numeric columns are the features.
  let featureCols: number[];
  let series: SeriesLayout | undefined;
  const detected = detectSeries(candidates.map((i) => header[i]!));
  if (options.featureColumns) {
    // A column the first chunk decided but this one lacks (JSON rows without the key) is missing
    // in every row here, as in a file read whole: the NaN policy decides (-1 reads as missing).
    featureCols = options.featureColumns.map((name) => header.indexOf(name));
    series = detected?.layout;
  } else if (detected) {
    featureCols = detected.order.map((o) => candidates[o]!);
    series = detected.layout;
  } else {
    featureCols = [];
    const ignored: string[] = [];
    for (const c of candidates) {
      if (isNumericColumn(rows, c, decimal)) featureCols.push(c);
      else ignored.push(header[c]!);
    }
    if (ignored.length > 0) {
      warnings?.warn({ columns: ignored, source }, `non-numeric columns ignored: ${ignored.join(', ')}`);
    }
  }
  if (featureCols.length === 0) {
    throw new DataError(
      'NEUROCLUSTER_ERR_DATA_FORMAT',
      `no numeric feature columns${dialectHint(table, decimal)}`,
      {
        location: { file: source },
      },
    );
  }
  if (!options.featureColumns) judgeColumns(table, featureCols, options, decimal, warnings);
  if (options.seriesLength !== undefined) {
    series = seriesFromLength(featureCols.length, options.seriesLength, source, series);
  }

  const width = featureCols.length;
  const values = new Float64Array(rows.length * width);
  for (let r = 0; r < rows.length; r++) {
    for (let j = 0; j < width; j++) values[r * width + j] = numericCell(table, r, featureCols[j]!, decimal);
  }
  const columns = options.featureColumns ? [...options.featureColumns] : featureCols.map((c) => header[c]!);
  const extra = {
    ids: idCol === undefined ? undefined : rows.map((row) => cellText(row[idCol])),
    truth: labelCol === undefined ? undefined : rows.map((row) => cellText(row[labelCol])),
  };
  return applyNanPolicy(
    { source, n: rows.length, width, values, columns, series, ...extra },
    options.nanPolicy,
    (r) => table.rowNumber(r),
    warnings,
    options.imputeWith,
  );
}

/** The layout implied by `--series-length T`, which must divide the number of value columns. */
export function seriesFromLength(
  columns: number,
  length: number,
  source: string,
  detected?: SeriesLayout,
): SeriesLayout {
  if (columns % length !== 0) {
    throw new DataError(
      'NEUROCLUSTER_ERR_DATA_SHAPE',
      `series length ${length} does not divide the ${columns} value columns`,
      { location: { file: source } },
    );
  }
  const layout = { length, dims: columns / length };
  if (detected && (detected.length !== layout.length || detected.dims !== layout.dims)) {
    throw new DataError(
      'NEUROCLUSTER_ERR_DATA_SHAPE',
      `series length ${length} contradicts the header (${detected.dims} dims x ${detected.length} steps)`,
      { location: { file: source } },
    );
  }
  return layout;
}

/**
 * Applies the NaN/Inf policy: `error` names the first non-finite cell, `drop-rows` removes its row
 * (and reports which), `impute-mean` replaces it by its column's mean over the finite values. In
 * series of unequal lengths (src/data/lengths.ts), the missing steps past a series' own end are
 * padding, not missing values: they become zeros and the dataset records each row's length.
 */
export function applyNanPolicy(
  ds: Dataset,
  policy: NanPolicy,
  rowNumber: (index: number) => number,
  warnings?: DataWarnings,
  imputeWith?: TableOptions['imputeWith'],
): Dataset {
  const { n, width } = ds;
  const dims = ds.series?.dims ?? 1;
  const lengths = ds.lengths ?? (ds.series ? ownLengths(ds.values, n, ds.series) : undefined);
  const within = (i: number) => withinLength(i, width, dims, lengths);
  let values = ds.values;
  if (lengths && !ds.lengths) {
    values = values.slice();
    for (let i = 0; i < values.length; i++) if (!within(i)) values[i] = 0;
    ds = { ...ds, values, lengths };
  }
  let firstBad = -1;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) {
      firstBad = i;
      break;
    }
  }
  if (firstBad < 0) return ds;
  if (policy === 'error') {
    const r = Math.floor(firstBad / width);
    const c = firstBad % width;
    const v = values[firstBad]!;
    throw new DataError(
      'NEUROCLUSTER_ERR_DATA_VALUE',
      `${Number.isNaN(v) ? 'missing or NaN' : 'infinite'} value in column ${quoteValue(ds.columns[c]!)} (NaN policy "error"; try --nan-policy drop-rows or impute-mean)`,
      { location: { file: ds.source, row: rowNumber(r), column: ds.columns[c]! } },
    );
  }
  if (policy === 'impute-mean') {
    if (imputeWith === 'defer') return ds;
    const out = values.slice();
    if (imputeWith) {
      for (let i = 0; i < out.length; i++) if (!Number.isFinite(out[i]!)) out[i] = imputeWith[i % width]!;
      return { ...ds, values: out };
    }
    for (let c = 0; c < width; c++) {
      let sum = 0;
      let count = 0;
      for (let r = 0; r < n; r++) {
        const v = values[r * width + c]!;
        if (Number.isFinite(v) && within(r * width + c)) {
          sum += v;
          count++;
        }
      }
      if (count === 0) {
        throw new DataError(
          'NEUROCLUSTER_ERR_DATA_VALUE',
          `column ${quoteValue(ds.columns[c]!)} has no finite value to impute from`,
          {
            location: { file: ds.source, column: ds.columns[c]! },
          },
        );
      }
      const mean = sum / count;
      for (let r = 0; r < n; r++) if (!Number.isFinite(out[r * width + c]!)) out[r * width + c] = mean;
    }
    warnings?.warn({ source: ds.source }, 'non-finite values replaced by their column means');
    return { ...ds, values: out };
  }
  const keep: number[] = [];
  const dropped: number[] = [];
  for (let r = 0; r < n; r++) {
    let ok = true;
    for (let c = 0; c < width; c++) {
      if (!Number.isFinite(values[r * width + c]!)) {
        ok = false;
        break;
      }
    }
    (ok ? keep : dropped).push(r);
  }
  const out = new Float64Array(keep.length * width);
  keep.forEach((r, i) => {
    out.set(values.subarray(r * width, (r + 1) * width), i * width);
  });
  warnings?.warn(
    { source: ds.source, dropped: dropped.length },
    `${dropped.length} rows with non-finite values dropped`,
  );
  const keptLengths = lengths && Int32Array.from(keep, (r) => lengths[r]!);
  return {
    ...ds,
    n: keep.length,
    values: out,
    ids: ds.ids && keep.map((r) => ds.ids![r]!),
    truth: ds.truth && keep.map((r) => ds.truth![r]!),
    droppedRows: dropped,
    lengths: keptLengths?.some((l) => l < ds.series!.length) ? keptLengths : undefined,
  };
}
