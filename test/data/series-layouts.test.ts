/**
 * Series as users have them: long format (a series id, an optional time, one value column per
 * dimension), and series of unequal lengths (a wide table whose rows end early, tslearn's
 * NaN-padded 3-D array), read to their own ends by the reservoirs and resampled where one width
 * is needed.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { applyScaler, fitScaler } from '../../src/data/clean.js';
import { resampleSeries } from '../../src/data/lengths.js';
import { loadDataset } from '../../src/data/load.js';
import type { TableOptions } from '../../src/data/table.js';
import { modelSpace } from '../../src/encoders/model-space.js';
import { createLogger } from '../../src/observability/logger.js';
import { failure, fileWriter, npy, tempDir } from '../helpers.js';

const dir = tempDir();
const base: TableOptions = { nanPolicy: 'error' };
const quiet = createLogger({ level: 'silent' });

const file = fileWriter(dir);

describe('long format', () => {
  it('reads one sample per series, steps ordered by time, as the wide format lays them out', async () => {
    const long = file(
      'long.csv',
      'id,time,value,label\nb,2,20,y\na,1,1,x\nb,1,10,y\na,0,0,x\nb,0,0,y\na,2,2,x\n',
    );
    const ds = await loadDataset(long, {
      ...base,
      seriesIdColumn: 'id',
      timeColumn: 'time',
      labelColumn: 'label',
    });
    const wide = await loadDataset(file('wide.csv', 'id,label,t0,t1,t2\nb,y,0,10,20\na,x,0,1,2\n'), {
      ...base,
      idColumn: 'id',
      labelColumn: 'label',
    });
    expect(ds.ids).toEqual(['b', 'a']);
    expect(ds.truth).toEqual(['y', 'x']);
    expect(ds.series).toEqual(wide.series);
    expect(ds.columns).toEqual(wide.columns);
    expect(Array.from(ds.values)).toEqual(Array.from(wide.values));
    expect(ds.lengths).toBeUndefined();
  });

  it('reads several value columns as the dimensions of a series, in file order without a time column', async () => {
    const ds = await loadDataset(file('multi.csv', 'series,x,y\ns1,1,10\ns1,2,20\ns2,3,30\ns2,4,40\n'), {
      ...base,
      seriesIdColumn: 'series',
    });
    expect(ds.series).toEqual({ length: 2, dims: 2 });
    expect(ds.columns).toEqual(['d0_t0', 'd1_t0', 'd0_t1', 'd1_t1']);
    expect(Array.from(ds.values)).toEqual([1, 10, 2, 20, 3, 30, 4, 40]);
  });

  it('orders ISO dates', async () => {
    const ds = await loadDataset(
      file(
        'dates.csv',
        'id,when,v\na,2026-01-03,3\na,2026-01-01,1\na,2026-01-02,2\nb,2026-01-01,5\nb,2026-01-02,6\nb,2026-01-03,7\n',
      ),
      { ...base, seriesIdColumn: 'id', timeColumn: 'when' },
    );
    expect(Array.from(ds.values)).toEqual([1, 2, 3, 5, 6, 7]);
  });

  it("pads shorter series and records each one's length", async () => {
    const ds = await loadDataset(
      file('unequal-long.csv', 'id,v\na,1\na,2\na,3\nb,4\nb,5\nc,6\nc,7\nc,8\nc,9\n'),
      {
        ...base,
        seriesIdColumn: 'id',
      },
    );
    expect(ds.series).toEqual({ length: 4, dims: 1 });
    expect(Array.from(ds.lengths!)).toEqual([3, 2, 4]);
    expect(Array.from(ds.values)).toEqual([1, 2, 3, 0, 4, 5, 0, 0, 6, 7, 8, 9]);
  });

  it.each([
    ['two rows at one time', 'id,t,v\na,1,1\na,1,2\n', { timeColumn: 't' }, /two rows at the same time/, 3],
    ['two labels in one series', 'id,v,l\na,1,x\na,2,y\n', { labelColumn: 'l' }, /more than one label/, 2],
    ['a time that is no time', 'id,t,v\na,soon,1\n', { timeColumn: 't' }, /neither a number nor a date/, 2],
    ['a row without a series id', 'id,v\na,1\n,2\n', {}, /without a series id/, 3],
  ])('refuses %s, naming the row', async (_, content, extra, message, row) => {
    const e = await failure(
      loadDataset(file('bad-long.csv', content), { ...base, seriesIdColumn: 'id', ...extra }),
    );
    expect(e.message).toMatch(message);
    expect(e.location).toMatchObject({ row });
  });

  it('refuses an id column beside the series id, and a series id that is not a column', async () => {
    const path = file('roles.csv', 'id,v\na,1\n');
    await expect(loadDataset(path, { ...base, seriesIdColumn: 'id', idColumn: 'id' })).rejects.toThrow(
      /--series-id/,
    );
    await expect(loadDataset(path, { ...base, seriesIdColumn: 'nope' })).rejects.toThrow(/not a column/);
  });
});

describe('series of unequal lengths', () => {
  it('reads a wide table whose rows end in empty cells, and a missing value inside a series is still missing', async () => {
    const ds = await loadDataset(file('ragged.csv', 't0,t1,t2,t3\n1,2,3,4\n5,6,,\n'), base);
    expect(Array.from(ds.lengths!)).toEqual([4, 2]);
    expect(Array.from(ds.values)).toEqual([1, 2, 3, 4, 5, 6, 0, 0]);
    const e = await failure(loadDataset(file('hole.csv', 't0,t1,t2,t3\n1,2,3,4\n5,,7,\n'), base));
    expect(e.message).toMatch(/missing or NaN value in column "t1"/);
  });

  it("reads tslearn's to_time_series_dataset layout: a 3-D array padded with NaN", async () => {
    const values = [1, 10, 2, 20, 3, 30, 4, 40, Number.NaN, Number.NaN, Number.NaN, Number.NaN];
    const ds = await loadDataset(file('tslearn.npy', npy([2, 3, 2], values)), base);
    expect(ds.series).toEqual({ length: 3, dims: 2 });
    expect(Array.from(ds.lengths!)).toEqual([3, 1]);
  });

  it('z-normalizes each series over its own steps, its padding left at zero', async () => {
    const ds = await loadDataset(file('norm.csv', 't0,t1,t2,t3\n1,2,3,4\n10,20,,\n'), base);
    const cleaned = applyScaler(ds, fitScaler(ds, true));
    expect(Array.from(cleaned.subarray(4))).toEqual([-1, 1, 0, 0]);
  });

  it('resamples each series linearly over its own steps to the longest', () => {
    const points = { rows: 1, cols: 5, data: Float64Array.of(0, 1, 2, 0, 0) };
    const out = resampleSeries(points, { length: 5, dims: 1 }, Int32Array.of(3));
    expect(Array.from(out.data)).toEqual([0, 0.5, 1, 1.5, 2]);
  });

  it('fits the model space of a series on its own steps only', () => {
    const units = 2;
    const steps = 6;
    // One series of 4 steps padded to 6: states past its end are garbage that must not count.
    const states = Float64Array.from({ length: steps * units }, (_, i) =>
      i < 4 * units ? Math.sin(i) : 1e6,
    );
    const inputs = { rows: 1, cols: steps, data: Float64Array.of(0.1, 0.5, -0.3, 0.7, 9, 9) };
    const padded = modelSpace(
      { rows: 1, cols: steps * units, data: states },
      units,
      { inputs, inputDim: 1, steps, sequence: true },
      0,
      1,
      undefined,
      Int32Array.of(4),
    );
    const own = modelSpace(
      { rows: 1, cols: 4 * units, data: states.subarray(0, 4 * units) },
      units,
      {
        inputs: { rows: 1, cols: 4, data: inputs.data.subarray(0, 4) },
        inputDim: 1,
        steps: 4,
        sequence: true,
      },
      0,
      1,
    );
    expect(Array.from(padded.data)).toEqual(Array.from(own.data));
  });

  it('are clustered end to end, labelled again by a saved model, and refused in chunks', async () => {
    const rows = ['label,t0,t1,t2,t3,t4,t5,t6,t7'];
    for (let i = 0; i < 24; i++) {
      const own = 5 + (i % 4);
      const cells = Array.from({ length: 8 }, (_, t) =>
        t < own ? String(i % 2 ? Math.sin(t + i) : t * 0.3 + (i % 3)) : '',
      );
      rows.push([String(i % 2), ...cells].join(','));
    }
    const path = file('ragged-set.csv', `${rows.join('\n')}\n`);
    const config = { data: { labelColumn: 'label' } };
    for (const method of ['hybrid', 'kmeans'] as const) {
      const c = new NeuromorphicClusterer({ method, nClusters: 2, seed: 0, logger: quiet, config });
      const fitted = await c.fit(path);
      expect(fitted.labels).toHaveLength(24);
      const model = join(dir, `ragged-${method}.model`);
      await c.save(model);
      const loaded = await NeuromorphicClusterer.load(model, {
        logger: quiet,
        data: { labelColumn: 'label' },
      });
      expect(Array.from(await loaded.predict(path))).toEqual(Array.from(fitted.labels));
      // A shorter file than the longest series fitted is padded to the model's length.
      const short = file('short.csv', 'label,t0,t1,t2\n0,1,2,3\n');
      expect(await loaded.predict(short)).toHaveLength(1);
    }
    const readout = new NeuromorphicClusterer({
      method: 'esn',
      nClusters: 2,
      logger: quiet,
      config: { ...config, encoders: { esn: { readout: 'last' } } },
    });
    await expect(readout.fit(path)).rejects.toThrow(/unequal lengths need the "model-space" readout/);
    const chunked = new NeuromorphicClusterer({
      method: 'kmeans',
      nClusters: 2,
      logger: quiet,
      config: { ...config, stream: { mode: 'on', chunkRows: 8 } },
    });
    await expect(chunked.fit(path)).rejects.toThrow(/--stream off/);
  });
});
