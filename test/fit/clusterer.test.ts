import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeBlobs } from '../../src/bench/workloads.js';
import { ClusteringResult, NeuromorphicClusterer, VERSION } from '../../src/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { isEncrypted } from '../../src/security/envelope.js';
import { MODEL_VERSION } from '../../src/security/model-file.js';
import { failure, ROOT, tempDir } from '../helpers.js';

const dir = tempDir();
const quiet = createLogger({ level: 'silent' });
const IRIS = `${ROOT}/examples/iris.csv`;

describe('NeuromorphicClusterer', () => {
  it('fits rows in memory and returns the full result', async () => {
    const { points, truth } = makeBlobs(300, 2, 3, 4);
    const rows = Array.from({ length: 300 }, (_, i) => [points.data[2 * i]!, points.data[2 * i + 1]!]);
    const clusterer = new NeuromorphicClusterer({ method: 'kmeans', nClusters: 3, seed: 1, logger: quiet });
    const result = await clusterer.fit(rows);
    expect(result).toBeInstanceOf(ClusteringResult);
    expect(result.labels).toHaveLength(300);
    expect(result.backend).toBe('js');
    expect(result.fallbackUsed).toBe(false);
    expect(result.centroids).toHaveLength(3);
    expect(result.parameters.kmeans.nInit).toBe(10);
    expect(Object.keys(result.timings)).toEqual([
      'load',
      'validate',
      'encode',
      'reduce',
      'cluster',
      'score',
      'privacy',
      'total',
    ]);
    const assignments = result.getClusterAssignments();
    expect(assignments.map((a) => a.size).reduce((s, v) => s + v, 0)).toBe(300);
    for (const a of assignments) for (const row of a.rows) expect(result.labels[row]).toBe(a.cluster);
    expect(result.external).toBeUndefined();
    expect(truth).toHaveLength(300);
  });

  it('accepts a dense matrix and the options of every section', async () => {
    const { points } = makeBlobs(200, 3, 2, 8);
    const clusterer = new NeuromorphicClusterer({
      nClusters: 2,
      logger: quiet,
      config: { kmeans: { nInit: 2, maxIter: 50 }, data: { standardize: false } },
    });
    const result = await clusterer.fit(points);
    expect(result.parameters.kmeans).toMatchObject({ nInit: 2, maxIter: 50 });
    expect(result.quality.inertia).toBeGreaterThan(0);
  });

  it('predicts the training data as it labelled it, and new points by nearest centroid', async () => {
    const clusterer = new NeuromorphicClusterer({
      nClusters: 3,
      logger: quiet,
      config: { data: { labelColumn: 'species' } },
    });
    const result = await clusterer.fit(IRIS);
    const again = await clusterer.predict(IRIS);
    expect(Array.from(again)).toEqual(Array.from(result.labels));
    const setosa = await clusterer.predict([[5.0, 3.4, 1.5, 0.2]]);
    expect(setosa[0]).toBe(result.labels[0]);
  });

  it('refuses predict before fit, and data of the wrong width', async () => {
    const clusterer = new NeuromorphicClusterer({
      nClusters: 3,
      logger: quiet,
      config: { data: { labelColumn: 'species' } },
    });
    expect((await failure(clusterer.predict([[1, 2, 3, 4]]))).message).toMatch(/not fitted/);
    await clusterer.fit(IRIS);
    const e = await failure(clusterer.predict([[1, 2, 3]]));
    expect(e.code).toBe('NEUROCLUSTER_ERR_DATA_SHAPE');
    expect(e.message).toMatch(/3 feature columns; the model was fitted on 4/);
  });

  it('reports encoder progress per chunk of samples, then K-means progress', async () => {
    const events: string[] = [];
    const clusterer = new NeuromorphicClusterer({
      method: 'hybrid',
      nClusters: 3,
      logger: quiet,
      config: { data: { labelColumn: 'species' } },
    });
    await clusterer.fit(IRIS, {
      onProgress: (e) => events.push(e.type === 'encode' ? `${e.encoder} ${e.done}/${e.total}` : e.type),
    });
    expect(events.slice(0, 3)).toEqual(['esn 150/150', 'snn 150/150', 'lsm 150/150']);
    expect(events.slice(3).every((e) => e === 'iteration' || e === 'run')).toBe(true);
  });

  it('cancels through an AbortSignal', async () => {
    const controller = new AbortController();
    controller.abort();
    const clusterer = new NeuromorphicClusterer({
      nClusters: 3,
      logger: quiet,
      config: { data: { labelColumn: 'species' } },
    });
    expect((await failure(clusterer.fit(IRIS, { signal: controller.signal }))).code).toBe(
      'NEUROCLUSTER_ERR_ABORTED',
    );
  });

  it('refuses invalid options with the path of the bad key', () => {
    expect(() => new NeuromorphicClusterer({ nClusters: 0 })).toThrow(/kmeans\.nClusters/);
    expect(() => new NeuromorphicClusterer({ config: { kmeans: { nInit: 1.5 } } })).toThrow(/kmeans\.nInit/);
  });
});

describe('model files', () => {
  /** Plain model files unless `encrypted` (the default of security.encryptModels). */
  async function fitted(encrypted = false) {
    const clusterer = new NeuromorphicClusterer({
      nClusters: 3,
      seed: 2,
      logger: quiet,
      config: { data: { labelColumn: 'species' }, security: { encryptModels: encrypted } },
    });
    const result = await clusterer.fit(IRIS);
    return { clusterer, result };
  }

  it('round-trip: a loaded model predicts exactly as the fitted one', async () => {
    const { clusterer, result } = await fitted();
    const path = join(dir, 'iris.model.json');
    await clusterer.save(path);
    const doc = JSON.parse(readFileSync(path, 'utf8'));
    expect(doc).toMatchObject({ format: 'neurocluster-model', version: MODEL_VERSION });
    expect(doc.body.createdWith).toBe(`neurocluster ${VERSION}`);
    const loaded = await NeuromorphicClusterer.load(path, { logger: quiet });
    expect(Array.from(await loaded.predict(IRIS))).toEqual(Array.from(result.labels));
    expect(loaded.config.engine.seed).toBe(2);
  });

  it('encrypts model files at rest by default; a changed byte is refused as tampering', async () => {
    const { clusterer, result } = await fitted(true);
    const path = join(dir, 'sealed.model.json');
    await clusterer.save(path);
    const bytes = readFileSync(path);
    expect(isEncrypted(bytes)).toBe(true);
    expect(bytes.includes(Buffer.from('neurocluster-model'))).toBe(false);
    const loaded = await NeuromorphicClusterer.load(path, { logger: quiet });
    expect(Array.from(await loaded.predict(IRIS))).toEqual(Array.from(result.labels));
    bytes[bytes.length - 40]! ^= 1;
    writeFileSync(path, bytes);
    expect((await failure(NeuromorphicClusterer.load(path))).code).toBe('NEUROCLUSTER_ERR_INTEGRITY');
  });

  it.each([
    ['truncated', (t: string) => t.slice(0, t.length / 2), 'NEUROCLUSTER_ERR_MODEL_FILE', /truncated/],
    [
      'edited',
      (t: string) => t.replace(/"centroids":\[(-?)\d/, '"centroids":[$19'),
      'NEUROCLUSTER_ERR_MODEL_FILE',
      /checksum/,
    ],
    [
      'from a newer version',
      (t: string) => t.replace(`"version":${MODEL_VERSION}`, '"version":99'),
      'NEUROCLUSTER_ERR_MODEL_VERSION',
      /newer/,
    ],
    ['not a model', () => '{"hello":1}', 'NEUROCLUSTER_ERR_MODEL_FILE', /not a neurocluster model/],
  ])('refuses a %s file with a clear error', async (_t, damage, code, message) => {
    const { clusterer } = await fitted();
    const path = join(dir, 'damaged.model.json');
    await clusterer.save(path);
    writeFileSync(path, damage(readFileSync(path, 'utf8')));
    const e = await failure(NeuromorphicClusterer.load(path));
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
    expect(e.exitCode).toBe(2);
  });

  it('save refuses an unfitted clusterer, and a write failure leaves no file', async () => {
    await expect(new NeuromorphicClusterer({ nClusters: 2 }).save(join(dir, 'x.json'))).rejects.toThrow(
      /not fitted/,
    );
    const { clusterer } = await fitted();
    const e = await failure(clusterer.save(join(dir, 'no-such-dir', 'm.json')));
    expect(e.code).toBe('NEUROCLUSTER_ERR_IO');
  });
});
