import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { baselineFile, recordRun, shapeKey } from '../../src/observability/baselines.js';
import { createLogger } from '../../src/observability/logger.js';
import { ROOT, tempDir } from '../helpers.js';

const settings = { enabled: true, anomalyFactor: 2, window: 4, minSamples: 3, minSeconds: 0.05 };
const fresh = () => join(tempDir(), 'state', 'baselines.json');
const shape = { method: 'esn', backend: 'wasm', n: 20_000, d: 8 };

describe('performance baselines', () => {
  it('bucket shapes by method, backend and powers of two of N and d', () => {
    expect(shapeKey(shape)).toBe('esn|wasm|n16384|d8');
    expect(shapeKey({ ...shape, n: 32_767 })).toBe('esn|wasm|n16384|d8');
    expect(shapeKey({ ...shape, n: 32_768 })).toBe('esn|wasm|n32768|d8');
  });

  it('flag a phase slower than anomalyFactor times the median of the kept runs, once minSamples exist', () => {
    const file = fresh();
    expect(recordRun(file, shape, { encode: 1.0 }, settings)).toEqual([]);
    expect(recordRun(file, shape, { encode: 5.0 }, settings)).toEqual([]); // too few runs to judge
    expect(recordRun(file, shape, { encode: 1.2 }, settings)).toEqual([]);
    expect(recordRun(file, shape, { encode: 2.3 }, settings)).toEqual([]); // median 1.2: 2.3 < 2.4
    expect(recordRun(file, shape, { encode: 4.0 }, settings)).toEqual([
      { phase: 'encode', seconds: 4.0, baseline: 1.75, factor: 4.0 / 1.75 },
    ]);
    // A rolling window: the four latest runs are kept.
    expect(JSON.parse(readFileSync(file, 'utf8'))[shapeKey(shape)].encode).toEqual([5.0, 1.2, 2.3, 4.0]);
    // Other shapes have their own baselines; phases under minSeconds are never judged.
    expect(recordRun(file, { ...shape, backend: 'js' }, { encode: 40 }, settings)).toEqual([]);
    expect(recordRun(file, shape, { score: 0.01 }, { ...settings, minSamples: 0 })).toEqual([]);
  });

  it('are kept under NEUROCLUSTER_HOME and reported in the result and the log', async () => {
    const home = tempDir();
    process.env.NEUROCLUSTER_HOME = home;
    const lines: string[] = [];
    const logger = createLogger({
      level: 'warn',
      destination: { write: (line: string) => lines.push(line) } as never,
    });
    const config = {
      performance: { minSamples: 3, minPhaseSeconds: 0, anomalyFactor: 2 },
      // A backoff far above what the three runs take even on a loaded machine (tests run in parallel).
      retry: { baseDelay: '1500ms', maxDelay: '1500ms', maxRetries: 1 },
    };
    const fitIris = (extra = {}) =>
      new NeuromorphicClusterer({
        method: 'kmeans',
        nClusters: 3,
        backend: 'js',
        logger,
        config: { ...config, ...extra },
      }).fit(join(ROOT, 'examples/iris.csv'));
    for (let i = 0; i < 3; i++) expect((await fitIris()).performanceAnomalies).toBeUndefined();
    // The same shape (plain K-means on js) slowed down by a retried kernel: 1.5 s of backoff.
    const slow = await fitIris({ faults: { inject: 'kernel-throw' } });
    expect(slow.fallbackUsed).toBe(true);
    expect(slow.performanceAnomalies?.map((a) => a.phase)).toContain('total');
    expect(slow.toJSON().performanceAnomalies).toBeDefined();
    expect(lines.some((l) => l.includes('performance anomaly: total took'))).toBe(true);
    expect(Object.keys(JSON.parse(readFileSync(baselineFile(home), 'utf8')))).toEqual(['kmeans|js|n128|d4']);
  });
});
