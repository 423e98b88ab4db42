/** Reading a data file of any supported format into a validated Dataset. */
import { extname } from 'node:path';
import { DataError, isNeuroclusterError, UsageError } from '../core/errors.js';
import { readOnce } from '../core/open.js';
import { readCsv } from './csv.js';
import { type Dataset, seriesColumns } from './dataset.js';
import { readJson, readJsonLines } from './json.js';
import { readNpy } from './npy.js';
import { PARQUET_MAGIC, readParquet } from './parquet.js';
import {
  applyNanPolicy,
  type DataWarnings,
  seriesFromLength,
  type TableOptions,
  tableToDataset,
} from './table.js';

export type DataFormat = 'csv' | 'json' | 'jsonl' | 'parquet' | 'npy';

/** The format from the extension, or sniffed from the first bytes when the extension says nothing. */
export function detectFormat(path: string, bytes: Uint8Array): DataFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv' || ext === '.txt') return 'csv';
  if (ext === '.json') return 'json';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.parquet' || ext === '.pq') return 'parquet';
  if (ext === '.npy') return 'npy';
  if (bytes[0] === 0x93 && bytes[1] === 0x4e) return 'npy';
  if (PARQUET_MAGIC.every((b, i) => bytes[i] === b)) return 'parquet';
  const first = new TextDecoder().decode(bytes.subarray(0, 64)).trimStart()[0];
  return first === '[' ? 'json' : first === '{' ? 'jsonl' : 'csv';
}

/** The raw table of a tabular format. */
async function tableOf(
  format: Exclude<DataFormat, 'npy'>,
  bytes: Uint8Array,
  source: string,
  dialect: { delimiter?: string | undefined; header?: boolean | undefined },
) {
  if (format === 'csv') return readCsv(bytes, source, dialect);
  if (format === 'json') return readJson(bytes, source);
  if (format === 'jsonl') return readJsonLines(bytes, source);
  return readParquet(bytes, source);
}

/** Parses bytes already read (so callers that hash or audit the bytes read them once). */
export async function parseDataset(
  bytes: Uint8Array,
  source: string,
  options: TableOptions,
  warnings?: DataWarnings,
): Promise<Dataset> {
  const format = detectFormat(source, bytes);
  if (format !== 'npy') {
    const table = await tableOf(format, bytes, source, {
      delimiter: options.delimiter,
      header: options.header,
    });
    return tableToDataset(table, options, warnings);
  }
  refuseColumnRoles(options);
  const { shape, data } = readNpy(bytes, source);
  const n = shape[0]!;
  if (n === 0)
    throw new DataError('NEUROCLUSTER_ERR_DATA_FORMAT', 'no data rows: the array is empty', {
      location: { file: source },
    });
  const { width, columns, series } = npyLayout(shape, options, source);
  return applyNanPolicy(
    { source, n, width, values: data, columns, series },
    options.nanPolicy,
    (i) => i + 1,
    warnings,
  );
}

/** NPY input refuses the column roles of tabular input. */
export function refuseColumnRoles(options: TableOptions): void {
  const roles = [options.labelColumn, options.idColumn, options.seriesIdColumn, options.timeColumn];
  if (roles.some((r) => r !== undefined)) {
    throw new UsageError(
      '--label-column, --id-column, --series-id and --time-column apply to tabular input (CSV, JSON, Parquet), not NPY',
    );
  }
}

/** The columns of an NPY array of this shape: `x{j}`, or a series' `t{i}` / `d{j}_t{i}`. */
export function npyLayout(
  shape: readonly number[],
  options: TableOptions,
  source: string,
): { width: number; columns: string[]; series: Dataset['series'] } {
  const width = shape.slice(1).reduce((a, b) => a * b, 1);
  let columns: string[];
  let series: Dataset['series'];
  if (shape.length === 3) {
    series = { length: shape[1]!, dims: shape[2]! };
    columns = seriesColumns(series);
  } else {
    columns = Array.from({ length: width }, (_, j) => `x${j}`);
  }
  if (options.seriesLength !== undefined)
    series = seriesFromLength(width, options.seriesLength, source, series);
  return { width, columns, series };
}

/**
 * Reads and validates a data file (CSV, JSON, JSON Lines, Parquet or NPY), its bytes given by `read`: by default the
 * file as it is. The security layer passes its own (src/security/secure-load.ts): the descriptor
 * it opened and checked, decrypted when the file is encrypted.
 */
export async function loadDataset(
  path: string,
  options: TableOptions,
  warnings?: DataWarnings,
  read: () => Promise<Uint8Array> = () => readOnce(path),
): Promise<Dataset> {
  let bytes: Uint8Array;
  try {
    bytes = await read();
  } catch (cause) {
    if (isNeuroclusterError(cause)) throw cause;
    throw new DataError('NEUROCLUSTER_ERR_DATA_READ', `cannot read input: ${(cause as Error).message}`, {
      cause,
      location: { file: path },
    });
  }
  if (bytes.length === 0) {
    throw new DataError('NEUROCLUSTER_ERR_DATA_FORMAT', 'the file is empty', { location: { file: path } });
  }
  return parseDataset(bytes, path, options, warnings);
}

/** A Dataset from rows already in memory (the library's `fit([[...], ...])`). */
export function datasetFromRows(
  rows: readonly (readonly number[])[] | { rows: number; cols: number; data: ArrayLike<number> },
  options: Pick<TableOptions, 'nanPolicy' | 'seriesLength'>,
  warnings?: DataWarnings,
): Dataset {
  const source = '<memory>';
  let n: number;
  let width: number;
  let values: Float64Array;
  if (Array.isArray(rows)) {
    n = rows.length;
    width = n > 0 ? rows[0]!.length : 0;
    values = new Float64Array(n * width);
    rows.forEach((row: readonly number[], i: number) => {
      if (!Array.isArray(row) || row.length !== width) {
        throw new DataError(
          'NEUROCLUSTER_ERR_DATA_SHAPE',
          `row ${i + 1} has ${row?.length} values where row 1 has ${width}`,
          {
            location: { file: source, row: i + 1 },
          },
        );
      }
      for (let j = 0; j < width; j++) {
        const v = row[j];
        if (typeof v !== 'number') {
          throw new DataError('NEUROCLUSTER_ERR_DATA_VALUE', `value is a ${typeof v}, not a number`, {
            location: { file: source, row: i + 1, column: `x${j}` },
          });
        }
        values[i * width + j] = v;
      }
    });
  } else {
    const m = rows as { rows: number; cols: number; data: ArrayLike<number> };
    n = m.rows;
    width = m.cols;
    if (m.data.length !== n * width) {
      throw new DataError(
        'NEUROCLUSTER_ERR_DATA_SHAPE',
        `matrix data has ${m.data.length} values, not ${n} x ${width}`,
      );
    }
    values = Float64Array.from(m.data);
  }
  if (n === 0 || width === 0) {
    throw new DataError('NEUROCLUSTER_ERR_DATA_SHAPE', 'no data: the matrix is empty', {
      location: { file: source },
    });
  }
  const columns = Array.from({ length: width }, (_, j) => `x${j}`);
  const series =
    options.seriesLength === undefined ? undefined : seriesFromLength(width, options.seriesLength, source);
  return applyNanPolicy(
    { source, n, width, values, columns, series },
    options.nanPolicy,
    (i) => i + 1,
    warnings,
  );
}
