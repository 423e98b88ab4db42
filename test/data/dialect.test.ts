/** Delimited text as people have it: the delimiter sniffed, decimal commas, no header, warnings that help. */
import { describe, expect, it } from 'vitest';
import type { ChunkedFile } from '../../src/data/chunked.js';
import { sniffDelimiter } from '../../src/data/csv.js';
import { loadDataset } from '../../src/data/load.js';
import { parseCell, type TableOptions } from '../../src/data/table.js';
import { openChunked } from '../../src/security/secure-load.js';
import { failure, fileWriter, tempDir } from '../helpers.js';

const dir = tempDir();
const base: TableOptions = { nanPolicy: 'error' };

const file = fileWriter(dir);

/** Warnings a read gives, as their messages. */
function collector() {
  const messages: string[] = [];
  return { messages, warn: (_obj: object, msg: string) => void messages.push(msg) };
}

/** The values of a file read in chunks of `rows`. */
async function chunked(path: string, rows: number, options: TableOptions): Promise<number[]> {
  const f = (await openChunked(path, { dataRoots: [], maxFileBytes: 2 ** 30 })) as ChunkedFile;
  const values: number[] = [];
  for await (const { data } of f.chunks(rows, options)) values.push(...data.values);
  await f.close();
  return values;
}

describe('the delimiter', () => {
  it.each([
    ['commas', 'a,b,c\n1,2,3\n4,5,6\n', ','],
    ['semicolons', 'a;b;c\n1,5;2;3\n4;5,5;6\n', ';'],
    ['tabs', 'a\tb\n1\t2\n3\t4\n', '\t'],
    ['pipes', 'a|b\n1|2\n3|4\n', '|'],
    ['one column', 'a\n1\n2\n', ','],
  ])('is sniffed from the first lines: %s', (_what, text, expected) => {
    expect(sniffDelimiter(text, 'x.csv')).toBe(expected);
  });

  it('is a tab for .tsv, and what is given wins', () => {
    expect(sniffDelimiter('a,b\n1,2\n', 'x.tsv')).toBe('\t');
    expect(sniffDelimiter('a,b\n1,2\n', 'x.csv', ';')).toBe(';');
    expect(sniffDelimiter('a,b\n1,2\n', 'x.csv', 'tab')).toBe('\t');
  });

  it('reads a semicolon file with decimal commas, whole and in chunks, as its numbers', async () => {
    const path = file('eu.csv', 'a;b;c\n1,5;2,25;3\n4,5;1.200,5;6\n7;8,5;9,75\n');
    const ds = await loadDataset(path, base);
    expect(ds.columns).toEqual(['a', 'b', 'c']);
    expect(Array.from(ds.values)).toEqual([1.5, 2.25, 3, 4.5, 1200.5, 6, 7, 8.5, 9.75]);
    expect(await chunked(path, 2, base)).toEqual(Array.from(ds.values));
  });

  it('reads a tab file and a pipe file', async () => {
    const tsv = await loadDataset(file('t.tsv', 'a\tb\n1\t2\n3\t4\n'), base);
    const pipes = await loadDataset(file('p.csv', 'a|b\n1|2\n3|4\n'), base);
    expect(Array.from(tsv.values)).toEqual([1, 2, 3, 4]);
    expect(Array.from(pipes.values)).toEqual([1, 2, 3, 4]);
  });
});

describe('the decimal mark', () => {
  it('reads thousands grouped by the other mark, and refuses what is ambiguous', () => {
    expect(parseCell('1,200')).toBe(1200);
    expect(parseCell('-12,345.5')).toBe(-12345.5);
    expect(parseCell('1,5')).toBeUndefined();
    expect(parseCell('1,5', ',')).toBe(1.5);
    expect(parseCell('1.200,5', ',')).toBe(1200.5);
    expect(parseCell('1.5', ',')).toBeUndefined();
    expect(parseCell('12', ',')).toBe(12);
  });

  it('is given with decimal, and the error hints at it when the numbers look like decimal commas', async () => {
    const path = file('eu2.csv', 'x;y\n1,5;2,5\n3,5;4,5\n');
    const e = await failure(loadDataset(path, { ...base, decimal: '.' }));
    expect(e.message).toBe(
      'no numeric feature columns (the numbers look like decimal commas: give --decimal ,)',
    );
    const commas = await loadDataset(file('commas.csv', 'x,y\n"1,5","2,5"\n"3,5","4,5"\n'), {
      ...base,
      decimal: ',',
    });
    expect(Array.from(commas.values)).toEqual([1.5, 2.5, 3.5, 4.5]);
  });

  it('names the cell that does not read under the mark', async () => {
    const path = file('mixed.csv', 'x;y\n1,5;2,5\n3.5;4,5\n5,5;6,5\n');
    const e = await failure(loadDataset(path, base));
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_VALUE');
    expect(e.location).toMatchObject({ file: path, row: 3, column: 'x' });
  });
});

describe('the header', () => {
  it('can be absent: numbered columns and data from the first row, whole and in chunks', async () => {
    const path = file('nohead.csv', '1,2\n3,4\n5,6\n');
    const ds = await loadDataset(path, { ...base, header: false });
    expect(ds.columns).toEqual(['column1', 'column2']);
    expect(Array.from(ds.values)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await chunked(path, 2, { ...base, header: false })).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('warns when it looks like data', async () => {
    const warnings = collector();
    await loadDataset(file('data-head.csv', '1,2\n3,4\n5,6\n'), base, warnings);
    expect(warnings.messages).toEqual([
      'the header row (1, 2) looks like data: if the file has no header, give --no-header (data.header: false), or its first row is lost',
    ]);
  });

  it('says when a column named like the ground truth is clustered as a feature', async () => {
    const path = file('truth.csv', 'x,label\n1,0\n2,0\n8,1\n');
    const warnings = collector();
    await loadDataset(path, base, warnings);
    expect(warnings.messages).toEqual([
      'column "label" is clustered as a feature; if it is the ground truth, give --label-column "label"',
    ]);
    const named = collector();
    await loadDataset(path, { ...base, labelColumn: 'label' }, named);
    expect(named.messages).toEqual([]);
  });
});
