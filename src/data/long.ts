/**
 * Series in long format, as databases and data frames keep them: one row per step, a column
 * naming the series (`data.seriesIdColumn`), an optional column ordering its steps
 * (`data.timeColumn`: numbers or ISO dates; file order when absent) and one or more value
 * columns (one per dimension). Each series becomes one sample, its id the series' name, its steps
 * laid out time-major as the wide format's; series with fewer steps than the longest are padded
 * (src/data/lengths.ts) and read to their own ends.
 */
import { DataError, UsageError } from '../core/errors.js';
import { quoteValue } from '../core/printable.js';
import { type Dataset, seriesColumns } from './dataset.js';
import type { Cell, RawTable } from './raw.js';

/** The column roles of a long table (TableOptions'). */
export interface LongRoles {
  readonly seriesIdColumn?: string | undefined;
  readonly timeColumn?: string | undefined;
  readonly labelColumn?: string | undefined;
  readonly idColumn?: string | undefined;
}

/** What the long reader needs of the table reader. */
export interface LongColumns {
  readonly find: (name: string | undefined, flag: string) => number | undefined;
  readonly isNumeric: (col: number) => boolean;
  readonly parse: (cell: Cell) => number | undefined;
  /** Row `r`'s cell in numeric column `c`, as the table reader reads it (NaN when missing). */
  readonly value: (r: number, c: number) => number;
  readonly text: (cell: Cell) => string;
  /** Told the columns left out for not being numeric. */
  readonly ignored: (names: string[]) => void;
}

/** A time cell as a number to order steps by: a number, else an ISO date's milliseconds. */
function timeOf(cell: Cell, parse: LongColumns['parse']): number | undefined {
  const v = parse(cell);
  if (v !== undefined && Number.isFinite(v)) return v;
  if (typeof cell !== 'string') return undefined;
  const ms = Date.parse(cell.trim());
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * One sample per series: the rows of a long table grouped by series, ordered by time, values
 * time-major (missing steps of shorter series NaN, for the NaN policy to pad); with the file row
 * where each series starts, for errors about a sample.
 */
export function longToDataset(
  table: RawTable,
  options: LongRoles,
  columns: LongColumns,
): { dataset: Dataset; firstRows: number[] } {
  const { header, rows, source } = table;
  if (options.idColumn !== undefined) {
    throw new UsageError(
      '--id-column does not apply to long-format series: each series is named by --series-id, which labels its output',
    );
  }
  const idCol = columns.find(options.seriesIdColumn, '--series-id')!;
  const timeCol = columns.find(options.timeColumn, '--time-column');
  const labelCol = columns.find(options.labelColumn, '--label-column');
  const named = [idCol, timeCol, labelCol].filter((c) => c !== undefined);
  const roles = new Set(named);
  if (roles.size < named.length) {
    throw new UsageError('--series-id, --time-column and --label-column must name different columns');
  }
  const others = header.map((_, i) => i).filter((i) => !roles.has(i));
  const valueCols = others.filter((i) => columns.isNumeric(i));
  const ignored = others.filter((i) => !valueCols.includes(i)).map((i) => header[i]!);
  if (ignored.length > 0) columns.ignored(ignored);
  if (valueCols.length === 0) {
    throw new DataError('NEUROCLUSTER_ERR_DATA_FORMAT', 'no numeric value column beside the series id', {
      location: { file: source },
    });
  }
  // Series in the order they first appear; each one's rows with their times.
  const groups = new Map<string, { rows: number[]; times: number[] }>();
  rows.forEach((row, r) => {
    const id = columns.text(row[idCol]);
    if (id === '') {
      throw new DataError('NEUROCLUSTER_ERR_DATA_VALUE', 'a row without a series id', {
        location: { file: source, row: table.rowNumber(r), column: header[idCol]! },
      });
    }
    let group = groups.get(id);
    if (!group) {
      group = { rows: [], times: [] };
      groups.set(id, group);
    }
    group.rows.push(r);
    if (timeCol !== undefined) {
      const t = timeOf(row[timeCol], columns.parse);
      if (t === undefined) {
        throw new DataError(
          'NEUROCLUSTER_ERR_DATA_VALUE',
          `time ${quoteValue(columns.text(row[timeCol]))} is neither a number nor a date`,
          { location: { file: source, row: table.rowNumber(r), column: header[timeCol]! } },
        );
      }
      group.times.push(t);
    }
  });
  const dims = valueCols.length;
  const length = Math.max(...[...groups.values()].map((g) => g.rows.length));
  const width = length * dims;
  const values = new Float64Array(groups.size * width).fill(Number.NaN);
  const ids: string[] = [];
  const truth: string[] = [];
  let s = 0;
  for (const [id, group] of groups) {
    const steps = group.rows.map((r, i) => ({ r, t: group.times[i] ?? i }));
    if (timeCol !== undefined) steps.sort((a, b) => a.t - b.t);
    steps.forEach(({ r, t }, step) => {
      if (step > 0 && timeCol !== undefined && steps[step - 1]!.t === t) {
        throw new DataError(
          'NEUROCLUSTER_ERR_DATA_VALUE',
          `series ${quoteValue(id)} has two rows at the same time`,
          {
            location: { file: source, row: table.rowNumber(r), column: header[timeCol]! },
          },
        );
      }
      valueCols.forEach((c, j) => {
        values[s * width + step * dims + j] = columns.value(r, c);
      });
    });
    if (labelCol !== undefined) {
      const labels = new Set(group.rows.map((r) => columns.text(rows[r]![labelCol])));
      if (labels.size > 1) {
        throw new DataError(
          'NEUROCLUSTER_ERR_DATA_VALUE',
          `series ${quoteValue(id)} has more than one label (${[...labels].slice(0, 3).map(quoteValue).join(', ')})`,
          { location: { file: source, row: table.rowNumber(group.rows[0]!), column: header[labelCol]! } },
        );
      }
      truth.push([...labels][0]!);
    }
    ids.push(id);
    s++;
  }
  const dataset: Dataset = {
    source,
    n: groups.size,
    width,
    values,
    columns: seriesColumns({ length, dims }),
    series: { length, dims },
    ids,
    ...(labelCol === undefined ? {} : { truth }),
  };
  return { dataset, firstRows: [...groups.values()].map((g) => g.rows[0]!) };
}
