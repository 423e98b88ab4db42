/**
 * Parquet input (hyparquet; gzip, zstd, brotli and lz4 pages through hyparquet-compressors, snappy
 * natively): read row group by row group into a raw table, so the column rules are CSV's (numeric
 * columns are the features, `--label-column` and `--id-column` pick theirs by name, a wide
 * `t0..` or `d{j}_t{i}` header is a series). Rows in errors are 1-based positions in the file.
 *
 * Cells: numbers as they are; INT64 as its decimal text (exact for an id column, parsed as a
 * number in a feature column); null as missing; strings as strings; a timestamp as its ISO text,
 * and a list, map, struct or binary value as text, so such a column is not numeric and is left
 * out with a warning, as a text column of a CSV is.
 */
import { Worker } from 'node:worker_threads';
import { DataError } from '../core/errors.js';
import type { Cell, RawTable } from './table.js';

/** "PAR1", at the start and the end of every Parquet file. */
export const PARQUET_MAGIC = [0x50, 0x41, 0x52, 0x31];

/** Values a table may hold at most before anything is decoded (a Float64Array's reach). */
const MAX_CELLS = 2 ** 31 - 1;

function malformed(source: string, cause: unknown): DataError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new DataError('NEUROCLUSTER_ERR_DATA_FORMAT', `malformed Parquet: ${message}`, {
    cause,
    location: { file: source },
  });
}

function toCell(value: unknown): Cell {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** Whether the file starts and ends with the Parquet magic. */
function hasMagic(bytes: Uint8Array): boolean {
  const n = bytes.length;
  const magic = (at: number) => PARQUET_MAGIC.every((b, i) => bytes[at + i] === b);
  return n >= 12 && magic(0) && magic(n - 4);
}

/**
 * The decoder, run in a worker thread: hyparquet loops forever on some damaged pages (a
 * run-length header of 0 in a level stream never advances), and a loop in this thread would
 * hang the process; a worker that stops answering is terminated. It reads the footer, says the
 * header and row count, then posts the rows of each row group as they are decoded (their cells
 * as hyparquet gives them: structured clone keeps bigint, Date and bytes).
 */
const DECODER = `
const { parentPort, workerData } = require('node:worker_threads');
// Kept alive until the reader has every message and terminates it.
parentPort.on('message', () => {});
(async () => {
  const { parquetMetadata, parquetRead, parquetSchema } = await import(workerData.hyparquet);
  const { compressors } = await import(workerData.compressors);
  const file = workerData.file;
  const metadata = parquetMetadata(file);
  const header = parquetSchema(metadata).children.map((c) => c.element.name);
  const groups = metadata.row_groups.map((g) => Number(g.num_rows));
  parentPort.postMessage({ header, rows: String(metadata.num_rows), groups });
  let rowStart = 0;
  for (const count of groups) {
    const rowEnd = rowStart + count;
    let part = [];
    await parquetRead({ file, metadata, rowStart, rowEnd, compressors, rowFormat: 'array', onComplete: (r) => { part = r; } });
    parentPort.postMessage({ part });
    rowStart = rowEnd;
  }
  parentPort.postMessage({ done: true });
})().catch((e) => parentPort.postMessage({ error: e instanceof Error ? e.message : String(e) }));
`;

/** How long the decoder may go without a word: 5 s, and 20 µs a value of the row group it decodes. */
function stallMs(values: number): number {
  return 5000 + values * 0.02;
}

type DecoderMessage =
  | { header: string[]; rows: string; groups: number[] }
  | { part: unknown[][] }
  | { done: true }
  | { error: string };

/** Parses Parquet bytes into a raw table, one row group at a time, in a worker thread. */
export function readParquet(bytes: Uint8Array, source: string): Promise<RawTable> {
  if (!hasMagic(bytes)) {
    return Promise.reject(
      new DataError('NEUROCLUSTER_ERR_DATA_FORMAT', 'not a Parquet file (no PAR1 magic at both ends)', {
        location: { file: source },
      }),
    );
  }
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const worker = new Worker(DECODER, {
    eval: true,
    workerData: {
      file,
      hyparquet: import.meta.resolve('hyparquet'),
      compressors: import.meta.resolve('hyparquet-compressors'),
    },
    transferList: [file as ArrayBuffer],
  });
  return new Promise<RawTable>((resolve, reject) => {
    let header: string[] = [];
    let groups: number[] = [];
    let total = 0;
    const rows: Cell[][] = [];
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (error: Error | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      if (error) reject(error);
      else resolve({ source, header, rows, rowNumber: (i) => i + 1 });
    };
    /** Waits at most `ms` for the decoder's next word. */
    const expect = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(
        () =>
          finish(
            malformed(
              source,
              new Error(`its decoding stopped making progress for ${Math.round(ms / 1000)} s`),
            ),
          ),
        ms,
      );
    };
    /** The next row group's deadline (0 values when none is left: the end is due). */
    let next = 0;
    const awaitGroup = () => expect(stallMs((groups[next] ?? 0) * Math.max(1, header.length)));
    worker.on('message', (m: DecoderMessage) => {
      if ('error' in m) return finish(malformed(source, new Error(m.error)));
      if ('header' in m) {
        header = m.header;
        groups = m.groups;
        total = Number(m.rows);
        if (!Number.isSafeInteger(total) || total < 0 || total * Math.max(1, header.length) > MAX_CELLS) {
          return finish(
            new DataError(
              'NEUROCLUSTER_ERR_DATA_SHAPE',
              `the file says it holds ${m.rows} rows of ${header.length} columns: more than one fit can hold in memory`,
              { location: { file: source } },
            ),
          );
        }
        return awaitGroup();
      }
      if ('part' in m) {
        for (const row of m.part) rows.push(row.map(toCell));
        next++;
        return awaitGroup();
      }
      if (rows.length !== total) {
        return finish(
          malformed(source, new Error(`the footer says ${total} rows, the row groups hold ${rows.length}`)),
        );
      }
      finish(undefined);
    });
    worker.on('error', (e) => finish(malformed(source, e)));
    worker.on('exit', () => finish(malformed(source, new Error('the decoder stopped'))));
    // The footer: a second for every 10 MB of file, at least 5 s.
    expect(Math.max(5000, bytes.length / 10_000));
  });
}
