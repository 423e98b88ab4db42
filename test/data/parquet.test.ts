/**
 * Parquet and JSON Lines input: the same table in these formats gives the Dataset the CSV reader
 * gives (column rules, ids, ground truth, row numbers in errors), whatever the row groups and the
 * page compression; a damaged file is a data error, never a crash.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { type ColumnSource, parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../../src/data/load.js';
import type { TableOptions } from '../../src/data/table.js';
import { failure, fileWriter, ROOT, runCli, tempDir } from '../helpers.js';

const dir = tempDir();
const base: TableOptions = { nanPolicy: 'error' };

const file = fileWriter(dir);

/** iris.csv as columns: four doubles and the species. */
function irisColumns(): { names: string[]; rows: string[][] } {
  const [head, ...lines] = readFileSync(join(ROOT, 'examples/iris.csv'), 'utf8').trim().split('\n');
  return { names: head!.split(','), rows: lines.map((l) => l.split(',')) };
}

function irisParquet(options: {
  rowGroupSize?: number;
  codec?: 'GZIP' | 'BROTLI' | 'SNAPPY' | 'UNCOMPRESSED';
}) {
  const { names, rows } = irisColumns();
  const columnData: ColumnSource[] = names.map((name, j) =>
    name === 'species'
      ? { name, data: rows.map((r) => r[j]!), type: 'STRING' }
      : { name, data: rows.map((r) => Number(r[j])), type: 'DOUBLE' },
  );
  return parquetWriteBuffer({
    columnData,
    ...(options.rowGroupSize ? { rowGroupSize: options.rowGroupSize } : {}),
    codec: options.codec ?? 'SNAPPY',
    compressors: { GZIP: (b) => gzipSync(b), BROTLI: (b) => brotliCompressSync(b) },
  });
}

describe('Parquet input', () => {
  const csv = loadDataset(join(ROOT, 'examples/iris.csv'), { ...base, labelColumn: 'species' });

  it.for([
    ['one row group, snappy', {}],
    ['row groups of 7 rows, gzip', { rowGroupSize: 7, codec: 'GZIP' }],
    ['row groups of 64 rows, brotli', { rowGroupSize: 64, codec: 'BROTLI' }],
    ['uncompressed', { codec: 'UNCOMPRESSED' }],
  ] as const)('reads iris as the CSV reader does (%s)', async ([name, options]) => {
    const path = file(`iris-${name.replace(/\W+/g, '-')}.parquet`, irisParquet(options));
    const ds = await loadDataset(path, { ...base, labelColumn: 'species' });
    const expected = await csv;
    expect(ds.n).toBe(150);
    expect(ds.columns).toEqual(expected.columns);
    expect(Array.from(ds.values)).toEqual(Array.from(expected.values));
    expect(ds.truth).toEqual(expected.truth);
  });

  it('is recognised by its magic bytes under any name', async () => {
    const ds = await loadDataset(file('iris.data', irisParquet({})), base);
    expect(ds.n).toBe(150);
    expect(ds.columns).toEqual(['sepal_length', 'sepal_width', 'petal_length', 'petal_width']);
  });

  it('keeps INT64 ids exact, reads INT32 and nulls, and leaves out a boolean column with a warning', async () => {
    const big = [9007199254740993n, 9007199254740995n, 3n];
    const path = file(
      'mixed.parquet',
      parquetWriteBuffer({
        columnData: [
          { name: 'id', data: big, type: 'INT64' },
          { name: 'a', data: Int32Array.from([1, 2, 3]), type: 'INT32' },
          { name: 'b', data: [0.5, null, 2.5], type: 'DOUBLE', nullable: true },
          { name: 'flag', data: [true, false, true], type: 'BOOLEAN' },
        ],
      }),
    );
    const warned: string[] = [];
    const ds = await loadDataset(
      path,
      { nanPolicy: 'drop-rows', idColumn: 'id' },
      { warn: (_o, m) => warned.push(m) },
    );
    expect(ds.columns).toEqual(['a', 'b']);
    expect(ds.ids).toEqual(['9007199254740993', '3']);
    expect(Array.from(ds.values)).toEqual([1, 0.5, 3, 2.5]);
    expect(ds.droppedRows).toEqual([1]);
    expect(warned.some((m) => m.includes('non-numeric columns ignored: flag'))).toBe(true);
  });

  it('names the row and column of a missing value and of a text cell in a numeric column', async () => {
    const nulls = file(
      'nulls.parquet',
      parquetWriteBuffer({
        columnData: [{ name: 'x', data: [1, 2, null, 4], type: 'DOUBLE', nullable: true }],
      }),
    );
    const e = await failure(loadDataset(nulls, base));
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_VALUE');
    expect(e.location).toEqual({ file: nulls, row: 3, column: 'x' });
    const text = file(
      'text.parquet',
      parquetWriteBuffer({ columnData: [{ name: 'x', data: ['1', '2', 'oops', '4'], type: 'STRING' }] }),
    );
    const t = await failure(loadDataset(text, base));
    expect(t.code).toBe('NEUROCLUSTER_ERR_DATA_VALUE');
    expect(t.message).toContain('"oops"');
    expect(t.location).toEqual({ file: text, row: 3, column: 'x' });
  });

  it('refuses a truncated or damaged file as a data format error', async () => {
    const good = new Uint8Array(irisParquet({ rowGroupSize: 50 }));
    const truncated = file('truncated.parquet', good.subarray(0, good.length - 100));
    expect((await failure(loadDataset(truncated, base))).code).toBe('NEUROCLUSTER_ERR_DATA_FORMAT');
    const damaged = good.slice();
    // Bytes inside the footer's length field and the column chunks.
    damaged.fill(0xff, 100, 140);
    damaged.fill(0x7f, good.length - 8, good.length - 4);
    const e = await failure(loadDataset(file('damaged.parquet', damaged), base));
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_FORMAT');
    expect((await failure(loadDataset(file('empty.parquet', new Uint8Array()), base))).code).toBe(
      'NEUROCLUSTER_ERR_DATA_FORMAT',
    );
  });

  it('stops a decoder that never finishes, as a data format error, within seconds', async () => {
    // A run-length header of 0 in a definition-level stream: hyparquet 1.33 loops on it forever.
    const good = new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'a', data: Array.from({ length: 50 }, (_, i) => i * 0.5), type: 'DOUBLE' },
          { name: 'b', data: Array.from({ length: 50 }, (_, i) => BigInt(i)), type: 'INT64' },
          {
            name: 'c',
            data: Array.from({ length: 50 }, (_, i) => (i % 3 ? null : i)),
            type: 'DOUBLE',
            nullable: true,
          },
          { name: 'label', data: Array.from({ length: 50 }, (_, i) => `x${i % 4}`), type: 'STRING' },
        ],
        rowGroupSize: 13,
      }),
    );
    const looping = good.slice();
    looping[684] = 0;
    looping[200] = 0;
    const t0 = performance.now();
    const e = await failure(loadDataset(file('looping.parquet', looping), { ...base, labelColumn: 'label' }));
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_FORMAT');
    expect(e.message).toMatch(/stopped making progress/);
    expect(performance.now() - t0).toBeLessThan(15_000);
    // The same file undamaged reads, so the damage is what stopped it.
    const intact = file('not-looping.parquet', good);
    expect((await loadDataset(intact, { labelColumn: 'label', nanPolicy: 'impute-mean' })).n).toBe(50);
  });

  it('clusters iris from Parquet with the labels the CLI gives the CSV', () => {
    const path = file('iris-cli.parquet', irisParquet({ rowGroupSize: 40 }));
    const args = ['--k', '3', '--label-column', 'species', '--method', 'kmeans', '--json'];
    const fromParquet = runCli(['cluster', path, ...args], { home: join(dir, 'home') });
    const fromCsv = runCli(['cluster', join(ROOT, 'examples/iris.csv'), ...args], {
      home: join(dir, 'home'),
    });
    expect(fromParquet.code, fromParquet.stderr).toBe(0);
    const a = JSON.parse(fromParquet.stdout);
    const b = JSON.parse(fromCsv.stdout);
    expect(a.labels).toEqual(b.labels);
    expect(a.external.ari).toBe(b.external.ari);
  });
});

describe('JSON Lines input', () => {
  it('reads rows of objects or arrays as a JSON array of them, skipping blank lines', async () => {
    const objects = '{"a":1,"b":2,"label":"x"}\n\n{"a":3,"b":4,"label":"y"}\n{"a":5,"b":6.5,"label":"x"}\n';
    const fromLines = await loadDataset(file('rows.jsonl', objects), { ...base, labelColumn: 'label' });
    const fromArray = await loadDataset(
      file('rows.json', `[${objects.trim().split('\n').filter(Boolean).join(',')}]`),
      { ...base, labelColumn: 'label' },
    );
    expect(fromLines.columns).toEqual(['a', 'b']);
    expect(Array.from(fromLines.values)).toEqual(Array.from(fromArray.values));
    expect(fromLines.truth).toEqual(['x', 'y', 'x']);
    const arrays = await loadDataset(file('rows.ndjson', '[1,2]\n[3,4]\n'), base);
    expect(arrays.columns).toEqual(['x0', 'x1']);
    expect(Array.from(arrays.values)).toEqual([1, 2, 3, 4]);
    // Sniffed from its first character under another name.
    expect((await loadDataset(file('rows.data', objects), { ...base, labelColumn: 'label' })).n).toBe(3);
  });

  it('names the line of a malformed row and of a missing value', async () => {
    const bad = file('bad.jsonl', '{"a":1}\n\n{"a":2\n');
    const e = await failure(loadDataset(bad, base));
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_FORMAT');
    expect(e.location).toEqual({ file: bad, row: 3 });
    const missing = file('missing.jsonl', '{"a":1,"b":1}\n\n{"a":2}\n');
    const m = await failure(loadDataset(missing, base));
    expect(m.code).toBe('NEUROCLUSTER_ERR_DATA_VALUE');
    expect(m.location).toEqual({ file: missing, row: 3, column: 'b' });
  });
});
