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
 * hang the process; a worker that stops answering is terminated. It reads the footer and says the
 * header, the row count and the row groups, then decodes the rows of one row group each time it
 * is asked (so no more than one waits in memory), and posts its rows (their cells as hyparquet gives
 * them: structured clone keeps bigint, Date and bytes). It reads the bytes it was handed, or the
 * file by byte ranges from a descriptor this process opened (threads share descriptors).
 */
const DECODER = `
const { parentPort, workerData } = require('node:worker_threads');
const { readSync } = require('node:fs');
const fail = (e) => parentPort.postMessage({ error: e instanceof Error ? e.message : String(e) });
(async () => {
  const { parquetMetadataAsync, parquetRead, parquetSchema } = await import(workerData.hyparquet);
  const { compressors } = await import(workerData.compressors);
  const { fd, size } = workerData;
  const file = workerData.file ?? {
    byteLength: size,
    slice(start, end = size) {
      const out = new Uint8Array(end - start);
      for (let at = 0; at < out.length; ) {
        const n = readSync(fd, out, at, out.length - at, start + at);
        if (n === 0) throw new Error('the file was truncated while it was read');
        at += n;
      }
      return out.buffer;
    },
  };
  const metadata = await parquetMetadataAsync(file);
  const header = parquetSchema(metadata).children.map((c) => c.element.name);
  const groups = metadata.row_groups.map((g) => Number(g.num_rows));
  parentPort.on('message', ({ rowStart, rowEnd }) => {
    let part = [];
    parquetRead({ file, metadata, rowStart, rowEnd, compressors, rowFormat: 'array', onComplete: (r) => { part = r; } })
      .then(() => parentPort.postMessage({ part }))
      .catch(fail);
  });
  parentPort.postMessage({ header, rows: String(metadata.num_rows), groups });
})().catch(fail);
`;

/** How long the decoder may go without a word: 5 s, and 20 µs a value of the row group it decodes. */
function stallMs(values: number): number {
  return 5000 + values * 0.02;
}

type DecoderMessage =
  | { header: string[]; rows: string; groups: number[] }
  | { part: unknown[][] }
  | { error: string };

/** The decoder's messages, one at a time, each awaited no longer than its deadline. */
class Inbox {
  private readonly queue: DecoderMessage[] = [];
  private waiter: ((m: DecoderMessage | Error) => void) | undefined;
  private failure: Error | undefined;

  constructor(
    worker: Worker,
    private readonly source: string,
  ) {
    worker.on('message', (m: DecoderMessage) => this.put(m));
    worker.on('error', (e) => this.fail(malformed(source, e)));
    worker.on('exit', () => this.fail(malformed(source, new Error('the decoder stopped'))));
  }

  private put(m: DecoderMessage): void {
    if (this.waiter) this.waiter(m);
    else this.queue.push(m);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.waiter?.(e);
  }

  /** The next message; a malformed-file error when the decoder failed, stopped or went quiet for `ms`. */
  async next(ms: number): Promise<Exclude<DecoderMessage, { error: string }>> {
    const queued = this.queue.shift();
    const m =
      queued ??
      (this.failure ||
        (await new Promise<DecoderMessage | Error>((resolve) => {
          const timer = setTimeout(
            () =>
              resolve(
                malformed(
                  this.source,
                  new Error(`its decoding stopped making progress for ${Math.round(ms / 1000)} s`),
                ),
              ),
            ms,
          );
          this.waiter = (v) => {
            clearTimeout(timer);
            this.waiter = undefined;
            resolve(v);
          };
        })));
    if (m instanceof Error) throw m;
    if ('error' in m) throw malformed(this.source, new Error(m.error));
    return m;
  }
}

/** What is decoded: the bytes of a file, or a file by byte ranges from its descriptor. */
export type ParquetInput = { readonly bytes: Uint8Array } | { readonly fd: number; readonly size: number };

/** A Parquet file's header and row count (from its footer), then its row groups' rows, decoded in a worker. */
export interface ParquetGroups {
  readonly header: readonly string[];
  readonly rows: number;
  /** The rows of each row group in turn, from row `from` on (0: all of them). */
  groups(from?: number): AsyncGenerator<Cell[][]>;
  close(): Promise<void>;
}

/**
 * Starts a decoder on `input` and reads its footer. The caller pulls the row groups (each decoded
 * when asked) and closes it; a decoder that fails, stops or stalls is a malformed-file error.
 */
export async function openParquet(input: ParquetInput, source: string): Promise<ParquetGroups> {
  const size = 'bytes' in input ? input.bytes.length : input.size;
  let data: object;
  const transferList: ArrayBuffer[] = [];
  if ('bytes' in input) {
    const { bytes } = input;
    if (!hasMagic(bytes)) {
      throw new DataError('NEUROCLUSTER_ERR_DATA_FORMAT', 'not a Parquet file (no PAR1 magic at both ends)', {
        location: { file: source },
      });
    }
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    transferList.push(file);
    data = { file };
  } else {
    data = { fd: input.fd, size: input.size };
  }
  const worker = new Worker(DECODER, {
    eval: true,
    workerData: {
      ...data,
      hyparquet: import.meta.resolve('hyparquet'),
      compressors: import.meta.resolve('hyparquet-compressors'),
    },
    transferList,
  });
  const close = async () => {
    worker.removeAllListeners('exit');
    await worker.terminate();
  };
  try {
    const inbox = new Inbox(worker, source);
    // The footer: a second for every 10 MB of file, at least 5 s.
    const head = await inbox.next(Math.max(5000, size / 10_000));
    if (!('header' in head)) throw malformed(source, new Error('the decoder did not read the footer'));
    const { header, groups } = head;
    const rows = Number(head.rows);
    if (!Number.isSafeInteger(rows) || rows < 0) {
      throw malformed(source, new Error(`the footer says it holds ${head.rows} rows`));
    }
    return {
      header,
      rows,
      async *groups(from = 0) {
        let seen = 0;
        let groupStart = 0;
        for (const count of groups) {
          const rowStart = Math.max(groupStart, from);
          const rowEnd = groupStart + count;
          groupStart = rowEnd;
          // A group wholly before `from` is not decoded; the one it falls in, from it on.
          if (rowEnd <= rowStart) continue;
          worker.postMessage({ rowStart, rowEnd });
          const m = await inbox.next(stallMs(count * Math.max(1, header.length)));
          if (!('part' in m)) throw malformed(source, new Error('the decoder sent no rows'));
          if (m.part.length !== rowEnd - rowStart)
            throw malformed(
              source,
              new Error(`rows ${rowStart} to ${rowEnd} of its row group decoded to ${m.part.length} rows`),
            );
          seen += m.part.length;
          yield m.part.map((row) => row.map(toCell));
        }
        if (seen !== Math.max(0, rows - from)) {
          throw malformed(
            source,
            new Error(`the footer says ${rows} rows, the row groups hold ${groupStart}`),
          );
        }
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Parses Parquet bytes into a raw table, one row group at a time, in a worker thread. */
export async function readParquet(bytes: Uint8Array, source: string): Promise<RawTable> {
  const parquet = await openParquet({ bytes }, source);
  try {
    if (parquet.rows * Math.max(1, parquet.header.length) > MAX_CELLS) {
      throw new DataError(
        'NEUROCLUSTER_ERR_DATA_SHAPE',
        `the file says it holds ${parquet.rows} rows of ${parquet.header.length} columns: more than one fit can hold in memory`,
        { location: { file: source } },
      );
    }
    const rows: Cell[][] = [];
    for await (const part of parquet.groups()) for (const row of part) rows.push(row);
    return { source, header: [...parquet.header], rows, rowNumber: (i) => i + 1 };
  } finally {
    await parquet.close();
  }
}
