import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { npyHeader, writeBlobsNpy } from '../../src/bench/workloads.js';
import { externalQuality } from '../../src/cluster/metrics.js';
import type { ConfigOverrides, Method } from '../../src/config/schema.js';
import { labelsCsv } from '../../src/data/labels-file.js';
import type { PassProgress } from '../../src/fit/result.js';
import { NeuromorphicClusterer } from '../../src/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { failure, hasSharedTs, ROOT, SHARED_TS, tempDir } from '../helpers.js';

const quiet = createLogger({ level: 'silent' });
const IRIS = `${ROOT}/examples/iris.csv`;
const SERIES = join(SHARED_TS, 'SyntheticControl.csv');

function clusterer(method: Method, k: number, config: ConfigOverrides = {}) {
  return new NeuromorphicClusterer({
    method,
    nClusters: k,
    seed: 7,
    backend: 'js',
    logger: quiet,
    config: { ...config, performance: { baselines: false } },
  });
}

/** The same fit held in memory and streamed. */
async function both(path: string, method: Method, k: number, config: ConfigOverrides = {}) {
  const inMemory = await clusterer(method, k, { ...config, stream: { mode: 'off' } }).fit(path);
  const streamed = await clusterer(method, k, { ...config, stream: { ...config.stream, mode: 'on' } }).fit(
    path,
  );
  return { inMemory, streamed };
}

describe('a streamed fit', () => {
  const cases = [
    ['kmeans', 'iris', IRIS, 3, { data: { labelColumn: 'species' } }],
    ['hybrid', 'iris', IRIS, 3, { data: { labelColumn: 'species' } }],
    // A development series set (../shared/data/ts), where this checkout has them.
    ...(hasSharedTs
      ? ([['hybrid', 'SyntheticControl', SERIES, 6, { data: { labelColumn: 'label' } }]] as const)
      : []),
  ] as const;
  it.each(cases)(
    'gives %s on %s the labels and scores of the fit in memory',
    // hybrid on SyntheticControl is three members voting (encoders.members auto), fitted twice.
    { timeout: 180_000 },
    async (method, _name, path, k, config) => {
      const { inMemory, streamed } = await both(path, method, k, config);
      expect(streamed.streamed).toBeDefined();
      expect(inMemory.streamed).toBeUndefined();
      expect(Array.from(streamed.labels)).toEqual(Array.from(inMemory.labels));
      // The same labels, counted over chunks with the clusters in label order where the fit in
      // memory takes them as they first appear: the sums may differ in the last bit.
      for (const key of ['ari', 'nmi', 'randIndex'] as const) {
        expect(streamed.external![key]).toBeCloseTo(inMemory.external![key], 12);
      }
      for (const key of ['silhouette', 'calinskiHarabasz', 'daviesBouldin', 'inertia'] as const) {
        expect(streamed.quality[key]).toBeCloseTo(inMemory.quality[key]!, 4);
      }
      expect(streamed.sizes()).toEqual(inMemory.sizes());
      expect(streamed.features.rows).toBe(inMemory.features.rows);
    },
  );

  it('clusters 100,000 blobs from a sample of 20,000 as the fit in memory does (ARI >= 0.999)', async () => {
    const dir = tempDir();
    const file = join(dir, 'blobs.npy');
    await writeBlobsNpy(file, join(dir, 'truth.npy'), 100_000, 4, 6, 3, 2.5);
    const { inMemory, streamed } = await both(file, 'kmeans', 6, {
      kmeans: { algorithm: 'lloyd', nInit: 3 },
      stream: { sampleRows: 20_000, chunkRows: 30_000 },
    });
    expect(streamed.streamed?.sampleRows).toBe(20_000);
    expect(streamed.features.rows).toBe(20_000);
    expect(externalQuality(streamed.labels, inMemory.labels).ari).toBeGreaterThanOrEqual(0.999);
    expect(streamed.quality.inertia).toBeCloseTo(inMemory.quality.inertia, -1);
  });

  it('fits a Parquet file a row group at a time as the fit in memory does', async () => {
    const dir = tempDir();
    const [head, ...lines] = readFileSync(IRIS, 'utf8').trim().split('\n');
    const rows = lines.map((l) => l.split(','));
    const file = join(dir, 'iris.parquet');
    const columnData = head!
      .split(',')
      .map((name, j) =>
        name === 'species'
          ? { name, data: rows.map((r) => r[j]!), type: 'STRING' as const }
          : { name, data: rows.map((r) => Number(r[j])), type: 'DOUBLE' as const },
      );
    writeFileSync(file, new Uint8Array(parquetWriteBuffer({ columnData, rowGroupSize: 32 })));
    const config = { data: { labelColumn: 'species' }, stream: { chunkRows: 50 } };
    const { inMemory, streamed } = await both(file, 'hybrid', 3, config);
    expect(streamed.streamed?.chunkRows).toBe(50);
    expect(Array.from(streamed.labels)).toEqual(Array.from(inMemory.labels));
    const fromCsv = await clusterer('hybrid', 3, { ...config, stream: { mode: 'off' } }).fit(IRIS);
    expect(Array.from(streamed.labels)).toEqual(Array.from(fromCsv.labels));
  });

  it('gives the same labels whatever the chunk size', async () => {
    const fits = await Promise.all(
      [7, 64, 100_000].map((chunkRows) =>
        clusterer('hybrid', 3, { stream: { mode: 'on', chunkRows } }).fit(IRIS),
      ),
    );
    expect(fits.map((f) => f.streamed?.chunkRows)).toEqual([7, 64, 100_000]);
    for (const f of fits.slice(1)) expect(Array.from(f.labels)).toEqual(Array.from(fits[0]!.labels));
  });

  it('imputes and drops rows as the fit in memory does', async () => {
    const dir = tempDir();
    const rows = readFileSync(IRIS, 'utf8').trim().split('\n');
    // Every ninth row loses a value; the file is read in chunks of 16 rows.
    const holed = rows.map((line, i) => (i > 0 && i % 9 === 0 ? line.replace(/^[^,]*/, '') : line));
    const file = join(dir, 'holes.csv');
    writeFileSync(file, `${holed.join('\n')}\n`);
    for (const nanPolicy of ['impute-mean', 'drop-rows'] as const) {
      const config = { data: { nanPolicy, labelColumn: 'species' }, stream: { chunkRows: 16 } };
      const { inMemory, streamed } = await both(file, 'kmeans', 3, config);
      expect(Array.from(streamed.labels)).toEqual(Array.from(inMemory.labels));
      expect(streamed.droppedRows).toEqual(inMemory.droppedRows);
      expect(streamed.rows).toBe(nanPolicy === 'drop-rows' ? 134 : 150);
    }
  });

  it('refuses to impute a column with no finite value, as the fit in memory does', async () => {
    const dir = tempDir();
    const file = join(dir, 'empty-column.npy');
    const values = Float32Array.from({ length: 80 }, (_, i) => (i % 2 === 0 ? i : Number.NaN));
    writeFileSync(file, Buffer.concat([npyHeader([40, 2], '<f4'), new Uint8Array(values.buffer)]));
    const config = { data: { nanPolicy: 'impute-mean' as const }, stream: { chunkRows: 16 } };
    const inMemory = await failure(clusterer('kmeans', 2, { ...config, stream: { mode: 'off' } }).fit(file));
    const streamed = await failure(
      clusterer('kmeans', 2, { ...config, stream: { ...config.stream, mode: 'on' } }).fit(file),
    );
    expect(streamed.code).toBe('NEUROCLUSTER_ERR_DATA_VALUE');
    expect(streamed.message).toBe(inMemory.message);
  });

  it('predicts rows of which whole chunks are dropped, naming every dropped row', async () => {
    const dir = tempDir();
    const file = join(dir, 'holes.csv');
    writeFileSync(file, 'a,b\n1,1\n2,2\n,\nnan,\n5,1\n6,2\n');
    const config = { data: { nanPolicy: 'drop-rows' as const }, stream: { chunkRows: 2 } };
    const streaming = clusterer('kmeans', 2, { ...config, stream: { ...config.stream, mode: 'on' } });
    await streaming.fit(file);
    const whole = clusterer('kmeans', 2, { ...config, stream: { mode: 'off' } });
    await whole.fit(file);
    const expected = await whole.label(file);
    const got = await streaming.label(file);
    expect(got.streamed).toBe(true);
    expect(got.droppedRows).toEqual([2, 3]);
    expect(got.droppedRows).toEqual(expected.droppedRows);
    expect(Array.from(got.labels)).toEqual(Array.from(expected.labels));
  });

  it('writes the labels file with ids, as the fit in memory writes it', async () => {
    const dir = tempDir();
    const rows = readFileSync(IRIS, 'utf8').trim().split('\n');
    const file = join(dir, 'ids.csv');
    writeFileSync(file, `${rows.map((line, i) => `${i === 0 ? 'id' : `=row${i}`},${line}`).join('\n')}\n`);
    const out = join(dir, 'labels.csv');
    const config = {
      data: { idColumn: 'id', labelColumn: 'species' },
      stream: { mode: 'on' as const, chunkRows: 40 },
    };
    const streamed = await clusterer('kmeans', 3, config).fit(file, { labelsOut: out });
    const inMemory = await clusterer('kmeans', 3, { ...config, stream: { mode: 'off' } }).fit(file);
    expect(streamed.labelsFile).toBe(out);
    expect(streamed.ids).toEqual(inMemory.ids);
    expect(readFileSync(out, 'utf8')).toBe(labelsCsv(inMemory.labels, inMemory.ids));
    expect(readFileSync(out, 'utf8')).toContain("'=row1,");
  });

  it('returns no labels past output.inlineLabelsMax, and requires a labels file there', async () => {
    const dir = tempDir();
    const config = { stream: { mode: 'on' as const }, output: { inlineLabelsMax: 100 } };
    const e = await failure(clusterer('kmeans', 3, config).fit(IRIS));
    expect(e.code).toBe('NEUROCLUSTER_ERR_USAGE');
    expect(e.message).toMatch(/inlineLabelsMax \(100\).*labels file/);
    const out = join(dir, 'labels.csv');
    const result = await clusterer('kmeans', 3, config).fit(IRIS, { labelsOut: out });
    expect(result.labels).toHaveLength(0);
    expect(result.rows).toBe(150);
    expect(result.sizes().reduce((a, b) => a + b, 0)).toBe(150);
    const json = result.toJSON();
    expect(json).not.toHaveProperty('labels');
    expect(json).toMatchObject({ rows: 150, labelsFile: out });
    const inMemory = await clusterer('kmeans', 3, { stream: { mode: 'off' } }).fit(IRIS);
    expect(readFileSync(out, 'utf8')).toBe(labelsCsv(inMemory.labels));
  });

  it('names the file, line and column of a malformed row in a later chunk, and writes nothing', async () => {
    const dir = tempDir();
    const rows = readFileSync(IRIS, 'utf8').trim().split('\n');
    rows[120] = rows[120]!.replace(/^[^,]*/, 'x1');
    const file = join(dir, 'bad.csv');
    writeFileSync(file, `${rows.join('\n')}\n`);
    const out = join(dir, 'labels.csv');
    const e = await failure(
      clusterer('kmeans', 3, { stream: { mode: 'on', chunkRows: 32 } }).fit(file, { labelsOut: out }),
    );
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_VALUE');
    expect(e.location).toMatchObject({ file, row: 121, column: 'sepal_length' });
    // Where the file read whole says it is.
    const whole = await failure(clusterer('kmeans', 3, { stream: { mode: 'off' } }).fit(file));
    expect(whole.location).toEqual(e.location);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir)).toEqual(['bad.csv']);
  });

  it('stops at the chunk that passes a row quota (NEUROCLUSTER_ERR_QUOTA), as the fit in memory refuses the file', async () => {
    const rowQuota = { maxRows: 100, holder: 'tenant "team-a"' };
    const config = { data: { labelColumn: 'species' } } as const;
    const streamed = await failure(
      clusterer('kmeans', 3, { ...config, stream: { mode: 'on', chunkRows: 32 } }).fit(IRIS, { rowQuota }),
    );
    expect(streamed.code).toBe('NEUROCLUSTER_ERR_QUOTA');
    expect(streamed.message).toMatch(
      /more than 100 rows, over tenant "team-a"'s quota \(maxRowsPerJob 100\)/,
    );
    const whole = await failure(
      clusterer('kmeans', 3, { ...config, stream: { mode: 'off' } }).fit(IRIS, { rowQuota }),
    );
    expect(whole.code).toBe('NEUROCLUSTER_ERR_QUOTA');
    expect(whole.message).toMatch(/the data has 150 rows/);
    // At the quota, it fits.
    const fits = await clusterer('kmeans', 3, { ...config, stream: { mode: 'on', chunkRows: 32 } }).fit(
      IRIS,
      {
        rowQuota: { ...rowQuota, maxRows: 150 },
      },
    );
    expect(fits.rows).toBe(150);
  });

  describe('spill files', () => {
    let previous: string | undefined;
    let spillRoot: string;
    beforeEach(() => {
      previous = process.env.TMPDIR;
      spillRoot = tempDir();
      process.env.TMPDIR = spillRoot;
    });
    afterEach(() => {
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
    });

    it('are owner-only while the fit runs and removed when it ends', async () => {
      const seen: string[] = [];
      await clusterer('kmeans', 3, { stream: { mode: 'on' } }).fit(IRIS, {
        onProgress: (p) => {
          if (p.type === 'pass' && p.pass === 'lloyd') {
            for (const name of readdirSync(spillRoot)) seen.push(name);
          }
        },
      });
      expect(seen.length).toBeGreaterThan(0);
      expect(seen[0]).toMatch(/^neurocluster-spill-/);
      expect(readdirSync(spillRoot)).toEqual([]);
    });

    it('are removed when the fit is aborted mid-pass', async () => {
      const controller = new AbortController();
      const passes: PassProgress[] = [];
      const e = await failure(
        clusterer('hybrid', 3, { stream: { mode: 'on', chunkRows: 10 } }).fit(IRIS, {
          signal: controller.signal,
          onProgress: (p) => {
            if (p.type !== 'pass') return;
            passes.push(p);
            if (p.pass === 'features' && p.rows >= 50) controller.abort();
          },
        }),
      );
      expect(e.code).toBe('NEUROCLUSTER_ERR_ABORTED');
      expect(passes.some((p) => p.pass === 'features')).toBe(true);
      expect(passes.some((p) => p.pass === 'assign')).toBe(false);
      expect(readdirSync(spillRoot)).toEqual([]);
    });
  });

  it('reports every pass with its rows, rate and time left', async () => {
    const passes: PassProgress[] = [];
    await clusterer('kmeans', 3, { stream: { mode: 'on', chunkRows: 50 } }).fit(IRIS, {
      onProgress: (p) => {
        if (p.type === 'pass') passes.push(p);
      },
    });
    expect(new Set(passes.map((p) => p.pass))).toEqual(new Set(['survey', 'features', 'lloyd', 'assign']));
    const assign = passes.filter((p) => p.pass === 'assign');
    expect(assign.map((p) => p.rows)).toEqual([50, 100, 150]);
    expect(assign.at(-1)).toMatchObject({ totalRows: 150, etaSeconds: 0 });
    for (const p of passes) expect(p.rowsPerSecond).toBeGreaterThan(0);
  });

  it('reads whole what it cannot stream, and streams under auto only past stream.sampleRows rows', async () => {
    const small = await clusterer('kmeans', 3).fit(IRIS);
    expect(small.streamed).toBeUndefined();
    const dir = tempDir();
    const npy = join(dir, 'blobs.npy');
    await writeBlobsNpy(npy, join(dir, 'truth.npy'), 2_500, 2, 3, 1);
    const csv = join(dir, 'blobs.csv');
    const fromNpy = await clusterer('kmeans', 3, { stream: { mode: 'off' } }).fit(npy);
    writeFileSync(
      csv,
      `a,b\n${Array.from({ length: 2_500 }, (_, i) => `${fromNpy.features.data[2 * i]},${fromNpy.features.data[2 * i + 1]}`).join('\n')}\n`,
    );
    for (const path of [npy, csv]) {
      expect((await clusterer('kmeans', 3).fit(path)).streamed).toBeUndefined();
      expect(
        (await clusterer('kmeans', 3, { stream: { sampleRows: 2_000 } }).fit(path)).streamed,
      ).toBeDefined();
    }
    const json = tempDir();
    const file = join(json, 'rows.json');
    writeFileSync(
      file,
      JSON.stringify(
        readFileSync(IRIS, 'utf8')
          .trim()
          .split('\n')
          .slice(1)
          .map((l) => l.split(',').slice(0, 4).map(Number)),
      ),
    );
    const whole = await clusterer('kmeans', 3, { stream: { mode: 'on' } }).fit(file);
    expect(whole.streamed).toBeUndefined();
    const privateFit = await clusterer('kmeans', 3, {
      stream: { mode: 'on' },
      privacy: { minClusterSize: 2 },
    }).fit(IRIS);
    expect(privateFit.streamed).toBeUndefined();
  });

  it('predicts a file in chunks as predict in memory does, writing the labels file as it goes', async () => {
    const dir = tempDir();
    const config = {
      stream: { mode: 'on' as const, chunkRows: 32 },
      data: { nanPolicy: 'impute-mean' as const },
    };
    const rows = readFileSync(IRIS, 'utf8').trim().split('\n');
    const file = join(dir, 'holes.csv');
    writeFileSync(
      file,
      `${rows.map((line, i) => (i > 0 && i % 11 === 0 ? line.replace(/^[^,]*/, '') : line)).join('\n')}\n`,
    );
    const streaming = clusterer('hybrid', 3, config);
    await streaming.fit(IRIS);
    const whole = clusterer('hybrid', 3, { ...config, stream: { mode: 'off' } });
    await whole.fit(IRIS);
    const expected = await whole.predict(file);
    const out = join(dir, 'predicted.csv');
    const prediction = await streaming.label(file, { labelsOut: out });
    expect(prediction.streamed).toBe(true);
    expect(Array.from(prediction.labels)).toEqual(Array.from(expected));
    expect(readFileSync(out, 'utf8')).toBe(labelsCsv(expected));
    expect(prediction.sizes.reduce((a, b) => a + b, 0)).toBe(150);

    const capped = clusterer('kmeans', 3, { stream: { mode: 'on' }, output: { inlineLabelsMax: 100 } });
    await capped.fit(IRIS, { labelsOut: join(dir, 'fit.csv') });
    const e = await failure(capped.predict(IRIS));
    expect(e.code).toBe('NEUROCLUSTER_ERR_USAGE');
    const past = await capped.label(IRIS, { labelsOut: out });
    expect(past).toMatchObject({ rows: 150, streamed: true });
    expect(past.labels).toHaveLength(0);
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(join(dir, 'fit.csv'), 'utf8'));
  });
});
