/** CSV input (csv-parse): a header row, then one record per row. */
import { CsvError, parse } from 'csv-parse/sync';
import { DataError } from '../core/errors.js';
import type { RawTable } from './table.js';
import { decodeText } from './text.js';

interface Parsed {
  record: string[];
  info: { lines: number };
}

/** Parses CSV bytes into a raw table; row numbers in errors are the file's line numbers. */
export function readCsv(bytes: Uint8Array, source: string): RawTable {
  const text = decodeText(bytes, source);
  let parsed: Parsed[];
  try {
    // Field counts are checked below, so the message can say what the header expected.
    parsed = parse(text, {
      bom: true,
      skip_empty_lines: true,
      info: true,
      relax_column_count: true,
    }) as unknown as Parsed[];
  } catch (cause) {
    if (!(cause instanceof CsvError)) throw cause;
    const lines = (cause as CsvError & { lines?: number }).lines;
    const what =
      cause.code === 'CSV_QUOTE_NOT_CLOSED'
        ? 'unbalanced quotes: a quoted field is never closed'
        : `malformed CSV: ${cause.message}`;
    throw new DataError('NEUROCLUSTER_ERR_DATA_FORMAT', what, {
      cause,
      location: { file: source, ...(lines ? { row: lines } : {}) },
    });
  }
  if (parsed.length === 0) {
    throw new DataError('NEUROCLUSTER_ERR_DATA_FORMAT', 'the file is empty', { location: { file: source } });
  }
  const header = csvHeader(parsed[0]!.record, source);
  const body = parsed.slice(1);
  for (const { record, info } of body) {
    if (record.length !== header.length) {
      throw new DataError(
        'NEUROCLUSTER_ERR_DATA_FORMAT',
        `ragged row: ${record.length} fields where the header has ${header.length}`,
        { location: { file: source, row: info.lines } },
      );
    }
  }
  return {
    source,
    header,
    rows: body.map((p) => p.record),
    rowNumber: (i) => body[i]?.info.lines ?? i + 2,
  };
}

/** A CSV header: blank names numbered, duplicates refused. */
export function csvHeader(cells: readonly string[], source: string): string[] {
  const header = cells.map((h, i) => h.trim() || `column${i + 1}`);
  const seen = new Set<string>();
  for (const name of header) {
    if (seen.has(name)) {
      throw new DataError('NEUROCLUSTER_ERR_DATA_FORMAT', `duplicate column name "${name}" in the header`, {
        location: { file: source, row: 1, column: name },
      });
    }
    seen.add(name);
  }
  return header;
}
