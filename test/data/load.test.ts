import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyScaler, fitScaler } from '../../src/data/clean.js';
import { datasetFromRows, loadDataset } from '../../src/data/load.js';
import type { TableOptions } from '../../src/data/table.js';
import { failure, fileWriter, npy, ROOT, sklearn, tempDir } from '../helpers.js';

const dir = tempDir();
const base: TableOptions = { nanPolicy: 'error' };

const file = fileWriter(dir);

describe('CSV input', () => {
  it('reads iris: numeric columns are features, the label column kept apart', async () => {
    const ds = await loadDataset(`${ROOT}/examples/iris.csv`, { ...base, labelColumn: 'species' });
    expect(ds.n).toBe(150);
    expect(ds.columns).toEqual(['sepal_length', 'sepal_width', 'petal_length', 'petal_width']);
    expect(ds.truth?.slice(0, 2)).toEqual(['setosa', 'setosa']);
    expect(Array.from(ds.values.subarray(0, 4))).toEqual([5.1, 3.5, 1.4, 0.2]);
  });

  it('carries the id column through and ignores other text columns with a warning', async () => {
    const warnings: string[] = [];
    const ds = await loadDataset(
      file('ids.csv', 'id,name,a,b\nx1,Ann,1,2\nx2,Bob,3,4\n'),
      { ...base, idColumn: 'id' },
      { warn: (_o, msg) => warnings.push(msg) },
    );
    expect(ds.ids).toEqual(['x1', 'x2']);
    expect(ds.columns).toEqual(['a', 'b']);
    expect(warnings.join()).toMatch(/non-numeric columns ignored: name/);
  });

  it.each([
    ['empty file', '', 'NEUROCLUSTER_ERR_DATA_FORMAT', /empty/],
    ['header only', 'a,b\n', 'NEUROCLUSTER_ERR_DATA_FORMAT', /no data rows/],
    [
      'ragged rows',
      'a,b\n1,2\n3\n',
      'NEUROCLUSTER_ERR_DATA_FORMAT',
      /ragged row: 1 fields where the header has 2/,
    ],
    ['unbalanced quotes', 'a,b\n1,"2\n3,4\n', 'NEUROCLUSTER_ERR_DATA_FORMAT', /quote/],
    ['duplicate header', 'a,a\n1,2\n', 'NEUROCLUSTER_ERR_DATA_FORMAT', /duplicate column/],
  ])('%s is a clear error', async (_t, content, code, message) => {
    const e = await failure(loadDataset(file('bad.csv', content), base));
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
    expect(e.exitCode).toBe(2);
  });

  it('names the line of a ragged row', async () => {
    const e = await failure(loadDataset(file('ragged.csv', 'a,b\n1,2\n3,4\n5\n'), base));
    expect(e.location).toMatchObject({ row: 4 });
  });

  it('refuses binary data and non-UTF-8 bytes', async () => {
    const binary = await failure(
      loadDataset(file('bin.csv', new Uint8Array([97, 44, 98, 10, 0, 1, 2])), base),
    );
    expect(binary.code).toBe('NEUROCLUSTER_ERR_DATA_FORMAT');
    expect(binary.message).toMatch(/binary/);
    const latin1 = await failure(
      loadDataset(file('latin1.csv', new Uint8Array([97, 10, 49, 10, 0xe9, 10])), base),
    );
    expect(latin1.message).toMatch(/UTF-8/);
    expect(latin1.location).toMatchObject({ row: 3 });
  });

  it('names the row and column of a non-numeric cell, escaped and cut to 40 characters', async () => {
    const long = `=cmd|${'x'.repeat(80)}\u001b[31m`;
    const e = await failure(loadDataset(file('text.csv', `a,b\n1,2\n3,4\n5,"${long}"\n6,7\n`), base));
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_VALUE');
    expect(e.location).toEqual({ file: join(dir, 'text.csv'), row: 4, column: 'b' });
    const quoted = /"([^"]*)"/.exec(e.message)![1]!;
    expect(quoted.length).toBeLessThanOrEqual(40);
    expect(e.message).not.toContain('\u001b');
  });

  it('reads numbers strictly: "0x10" and "1e" are not numbers', async () => {
    for (const cell of ['0x10', '1e', '1,5']) {
      const e = await failure(loadDataset(file('strict.csv', `a\n1\n2\n"${cell}"\n`), base));
      expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_VALUE');
    }
  });

  it('refuses a label column that does not exist, listing the columns', async () => {
    const e = await failure(loadDataset(`${ROOT}/examples/iris.csv`, { ...base, labelColumn: 'class' }));
    expect(e.code).toBe('NEUROCLUSTER_ERR_INVALID_ARGUMENT');
    expect(e.message).toMatch(/"class" is not a column.*species/);
  });

  it('reports a missing file as DATA_READ', async () => {
    const e = await failure(loadDataset(join(dir, 'nope.csv'), base));
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_READ');
  });
});

describe('NaN and Inf policy', () => {
  const content = 'a,b\n1,2\nNaN,4\n5,inf\n7,\n9,10\n';

  it('error (default) names the first non-finite cell', async () => {
    const e = await failure(loadDataset(file('nan.csv', content), base));
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_VALUE');
    expect(e.location).toMatchObject({ row: 3, column: 'a' });
  });

  it('drop-rows removes those rows and reports which', async () => {
    const ds = await loadDataset(file('nan.csv', content), { nanPolicy: 'drop-rows' });
    expect(ds.n).toBe(2);
    expect(Array.from(ds.values)).toEqual([1, 2, 9, 10]);
    expect(ds.droppedRows).toEqual([1, 2, 3]);
  });

  it('impute-mean replaces them by the column mean of finite values', async () => {
    const ds = await loadDataset(file('nan.csv', content), { nanPolicy: 'impute-mean' });
    expect(ds.n).toBe(5);
    expect(ds.values[2]).toBeCloseTo((1 + 5 + 7 + 9) / 4, 12);
    expect(ds.values[5]).toBeCloseTo((2 + 4 + 10) / 3, 12);
  });
});

describe('time series input', () => {
  it('detects a univariate wide header t0..t{T-1}', async () => {
    const ds = await loadDataset(file('uni.csv', 'label,t0,t1,t2\n0,1,2,3\n1,3,2,1\n'), {
      ...base,
      labelColumn: 'label',
    });
    expect(ds.series).toEqual({ length: 3, dims: 1 });
    expect(ds.truth).toEqual(['0', '1']);
  });

  it('lays out a multivariate d{j}_t{i} header time-major, whatever the column order', async () => {
    const ds = await loadDataset(file('multi.csv', 'd1_t0,d0_t0,d0_t1,d1_t1\n10,0,1,11\n'), base);
    expect(ds.series).toEqual({ length: 2, dims: 2 });
    expect(Array.from(ds.values)).toEqual([0, 10, 1, 11]);
  });

  it('takes --series-length for other headers and refuses one that does not divide the columns', async () => {
    const path = file('plain.csv', 'a,b,c,d,e,f\n1,2,3,4,5,6\n');
    expect((await loadDataset(path, { ...base, seriesLength: 3 })).series).toEqual({ length: 3, dims: 2 });
    const e = await failure(loadDataset(path, { ...base, seriesLength: 4 }));
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_SHAPE');
    expect(e.message).toMatch(/does not divide/);
  });

  it('z-normalizes each series (each dimension) on its own', async () => {
    const ds = await loadDataset(file('z.csv', 't0,t1,t2,t3\n1,2,3,4\n5,5,5,5\n'), base);
    const z = applyScaler(ds, fitScaler(ds, true));
    const first = Array.from(z.subarray(0, 4));
    expect(first.reduce((s, v) => s + v, 0)).toBeCloseTo(0, 12);
    expect(first.reduce((s, v) => s + v * v, 0) / 4).toBeCloseTo(1, 12);
    expect(Array.from(z.subarray(4))).toEqual([0, 0, 0, 0]);
  });
});

describe('JSON input', () => {
  it('reads an array of rows and an array of objects', async () => {
    const rows = await loadDataset(file('rows.json', '[[1,2],[3,4]]'), base);
    expect(Array.from(rows.values)).toEqual([1, 2, 3, 4]);
    const objects = await loadDataset(
      file('objs.json', '[{"id":"a","x":1,"y":2},{"id":"b","x":3,"y":null}]'),
      {
        nanPolicy: 'impute-mean',
        idColumn: 'id',
      },
    );
    expect(objects.columns).toEqual(['x', 'y']);
    expect(Array.from(objects.values)).toEqual([1, 2, 3, 2]);
    expect(objects.ids).toEqual(['a', 'b']);
  });

  it.each([
    ['malformed JSON', '[[1,2],', /malformed JSON/],
    ['not an array', '{"a":1}', /array of rows/],
    ['empty array', '[]', /empty/],
    ['ragged rows', '[[1,2],[3]]', /ragged row/],
  ])('%s is a DATA_FORMAT error', async (_t, content, message) => {
    const e = await failure(loadDataset(file('bad.json', content), base));
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_FORMAT');
    expect(e.message).toMatch(message);
  });
});

describe('NPY input', () => {
  it('reads 2-D float64 and float32 arrays', async () => {
    const f8 = await loadDataset(file('a.npy', npy([2, 3], [1, 2, 3, 4, 5, 6])), base);
    expect([f8.n, f8.width]).toEqual([2, 3]);
    expect(Array.from(f8.values)).toEqual([1, 2, 3, 4, 5, 6]);
    const f4 = await loadDataset(file('b.npy', npy([1, 2], [0.5, 1.5], '<f4')), base);
    expect(Array.from(f4.values)).toEqual([0.5, 1.5]);
  });

  it('reads a 3-D array as time series n x T x d', async () => {
    const ds = await loadDataset(file('c.npy', npy([1, 3, 2], [0, 10, 1, 11, 2, 12])), base);
    expect(ds.series).toEqual({ length: 3, dims: 2 });
    expect(ds.columns).toEqual(['d0_t0', 'd1_t0', 'd0_t1', 'd1_t1', 'd0_t2', 'd1_t2']);
  });

  it.each([
    ['a truncated file', () => npy([4, 2], [1, 2, 3, 4, 5, 6, 7, 8]).slice(0, -5), /truncated/],
    ['an integer dtype', () => npy([1, 2], [1, 2], '<i4'), /dtype/],
    ['a 1-D array', () => npy([3], [1, 2, 3]), /2-D/],
    ['bad magic', () => new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), /magic/],
  ])('refuses %s', async (_t, make, message) => {
    const e = await failure(loadDataset(file('bad.npy', make()), base));
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_FORMAT');
    expect(e.message).toMatch(message);
  });
});

describe('cleaning', () => {
  it('standardizes as scikit-learn StandardScaler (population std)', async () => {
    const ds = await loadDataset(`${ROOT}/examples/iris.csv`, { ...base, labelColumn: 'species' });
    const scaler = fitScaler(ds, true);
    const z = applyScaler(ds, scaler);
    expect(scaler.means).toHaveLength(4);
    for (const [j, m] of scaler.means.entries()) expect(m).toBeCloseTo(sklearn.irisStandardized.mean[j]!, 12);
    for (const [j, s] of scaler.scales.entries())
      expect(s).toBeCloseTo(sklearn.irisStandardized.scale[j]!, 12);
    for (const [i, v] of sklearn.irisStandardized.first.flat().entries()) expect(z[i]).toBeCloseTo(v, 12);
  });

  it('drops constant columns with a warning, and refuses data that is all constant', () => {
    const warnings: string[] = [];
    const ds = datasetFromRows(
      [
        [1, 5, 2],
        [2, 5, 4],
        [3, 5, 8],
      ],
      base,
    );
    const scaler = fitScaler(ds, true, { warn: (_o, m) => warnings.push(m) });
    expect(scaler.keep).toEqual([0, 2]);
    expect(warnings.join()).toMatch(/constant columns dropped: x1/);
    expect(() => fitScaler(datasetFromRows([[1], [1]], base), true)).toThrow(/constant/);
  });

  it('refuses new data of the wrong width', () => {
    const scaler = fitScaler(
      datasetFromRows(
        [
          [1, 2],
          [3, 5],
        ],
        base,
      ),
      true,
    );
    expect(() => applyScaler(datasetFromRows([[1, 2, 3]], base), scaler)).toThrow(
      /3 feature columns; the model was fitted on 2/,
    );
  });
});
