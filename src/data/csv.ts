/** CSV input (csv-parse): a header row, then one record per row. */
import { CsvError, parse } from 'csv-parse/sync';
import { DataError } from '../core/errors.js';
import type { DecimalMark, RawTable } from './table.js';
import { decodeText } from './text.js';

interface Parsed {
  record: string[];
  info: { lines: number };
}

/** How a delimited text file is written: its delimiter, and whether its first row is a header. */
export interface CsvDialect {
  readonly delimiter: string;
  readonly header: boolean;
}

/** The delimiters tried when none is given, in order of preference on a tie. */
const DELIMITERS = [',', '\t', ';', '|'] as const;

/**
 * The delimiter of a text file: the one given (`tab` for a tab), else a tab for a `.tsv` file,
 * else the one of `,` tab `;` `|` that splits the first lines into the same number of fields (more
 * than one), the most fields first; a comma when none does.
 */
export function sniffDelimiter(text: string, source: string, given?: string): string {
  if (given !== undefined) return given === 'tab' ? '\t' : given;
  if (/\.tsv$/i.test(source)) return '\t';
  const lines = text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/, 21)
    .slice(0, 20)
    .filter((l) => l.trim() !== '');
  let best: { delimiter: string; fields: number } | undefined;
  for (const delimiter of DELIMITERS) {
    const counts = lines.map((l) => l.split(delimiter).length);
    const fields = counts[0] ?? 1;
    if (fields < 2 || counts.some((c) => c !== fields)) continue;
    if (!best || fields > best.fields) best = { delimiter, fields };
  }
  return best?.delimiter ?? ',';
}

/** The options of csv-parse for a dialect (field counts are checked by the readers, to name the line). */
export function csvParseOptions(dialect: CsvDialect) {
  return {
    bom: true,
    skip_empty_lines: true,
    info: true,
    relax_column_count: true,
    delimiter: dialect.delimiter,
  } as const;
}

/** The decimal mark a delimiter implies: a comma in a `;` file (as European software writes it), else a point. */
export function decimalOf(delimiter: string): DecimalMark {
  return delimiter === ';' ? ',' : '.';
}

/** Names for the columns of a file without a header: column1, column2, ... */
export function numberedHeader(width: number): string[] {
  return Array.from({ length: width }, (_, i) => `column${i + 1}`);
}

/** Parses CSV bytes into a raw table; row numbers in errors are the file's line numbers. */
export function readCsv(bytes: Uint8Array, source: string, dialect?: Partial<CsvDialect>): RawTable {
  const text = decodeText(bytes, source);
  const resolved: CsvDialect = {
    delimiter: sniffDelimiter(text, source, dialect?.delimiter),
    header: dialect?.header ?? true,
  };
  let parsed: Parsed[];
  try {
    parsed = parse(text, csvParseOptions(resolved)) as unknown as Parsed[];
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
  const header = resolved.header
    ? csvHeader(parsed[0]!.record, source)
    : numberedHeader(parsed[0]!.record.length);
  const body = resolved.header ? parsed.slice(1) : parsed;
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
    decimal: decimalOf(resolved.delimiter),
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
