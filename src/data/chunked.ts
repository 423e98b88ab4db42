/**
 * Data files read in chunks of rows, never whole: NPY by byte ranges, CSV through csv-parse's
 * streaming parser, JSON Lines a block of lines at a time, Parquet a row group at a time (decoded
 * in a worker that reads the file by byte ranges, src/data/parquet.ts). Every chunk is a Dataset of its rows
 * with the index of its first record, so a row keeps its identity (its index in the file, or its
 * id) whatever the chunk size. Columns are decided on the first chunk and held to by the others;
 * row numbers in errors are the file's, as when the file is read whole.
 *
 * JSON arrays and encrypted files are not streamed here: {@link chunkedFile} says so and
 * the caller reads them whole (src/security/secure-load.ts opens a file for it within the limits).
 */
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { throwIfAborted } from '../core/cancel.js';
import { DataError, isNeuroclusterError } from '../core/errors.js';
import type { Handle } from '../core/open.js';
import {
  type CsvDialect,
  csvHeader,
  csvParseOptions,
  decimalOf,
  numberedHeader,
  sniffDelimiter,
} from './csv.js';
import type { Dataset } from './dataset.js';
import { asCell, tableOfRows } from './json.js';
import { type DataFormat, detectFormat, npyLayout, refuseColumnRoles } from './load.js';
import { decodeNpyValues, npyDataBytes, readNpyHeader } from './npy.js';
import { openParquet } from './parquet.js';
import {
  applyNanPolicy,
  type Cell,
  type DataWarnings,
  type RawTable,
  type TableOptions,
  tableToDataset,
} from './table.js';

/** Rows of a file: the Dataset of the chunk, and where its first record stands in the file. */
export interface DataChunk {
  /** 0-based index of the chunk's first record among the file's data records. */
  readonly start: number;
  /** Where the chunk's first record starts in the file, in bytes (a range may start there). */
  readonly offset: number;
  /** The line the chunk's first record is on (for text files; else its 1-based record number). */
  readonly line: number;
  /** Records the chunk read (its rows and those the NaN policy dropped). */
  readonly records: number;
  /** The chunk's rows; `droppedRows` are indices in the file, like `start`. */
  readonly data: Dataset;
}

/**
 * A run of a file's records that a reader can start at without reading what comes before: its
 * first record's index, byte offset and line (as a chunk of a pass over the file gave them).
 */
export interface RecordRange {
  /** The range's place among the ranges of the file, from 0. */
  readonly index: number;
  readonly start: number;
  readonly records: number;
  readonly offset: number;
  readonly line: number;
}

/**
 * A data file opened for reading in chunks; every call of `chunks` reads it from the start, or
 * only `range` of it when given: a range a pass over the whole file found (its first record's
 * index, byte offset and line; a Parquet row's number stands for its offset), read alone.
 */
export interface ChunkedFile {
  readonly source: string;
  readonly format: Exclude<DataFormat, 'json'>;
  /** Bytes of the file. */
  readonly bytes: number;
  /** Data records, when the file says so up front (NPY, Parquet). */
  readonly records: number | undefined;
  /** Bytes of a record: exact for NPY, the mean for Parquet, over the first lines of a text file. */
  readonly bytesPerRecord: number;
  chunks(
    rows: number,
    options: TableOptions,
    signal?: AbortSignal,
    warnings?: DataWarnings,
    range?: RecordRange,
  ): AsyncGenerator<DataChunk>;
  close(): Promise<void>;
}

/** Bytes read from a text file at a time. */
const BLOCK = 1 << 22;

function formatError(message: string, source: string, row?: number, cause?: unknown): DataError {
  return new DataError('NEUROCLUSTER_ERR_DATA_FORMAT', message, {
    ...(cause ? { cause } : {}),
    location: { file: source, ...(row === undefined ? {} : { row }) },
  });
}

/**
 * An opened file to be read in chunks (the caller opened it within its limits, and hands it over:
 * it is closed with the ChunkedFile, or here when that cannot be made), or undefined when its
 * format is not streamed (a JSON array) or it is `encrypted`: those are read whole.
 */
export async function chunkedFile(
  handle: Handle,
  path: string,
  encrypted: (head: Uint8Array) => boolean,
): Promise<ChunkedFile | undefined> {
  try {
    const { size } = await handle.stat();
    if (size === 0) throw formatError('the file is empty', path);
    const head = new Uint8Array(Math.min(size, 1 << 16));
    await handle.read(head, 0, head.length, 0);
    const format = detectFormat(path, head);
    if (encrypted(head) || format === 'json') {
      await handle.close();
      return undefined;
    }
    if (format === 'npy') return await npyFile(handle, path, size, head);
    if (format === 'parquet') return await parquetFile(handle, path, size);
    // The delimiter is sniffed from the first whole lines, as when the file is read whole.
    const whole = size > head.length ? head.subarray(0, head.lastIndexOf(0x0a) + 1) : head;
    const headText = new TextDecoder().decode(whole);
    const dialect = (options: TableOptions) => dialectOf(headText, path, options);
    // The decoder drops a byte-order mark: offsets count it back.
    const bom = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
    const read = (signal: AbortSignal | undefined, options: TableOptions, from?: RecordRange) =>
      format === 'csv'
        ? csvRecords(handle, path, dialect(options), signal, from ?? bom)
        : jsonLines(handle, path, signal, from ?? bom);
    return recordFile(
      handle,
      path,
      size,
      format,
      head.length / Math.max(1, countLines(head)),
      undefined,
      read,
      format === 'csv' ? { dialect } : {},
    );
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** An NPY file: its header read once, its rows by byte range. */
async function npyFile(handle: Handle, source: string, size: number, head: Uint8Array): Promise<ChunkedFile> {
  let first = head;
  if (first.length < 12) throw formatError('truncated NPY header', source);
  const headerLength =
    first[6] === 1
      ? 10 + new DataView(first.buffer).getUint16(8, true)
      : 12 + new DataView(first.buffer).getUint32(8, true);
  if (headerLength > first.length) {
    if (headerLength > size) throw formatError('truncated NPY header', source);
    first = new Uint8Array(headerLength);
    await handle.read(first, 0, headerLength, 0);
  }
  const header = readNpyHeader(first, source);
  const present = size - header.dataStart;
  if (present < npyDataBytes(header)) {
    throw formatError(
      `truncated NPY data: ${npyDataBytes(header)} bytes expected, ${present} present`,
      source,
    );
  }
  const n = header.shape[0]!;
  if (n === 0) throw formatError('no data rows: the array is empty', source);
  return {
    source,
    format: 'npy',
    bytes: size,
    records: n,
    bytesPerRecord: npyDataBytes(header) / n,
    async *chunks(rows, options, signal, warnings, range) {
      refuseColumnRoles(options);
      const { width, columns, series } = npyLayout(header.shape, options, source);
      const rowBytes = width * header.size;
      const first = range?.start ?? 0;
      const end = range ? Math.min(n, range.start + range.records) : n;
      const buffer = new Uint8Array(Math.max(0, Math.min(end - first, rows)) * rowBytes);
      for (let start = first; start < end; start += rows) {
        throwIfAborted(signal);
        const count = Math.min(rows, end - start);
        const want = count * rowBytes;
        const offset = header.dataStart + start * rowBytes;
        const { bytesRead } = await handle.read(buffer, 0, want, offset);
        if (bytesRead < want) throw formatError('the file was truncated while it was read', source);
        const values = decodeNpyValues(header, buffer.subarray(0, want));
        const data = applyNanPolicy(
          { source, n: count, width, values, columns, series },
          options.nanPolicy,
          (i) => start + i + 1,
          warnings,
          options.imputeWith,
        );
        yield { start, offset, line: start + 1, records: count, data: asChunk(data, start) };
      }
    },
    close: () => handle.close(),
  };
}

/**
 * A chunk as the file's: its dropped rows numbered in the file. Series of unequal lengths are
 * refused: a chunk cannot know the longest series of the file, so they are read whole.
 */
function asChunk(data: Dataset, start: number): Dataset {
  if (data.lengths) {
    throw new DataError(
      'NEUROCLUSTER_ERR_DATA_SHAPE',
      'series of unequal lengths (rows ending in missing values) are read whole, not in chunks: give --stream off (stream.mode: off)',
      { location: { file: data.source } },
    );
  }
  if (!data.droppedRows || start === 0) return data;
  return { ...data, droppedRows: data.droppedRows.map((r) => r + start) };
}

/** Decoded text blocks of a file: NUL bytes and invalid UTF-8 refused with their line. */
async function* textBlocks(
  handle: Handle,
  source: string,
  signal?: AbortSignal,
  from?: { readonly offset: number; readonly line: number },
): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const buffer = new Uint8Array(BLOCK);
  let position = from?.offset ?? 0;
  let line = from?.line ?? 1;
  for (;;) {
    throwIfAborted(signal);
    const { bytesRead } = await handle.read(buffer, 0, BLOCK, position);
    const bytes = buffer.subarray(0, bytesRead);
    const nul = bytes.indexOf(0);
    if (nul >= 0) {
      const lines = line + countLines(bytes.subarray(0, nul));
      throw formatError(`binary data (a NUL byte at offset ${position + nul}), not text`, source, lines);
    }
    let text: string;
    try {
      text = decoder.decode(bytes, { stream: bytesRead > 0 });
    } catch (cause) {
      // The line of the first byte that does not decode, as when the file is read whole.
      const lossy = new TextDecoder('utf-8').decode(bytes);
      const bad = lossy.indexOf('\uFFFD');
      const at = bad < 0 ? line : line + lossy.slice(0, bad).split('\n').length - 1;
      throw formatError('not valid UTF-8 text', source, at, cause);
    }
    if (bytesRead === 0) {
      if (text) yield text;
      return;
    }
    line += countLines(bytes);
    position += bytesRead;
    yield text;
  }
}

function countLines(bytes: Uint8Array): number {
  let lines = 0;
  for (let i = bytes.indexOf(0x0a); i >= 0; i = bytes.indexOf(0x0a, i + 1)) lines++;
  return lines;
}

/**
 * Records of a file, each with the line it is on and the byte offset just past it (where the next
 * record starts); the first is the header for CSV and Parquet. From a range, the records from its
 * first on (no header), their lines counted from the range's start (the caller shifts them).
 */
type Records = AsyncGenerator<{
  readonly record: readonly Cell[] | unknown;
  readonly line: number;
  readonly end: number;
}>;

async function* csvRecords(
  handle: Handle,
  source: string,
  dialect: CsvDialect,
  signal: AbortSignal | undefined,
  from: RecordRange | number,
): Records {
  // csv-parse counts lines and bytes from where it starts: a range's lines are shifted by the caller.
  const range = typeof from === 'number' ? undefined : from;
  const parser = parse({ ...csvParseOptions(dialect), ...(range ? { bom: false } : {}) });
  const input = Readable.from(textBlocks(handle, source, signal, range));
  input.on('error', (error) => parser.destroy(error));
  input.pipe(parser);
  const lines = range ? range.line - 1 : 0;
  const offset = range?.offset ?? (from as number);
  try {
    for await (const { record, info } of parser as AsyncIterable<{
      record: string[];
      info: { lines: number; bytes: number };
    }>) {
      yield { record, line: info.lines, end: offset + info.bytes };
    }
  } catch (cause) {
    if (isNeuroclusterError(cause)) throw cause;
    const code = (cause as { code?: string }).code;
    throw formatError(
      code === 'CSV_QUOTE_NOT_CLOSED'
        ? 'unbalanced quotes: a quoted field is never closed'
        : `malformed CSV: ${(cause as Error).message}`,
      source,
      (cause as { lines?: number }).lines === undefined
        ? undefined
        : lines + (cause as { lines: number }).lines,
      cause,
    );
  } finally {
    input.destroy();
  }
}

async function* jsonLines(
  handle: Handle,
  source: string,
  signal: AbortSignal | undefined,
  from: RecordRange | number,
): Records {
  const range = typeof from === 'number' ? undefined : from;
  let rest = '';
  let line = 0;
  let end = range?.offset ?? (from as number);
  const parseLine = (text: string, at: number) => {
    try {
      return JSON.parse(text) as unknown;
    } catch (cause) {
      throw formatError(`malformed JSON line: ${(cause as Error).message}`, source, at, cause);
    }
  };
  for await (const block of textBlocks(handle, source, signal, range)) {
    const lines = (rest + block).split('\n');
    rest = lines.pop()!;
    for (const text of lines) {
      line++;
      end += Buffer.byteLength(text) + 1;
      if (text.trim() !== '') yield { record: parseLine(text, line), line, end };
    }
  }
  line++;
  end += Buffer.byteLength(rest);
  if (rest.trim() !== '') yield { record: parseLine(rest, line), line, end };
}

/** A CSV's dialect: the delimiter given or sniffed from its first lines, and whether it has a header. */
function dialectOf(headText: string, source: string, options: TableOptions): CsvDialect {
  return { delimiter: sniffDelimiter(headText, source, options.delimiter), header: options.header ?? true };
}

/**
 * Parquet rows as records: the header first (as a CSV's), then each row, numbered from 1. A row
 * has no byte offset of its own: its number stands in, so a range's `offset` is the rows before it
 * (read from the row group it falls in; no header).
 */
async function* parquetRecords(
  handle: Handle,
  source: string,
  size: number,
  signal: AbortSignal | undefined,
  range: RecordRange | undefined,
): Records {
  const parquet = await openParquet({ fd: handle.fd, size }, source);
  try {
    if (!range) yield { record: parquet.header, line: 0, end: 0 };
    let line = range?.offset ?? 0;
    for await (const part of parquet.groups(line)) {
      throwIfAborted(signal);
      for (const row of part) yield { record: row, line: ++line, end: line };
    }
  } finally {
    await parquet.close();
  }
}

/** A headed file's header: its first record. */
async function headerOf(records: Records, source: string): Promise<string[]> {
  try {
    const first = await records.next();
    if (first.done) throw formatError('no header: the file is empty', source);
    return csvHeader(first.value.record as string[], source);
  } finally {
    await records.return(undefined);
  }
}

/** A Parquet file: its row count from the footer, its rows decoded a row group at a time. */
async function parquetFile(handle: Handle, source: string, size: number): Promise<ChunkedFile> {
  const footer = await openParquet({ fd: handle.fd, size }, source);
  await footer.close();
  const records = (signal: AbortSignal | undefined, _options: TableOptions, range?: RecordRange) =>
    parquetRecords(handle, source, size, signal, range);
  return recordFile(
    handle,
    source,
    size,
    'parquet',
    size / Math.max(1, footer.rows),
    footer.rows,
    records,
    {},
  );
}

/**
 * A CSV, JSON Lines or Parquet file: its records parsed as they are read, a chunk at a time.
 * A CSV's first record, and a Parquet file's, is its header.
 */
function recordFile(
  handle: Handle,
  source: string,
  size: number,
  format: 'csv' | 'jsonl' | 'parquet',
  bytesPerRecord: number,
  count: number | undefined,
  read: (signal: AbortSignal | undefined, options: TableOptions, from?: RecordRange) => Records,
  how: { readonly dialect?: (options: TableOptions) => CsvDialect },
): ChunkedFile {
  const headed = format !== 'jsonl';
  const { dialect } = how;
  return {
    source,
    format,
    bytes: size,
    records: count,
    bytesPerRecord,
    async *chunks(rows, options, signal, warnings, range) {
      // A CSV without a header (`header: false`) has numbered columns and data from its first row.
      const numbered = format === 'csv' && options.header === false;
      const decimal = dialect ? decimalOf(dialect(options).delimiter) : undefined;
      // A range starts past the header: it is read from the file's first record.
      let header: string[] | undefined =
        range && headed && !numbered ? await headerOf(read(signal, options), source) : undefined;
      const records = read(signal, options, range);
      let featureColumns: readonly string[] | undefined;
      let start = range?.start ?? 0;
      let offset = range?.offset ?? 0;
      let next = offset;
      let batch: unknown[] = [];
      let lines: number[] = [];
      const flush = (): DataChunk => {
        const table: RawTable = headed
          ? { source, header: header!, rows: batch as Cell[][], rowNumber: (i) => lines[i]!, decimal }
          : tableOfRows(batch, source, (i) => lines[i]!);
        const data = tableToDataset(
          table,
          { ...options, featureColumns },
          featureColumns ? undefined : warnings,
        );
        featureColumns ??= data.columns;
        const chunk = {
          start,
          offset,
          line: lines[0]!,
          records: batch.length,
          data: asChunk(data, start),
        };
        start += batch.length;
        offset = next;
        batch = [];
        lines = [];
        return chunk;
      };
      const end = range ? range.start + range.records : Number.POSITIVE_INFINITY;
      // A range's lines are counted from its start: its first record is on the line the range names.
      let shift: number | undefined = range ? undefined : 0;
      for await (const { record, line: counted, end: after } of records) {
        shift ??= range!.line - counted;
        const line = counted + shift;
        if (headed) {
          const cells = record as string[];
          if (!header && numbered) {
            header = numberedHeader(cells.length);
          } else if (!header) {
            header = format === 'csv' ? csvHeader(cells, source) : [...cells];
            offset = after;
            next = after;
            continue;
          }
          if (cells.length !== header.length) {
            throw formatError(
              `ragged row: ${cells.length} fields where the header has ${header.length}`,
              source,
              line,
            );
          }
        } else if (typeof record !== 'object' || record === null) {
          throw formatError('every row must be an array or an object', source, line);
        } else if (!Array.isArray(record)) {
          for (const [key, value] of Object.entries(record)) asCell(value, source, line, key);
        }
        batch.push(record);
        lines.push(line);
        next = after;
        if (batch.length === rows || start + batch.length === end) yield flush();
        if (start === end) break;
      }
      if (batch.length > 0) yield flush();
      if (start === 0) {
        throw formatError(
          format === 'jsonl' ? 'no data rows: the file has no JSON line' : 'no data rows after the header',
          source,
        );
      }
    },
    close: () => handle.close(),
  };
}
