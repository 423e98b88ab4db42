import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { npyHeader } from '../../src/bench/workloads.js';
import type { ChunkedFile } from '../../src/data/chunked.js';
import type { Dataset } from '../../src/data/dataset.js';
import { loadDataset } from '../../src/data/load.js';
import { KeySample } from '../../src/data/sample.js';
import { asFloat32, bytesOf, SpillDir } from '../../src/data/spill.js';
import type { TableOptions } from '../../src/data/table.js';
import { openChunked } from '../../src/security/secure-load.js';
import { failure, fileWriter, ROOT, tempDir } from '../helpers.js';

const dir = tempDir();
const IRIS = `${ROOT}/examples/iris.csv`;
const limits = { dataRoots: [], maxFileBytes: 2 ** 30 };
const withTruth: TableOptions = { nanPolicy: 'error', labelColumn: 'species' };

const file = fileWriter(dir);

/** Every chunk of a file joined into one Dataset, and the chunks' starts. */
async function readAll(chunked: ChunkedFile, rows: number, options: TableOptions) {
  const starts: number[] = [];
  const values: number[] = [];
  const truth: string[] = [];
  const ids: string[] = [];
  const dropped: number[] = [];
  let last: Dataset | undefined;
  for await (const { start, data } of chunked.chunks(rows, options)) {
    starts.push(start);
    values.push(...data.values);
    if (data.truth) truth.push(...data.truth);
    if (data.ids) ids.push(...data.ids);
    if (data.droppedRows) dropped.push(...data.droppedRows);
    last = data;
  }
  await chunked.close();
  return { starts, values, truth, ids, dropped, columns: last!.columns, series: last!.series };
}

function irisColumns(): { names: string[]; rows: string[][] } {
  const [head, ...lines] = readFileSync(IRIS, 'utf8').trim().split('\n');
  return { names: head!.split(','), rows: lines.map((l) => l.split(',')) };
}

async function open(path: string): Promise<ChunkedFile> {
  const chunked = await openChunked(path, limits);
  if (!chunked) throw new Error(`${path} is not streamed`);
  return chunked;
}

describe('chunked sources', () => {
  it.each([1, 16, 149, 150, 1_000])('read a CSV in chunks of %i rows as it is read whole', async (rows) => {
    const whole = await loadDataset(IRIS, withTruth);
    const parts = await readAll(await open(IRIS), rows, withTruth);
    expect(parts.values).toEqual(Array.from(whole.values));
    expect(parts.truth).toEqual(whole.truth);
    expect(parts.columns).toEqual(whole.columns);
    expect(parts.starts).toEqual(Array.from({ length: Math.ceil(150 / rows) }, (_, i) => i * rows));
  });

  it('read JSON Lines and NPY by chunks as they are read whole', async () => {
    const lines = ['{"id":"a","x":1,"y":2}', '{"id":"b","x":3,"y":4}', '', '{"id":"c","x":5,"y":6.5}'];
    const jsonl = file('rows.jsonl', `${lines.join('\n')}\n`);
    const options: TableOptions = { nanPolicy: 'error', idColumn: 'id' };
    const parts = await readAll(await open(jsonl), 2, options);
    const whole = await loadDataset(jsonl, options);
    expect(parts.values).toEqual(Array.from(whole.values));
    expect(parts.ids).toEqual(['a', 'b', 'c']);

    const values = Array.from({ length: 7 * 3 }, (_, i) => i / 4);
    const body = new Float32Array(values);
    const npy = file('m.npy', Buffer.concat([npyHeader([7, 3], '<f4'), bytesOf(body)]));
    const chunked = await open(npy);
    expect(chunked).toMatchObject({ format: 'npy', records: 7, bytesPerRecord: 12 });
    const npyParts = await readAll(chunked, 3, { nanPolicy: 'error' });
    expect(npyParts.values).toEqual(values);
    expect(npyParts.starts).toEqual([0, 3, 6]);
  });

  it('read any range alone from the offset and line a pass gave its first chunk, as the whole file has it', async () => {
    // Quoted line breaks, CRLF, a BOM, an empty line, multi-byte text: a range starts on a record, not a line.
    const csv = file(
      'ranges.csv',
      '\uFEFFid,x,y,note\r\na,1,2,"two\r\nlines"\r\nb,3,4,é\r\n\r\nc,5,6,"x,y"\r\nd,7,8,ü\r\ne,9,10,z\r\n',
    );
    const jsonl = file(
      'ranges.jsonl',
      '{"id":"a","x":1}\n{"id":"b","x":2}\n\n{"id":"ç","x":3}\n{"id":"d","x":4}\n',
    );
    const values = Array.from({ length: 5 * 2 }, (_, i) => i / 2);
    const npy = file(
      'ranges.npy',
      Buffer.concat([npyHeader([5, 2], '<f8'), Buffer.from(new Float64Array(values).buffer)]),
    );
    // Row groups of 3 rows: a range of 2 starts inside a group as often as not.
    const parquet = file(
      'ranges.parquet',
      Buffer.from(
        parquetWriteBuffer({
          columnData: [
            { name: 'id', data: ['a', 'b', 'c', 'd', 'e', 'f', 'g'], type: 'STRING' },
            { name: 'x', data: [1, 2, 3, 4, 5, 6, 7], type: 'DOUBLE' },
          ],
          rowGroupSize: 3,
        }),
      ),
    );
    const cases: [string, TableOptions][] = [
      [csv, { nanPolicy: 'error', idColumn: 'id', featureColumns: ['x', 'y'] }],
      [jsonl, { nanPolicy: 'error', idColumn: 'id' }],
      [npy, { nanPolicy: 'error' }],
      [parquet, { nanPolicy: 'error', idColumn: 'id' }],
    ];
    for (const [path, options] of cases) {
      const whole = await open(path);
      const chunks = [];
      for await (const c of whole.chunks(2, options)) chunks.push(c);
      for (const [index, c] of chunks.entries()) {
        const range = { index, start: c.start, records: c.records, offset: c.offset, line: c.line };
        const alone = [];
        for await (const part of whole.chunks(1, options, undefined, undefined, range)) alone.push(part);
        expect(alone.map((p) => p.start)).toEqual(Array.from({ length: c.records }, (_, i) => c.start + i));
        expect(alone.flatMap((p) => Array.from(p.data.values))).toEqual(Array.from(c.data.values));
        expect(alone.flatMap((p) => p.data.ids ?? [])).toEqual(c.data.ids ?? []);
        expect(alone[0]!.offset).toBe(c.offset);
        expect(alone[0]!.line).toBe(c.line);
      }
      await whole.close();
    }
  });

  it('name the line of a bad value in a range read alone as the whole file names it', async () => {
    const csv = file('bad-range.csv', 'x,y\n1,2\n\n3,4\n5,oops\n');
    const chunked = await open(csv);
    const whole = await failure(loadDataset(csv, { nanPolicy: 'error' }));
    // The second range starts past '1,2\n' (an empty line before its first record, '3,4').
    const first = await chunked.chunks(1, { nanPolicy: 'error' }).next();
    const line = (await failure(loadDataset(csv, { nanPolicy: 'error' }))).location!.row! - 1;
    const range = { index: 1, start: 1, records: 2, offset: 8, line };
    expect(first.value!.offset).toBe(4);
    const e = await failure(
      (async () => {
        for await (const _ of chunked.chunks(5, { nanPolicy: 'error' }, undefined, undefined, range)) {
          // read to the bad row
        }
      })(),
    );
    expect(e.location).toEqual(whole.location);
    await chunked.close();
  });

  it('number dropped rows by their place in the file, whatever the chunk', async () => {
    const csv = file('holes.csv', 'a,b\n1,2\n,3\n4,5\n6,\n7,8\n');
    const parts = await readAll(await open(csv), 2, { nanPolicy: 'drop-rows' });
    expect(parts.dropped).toEqual([1, 3]);
    expect(parts.values).toEqual([1, 2, 4, 5, 7, 8]);
  });

  it('hold every chunk to the columns of the first', async () => {
    const jsonl = file('drift.jsonl', '{"x":1,"y":2}\n{"x":3,"y":4}\n{"x":5}\n');
    // A key a later chunk lacks is a missing value there, as when the file is read whole.
    const e = await failure(readAll(await open(jsonl), 2, { nanPolicy: 'error' }));
    const whole = await failure(loadDataset(jsonl, { nanPolicy: 'error' }));
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_VALUE');
    expect(e.location).toMatchObject({ file: jsonl, row: 3, column: 'y' });
    expect(e.location).toEqual(whole.location);
    const dropped = await readAll(await open(jsonl), 2, { nanPolicy: 'drop-rows' });
    expect(dropped.values).toEqual([1, 2, 3, 4]);
    expect(dropped.dropped).toEqual([2]);
    // A column numeric in the first chunk and text further on: the cell is named.
    const csv = file('drift.csv', 'a,b\n1,2\n3,4\n5,x\n');
    const text = await failure(readAll(await open(csv), 2, { nanPolicy: 'error' }));
    expect(text.code).toBe('NEUROCLUSTER_ERR_DATA_VALUE');
    expect(text.location).toMatchObject({ file: csv, row: 4, column: 'b' });
  });

  it.each([
    ['a ragged row', 'a,b\n1,2\n3,4\n5\n', 4, /ragged row: 1 fields where the header has 2/],
    ['an unclosed quote', 'a,b\n1,2\n3,4\n"5,6\n', 4, /unbalanced quotes/],
    [
      'invalid UTF-8',
      Buffer.concat([Buffer.from('a,b\n1,2\n'), Buffer.from([0xff, 0x2c, 0x33, 0x0a])]),
      3,
      /UTF-8/,
    ],
  ])('name the file and line of %s in a later chunk', async (_what, content, row, message) => {
    const path = file(`bad-${row}-${String(message).length}.csv`, content);
    const e = await failure(readAll(await open(path), 1, { nanPolicy: 'error' }));
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_FORMAT');
    expect(e.message).toMatch(message);
    expect(e.location).toMatchObject({ file: path, row });
  });

  it.each([7, 64, 150])(
    'read Parquet with row groups of %i rows, in chunks of 20 rows, as it is read whole',
    async (group) => {
      const { names, rows } = irisColumns();
      const path = file(
        `iris-${group}.parquet`,
        new Uint8Array(
          parquetWriteBuffer({
            columnData: names.map((name, j) =>
              name === 'species'
                ? { name, data: rows.map((r) => r[j]!), type: 'STRING' }
                : { name, data: rows.map((r) => Number(r[j])), type: 'DOUBLE' },
            ),
            rowGroupSize: group,
          }),
        ),
      );
      const chunked = await open(path);
      expect(chunked).toMatchObject({ format: 'parquet', records: 150 });
      const parts = await readAll(chunked, 20, withTruth);
      const whole = await loadDataset(IRIS, withTruth);
      expect(parts.values).toEqual(Array.from(whole.values));
      expect(parts.truth).toEqual(whole.truth);
      expect(parts.starts).toEqual(Array.from({ length: 8 }, (_, i) => i * 20));
    },
  );

  it('name the row of a bad Parquet cell in a later row group', async () => {
    const path = file(
      'bad.parquet',
      new Uint8Array(
        parquetWriteBuffer({
          columnData: [
            { name: 'a', data: [1, 2, 3, 4, 5], type: 'DOUBLE' },
            { name: 'b', data: [1, 2, 3, null, 5], type: 'DOUBLE' },
          ],
          rowGroupSize: 2,
        }),
      ),
    );
    const e = await failure(readAll(await open(path), 1, { nanPolicy: 'error' }));
    const whole = await failure(loadDataset(path, { nanPolicy: 'error' }));
    expect(e.location).toMatchObject({ file: path, row: 4, column: 'b' });
    expect(e.location).toEqual(whole.location);
  });

  it('sniff the delimiter from whole lines, however long', async () => {
    const width = 1_500;
    const header = Array.from({ length: width }, (_, j) => `c${j}`).join(';');
    const rows = Array.from({ length: 30 }, (_, i) =>
      Array.from({ length: width }, (_, j) => `${i + j}`).join(';'),
    );
    const path = file('wide.csv', `${header}\n${rows.join('\n')}\n`);
    const whole = await loadDataset(path, { nanPolicy: 'error' });
    const parts = await readAll(await open(path), 7, { nanPolicy: 'error' });
    expect(whole.width).toBe(width);
    expect(parts.values).toEqual(Array.from(whole.values));
  });

  it('refuse an NPY file too short for its header, with a data error', async () => {
    const e = await failure(
      open(file('tiny.npy', new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]))),
    );
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_FORMAT');
    expect(e.message).toMatch(/truncated NPY header/);
  });

  it('leave JSON arrays and encrypted files to be read whole', async () => {
    expect(await openChunked(file('rows.json', '[[1,2],[3,4]]'), limits)).toBeUndefined();
    expect(
      await openChunked(
        file(
          'sealed.csv',
          Buffer.concat([Buffer.from('NCENC\0\0\x01', 'latin1'), Buffer.from('a,b\n1,2\n')]),
        ),
        limits,
      ),
    ).toBeUndefined();
  });
});

describe('KeySample', () => {
  const rows = Array.from({ length: 500 }, (_, i) => ({
    key: (i * 2_654_435_761) >>> 0,
    index: i,
    values: Float64Array.of(i % 7, i),
  }));

  it('keeps the rows of smallest key, however the stream is split and merged', () => {
    const whole = new KeySample(40);
    for (const r of rows) whole.add(r);
    const parts = [rows.slice(0, 123), rows.slice(123, 124), rows.slice(124, 400), rows.slice(400)].map(
      (part) => {
        const s = new KeySample(40);
        for (const r of part) s.add(r);
        return s;
      },
    );
    const leftFirst = new KeySample(40)
      .merge(parts[0]!)
      .merge(parts[1]!)
      .merge(new KeySample(40).merge(parts[2]!).merge(parts[3]!));
    const reversed = new KeySample(40).merge(parts[3]!).merge(parts[2]!).merge(parts[1]!).merge(parts[0]!);
    const expected = [...rows]
      .sort((a, b) => a.key - b.key)
      .slice(0, 40)
      .map((r) => r.index);
    for (const s of [whole, leftFirst, reversed]) expect(s.sorted().map((r) => r.index)).toEqual(expected);
  });

  it('breaks ties of key by content, then by index', () => {
    const s = new KeySample(3);
    s.add({ key: 5, index: 2, values: Float64Array.of(1) });
    s.add({ key: 5, index: 1, values: Float64Array.of(1) });
    s.add({ key: 5, index: 0, values: Float64Array.of(2) });
    s.add({ key: 9, index: 3, values: Float64Array.of(0) });
    expect(s.sorted().map((r) => r.index)).toEqual([1, 2, 0]);
  });
});

describe('SpillDir', () => {
  it('writes owner-only rows, reads them back in chunks and by range, and removes everything', async () => {
    const spill = new SpillDir();
    const f = await spill.file('x.f32', 8);
    await f.append(bytesOf(Float32Array.of(1, 2, 3, 4)));
    await f.append(bytesOf(Float32Array.of(5, 6)));
    const { statSync, existsSync } = await import('node:fs');
    const dir = dirname(f.path);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(f.path).mode & 0o777).toBe(0o600);
    const chunks: number[][] = [];
    for await (const { start, bytes } of f.chunks(2)) chunks.push([start, ...asFloat32(bytes)]);
    expect(chunks).toEqual([
      [0, 1, 2, 3, 4],
      [2, 5, 6],
    ]);
    expect(Array.from(asFloat32(await f.read(1, 2)))).toEqual([3, 4, 5, 6]);
    await expect(f.read(2, 2)).rejects.toThrow(RangeError);
    await expect(f.append(new Uint8Array(3))).rejects.toThrow(/partial row/);
    await spill.remove();
    await spill.remove();
    expect(existsSync(dir)).toBe(false);
    await expect(spill.file('y.f32', 8)).rejects.toThrow(/is removed/);
  });

  it('makes no directory until its first file: a fit that keeps nothing leaves nothing', async () => {
    const { readdirSync } = await import('node:fs');
    const saved = process.env.TMPDIR;
    const tmp = tempDir();
    process.env.TMPDIR = tmp;
    try {
      const spill = new SpillDir();
      await spill.remove();
      expect(readdirSync(tmp)).toEqual([]);
      const used = new SpillDir();
      await used.file('x.f32', 4);
      expect(readdirSync(tmp)).toHaveLength(1);
      await used.remove();
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });
});
