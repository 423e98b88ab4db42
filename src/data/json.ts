/**
 * JSON input: an array of rows, each an array of numbers or an object of named cells; JSON Lines:
 * the same rows, one per line.
 */
import { DataError } from '../core/errors.js';
import type { Cell, RawTable } from './table.js';
import { decodeText } from './text.js';

function fail(message: string, source: string, row?: number): never {
  throw new DataError('NEUROCLUSTER_ERR_DATA_FORMAT', message, {
    location: { file: source, ...(row === undefined ? {} : { row }) },
  });
}

export function asCell(value: unknown, source: string, row: number, column: string): Cell {
  if (
    value === null ||
    typeof value === 'number' ||
    typeof value === 'string' ||
    typeof value === 'boolean'
  ) {
    return value;
  }
  throw new DataError(
    'NEUROCLUSTER_ERR_DATA_VALUE',
    `a cell must be a number, string or null, not ${typeof value}`,
    {
      location: { file: source, row, column },
    },
  );
}

/** Parses JSON bytes into a raw table; rows in errors are 1-based positions in the array. */
export function readJson(bytes: Uint8Array, source: string): RawTable {
  const text = decodeText(bytes, source);
  if (text.trim() === '') fail('the file is empty', source);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new DataError('NEUROCLUSTER_ERR_DATA_FORMAT', `malformed JSON: ${(cause as Error).message}`, {
      cause,
      location: { file: source },
    });
  }
  if (!Array.isArray(doc)) fail('expected a JSON array of rows', source);
  if (doc.length === 0) fail('no data rows: the array is empty', source);
  return tableOfRows(doc, source, (i) => i + 1);
}

/**
 * Parses JSON Lines bytes (`.jsonl`, `.ndjson`: one row per line, an array or an object, as in a
 * JSON array of rows; blank lines skipped) into a raw table; rows in errors are line numbers.
 */
export function readJsonLines(bytes: Uint8Array, source: string): RawTable {
  const text = decodeText(bytes, source);
  const rows: unknown[] = [];
  const lines: number[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      rows.push(JSON.parse(line));
    } catch (cause) {
      throw new DataError(
        'NEUROCLUSTER_ERR_DATA_FORMAT',
        `malformed JSON line: ${(cause as Error).message}`,
        {
          cause,
          location: { file: source, row: i + 1 },
        },
      );
    }
    lines.push(i + 1);
  });
  if (rows.length === 0) fail('no data rows: the file has no JSON line', source);
  return tableOfRows(rows, source, (i) => lines[i]!);
}

/** Rows that are all arrays (columns x0, x1, ...) or all objects (columns by key, first seen first). */
export function tableOfRows(
  doc: readonly unknown[],
  source: string,
  rowNumber: (i: number) => number,
): RawTable {
  if (Array.isArray(doc[0])) {
    const width = (doc[0] as unknown[]).length;
    const header = Array.from({ length: width }, (_, j) => `x${j}`);
    const rows = doc.map((row, i) => {
      if (!Array.isArray(row)) fail('every row must be an array like the first', source, rowNumber(i));
      if (row.length !== width)
        fail(`ragged row: ${row.length} values where the first row has ${width}`, source, rowNumber(i));
      return row.map((v, j) => asCell(v, source, rowNumber(i), header[j]!));
    });
    return { source, header, rows, rowNumber };
  }
  const header: string[] = [];
  const index = new Map<string, number>();
  for (const [i, row] of doc.entries()) {
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      fail('every row must be an object like the first', source, rowNumber(i));
    }
    for (const key of Object.keys(row)) {
      if (!index.has(key)) {
        index.set(key, header.length);
        header.push(key);
      }
    }
  }
  const rows = (doc as Record<string, unknown>[]).map((row, i) => {
    const cells: Cell[] = new Array(header.length).fill(null);
    for (const [key, value] of Object.entries(row))
      cells[index.get(key)!] = asCell(value, source, rowNumber(i), key);
    return cells;
  });
  return { source, header, rows, rowNumber };
}
