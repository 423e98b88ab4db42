import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cylinderBellFunnel, toCsv } from '../../bench/synthetic.js';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { checkConfig } from '../../src/config/levels.js';
import type { ConfigOverrides } from '../../src/config/schema.js';
import { createLogger } from '../../src/observability/logger.js';
import {
  estimateJob,
  estimateJobBytes,
  MAX_TYPED_ARRAY_LENGTH,
  ResourceMonitor,
  type ResourceProbes,
} from '../../src/observability/resources.js';
import { countingJsRegistry, failure, ROOT, tempDir } from '../helpers.js';

const IRIS = join(ROOT, 'examples/iris.csv');
/** 24 labelled series of 64 steps. */
const SERIES = join(tempDir(), 'cbf.csv');
writeFileSync(SERIES, toCsv(cylinderBellFunnel(3, 8, 64)));
const MiB = 2 ** 20;
const thresholds = {
  memoryWarning: 0.8,
  memoryCritical: 0.95,
  cpuWarning: 0.7,
  cpuCritical: 0.9,
  diskWarning: 0.9,
  diskCritical: 0.98,
  memoryBudgetBytes: 1000 * MiB,
};

/** Probes that read what the test says. */
function probes(state: {
  rss: number;
  cpuMs: number;
  at: number;
  disk?: number;
  device?: number;
}): ResourceProbes {
  return {
    memoryUsage: () => ({ rss: state.rss, heapUsed: state.rss / 2, heapTotal: state.rss }),
    cpuUsage: () => ({ user: state.cpuMs * 1000, system: 0 }),
    now: () => state.at,
    cores: 2,
    disk: () => (state.disk === undefined ? undefined : { free: (1 - state.disk) * 1e12, total: 1e12 }),
    device: () =>
      state.device === undefined ? undefined : { used: state.device * 1024 * MiB, total: 1024 * MiB },
  };
}

describe('resource monitor', () => {
  it('grades memory, CPU, disk and device memory against warning and critical thresholds', () => {
    const state = { rss: 500 * MiB, cpuMs: 0, at: 0, disk: 0.5, device: 0.1 };
    const monitor = new ResourceMonitor(thresholds, '/home', probes(state));
    state.at = 1000;
    state.cpuMs = 1500; // 1.5 s of CPU in 1 s on 2 cores: 75%
    let s = monitor.sample();
    expect(s.memory).toMatchObject({ fraction: 0.5, level: 'ok' });
    expect(s.cpu).toEqual({ fraction: 0.75, level: 'warning' });
    expect(s.disk).toMatchObject({ level: 'ok' });
    expect(s.level).toBe('warning');
    state.rss = 960 * MiB;
    state.at = 2000;
    state.cpuMs = 1600;
    state.disk = 0.99;
    state.device = 0.85;
    s = monitor.sample();
    expect([s.memory.level, s.cpu.level, s.disk?.level, s.device?.level, s.level]).toEqual([
      'critical',
      'ok',
      'critical',
      'warning',
      'critical',
    ]);
  });

  it('admits a job by the memory it will need: ok, warning past 80% of the budget, refused past 95%', () => {
    const monitor = new ResourceMonitor(thresholds, '/home', probes({ rss: 500 * MiB, cpuMs: 0, at: 0 }));
    expect(monitor.admit(100 * MiB).verdict).toBe('ok');
    expect(monitor.admit(350 * MiB).verdict).toBe('warning');
    expect(monitor.admit(460 * MiB).verdict).toBe('refused');
  });

  it('estimates a job from its shape: input, weights, chunk, features, K-means', () => {
    const base = { rows: 20_000, cols: 8, k: 5, weights: 0, deviceBytesPerValue: 4 };
    const kmeans = estimateJobBytes({ ...base, rawFeatures: 0, features: 8, chunkBytesPerSample: 0 });
    // Input (as read, cleaned, 3 canonical copies), labels and distances, centroids, the backend's
    // float32 copy, the scoring copies.
    expect(kmeans).toBe(
      Math.ceil(1.25 * (5 * 20_000 * 8 * 8 + 20_000 * 16 + 5 * 8 * 32 + 20_000 * 8 * 4 + 20_000 * 8 * 8)),
    );
    const esn = estimateJobBytes({
      ...base,
      rawFeatures: 208,
      features: 208,
      chunkBytesPerSample: 1600,
      weights: 10_800,
    });
    // The features dominate: three n x 208 float64 arrays.
    expect(esn).toBeGreaterThan(3 * 20_000 * 208 * 8);
    // At most eight of them (outputs, chunks, assembled, result, K-means' and scoring copies) and
    // the encoder's chunk twice, with the headroom.
    expect(esn).toBeLessThan(1.25 * (8 * 20_000 * 208 * 8 + 2 * 20_000 * 1600));
  });

  it('counts the PCA: the d x d covariance of tall features, the Gram matrix of wide ones', () => {
    const hybrid = { k: 2, weights: 0, deviceBytesPerValue: 4, chunkBytesPerSample: 0, pca: true };
    // The reported case: 20 rows of 20,000 columns (plus 214 encoder features) took 6.5 GB with a
    // d x d covariance; the Gram path needs a few MB.
    const wide = estimateJob({ ...hybrid, rows: 20, cols: 20_000, rawFeatures: 20_214, features: 10 });
    expect(wide.oversized).toBeUndefined();
    expect(wide.bytes).toBeLessThan(64 * MiB);
    // Tall, the covariance is there: twice 2,000^2 doubles at least.
    const tall = estimateJob({ ...hybrid, rows: 10_000, cols: 1786, rawFeatures: 2000, features: 10 });
    expect(tall.bytes).toBeGreaterThan(2 * 2000 * 2000 * 8 + 3 * 10_000 * 2000 * 8);
  });

  it('names the first array past the engine’s typed-array limit', () => {
    const { oversized } = estimateJob({
      rows: 100_000,
      cols: 4,
      k: 3,
      rawFeatures: 50_000,
      features: 50_000,
      chunkBytesPerSample: 8,
      weights: 0,
      deviceBytesPerValue: 4,
    });
    expect(oversized).toMatchObject({ what: 'the encoder outputs', elements: 5e9 });
    expect(oversized!.elements).toBeGreaterThan(MAX_TYPED_ARRAY_LENGTH);
  });

  it('checks that each warning threshold is below its critical one', () => {
    const { config, problems } = checkConfig({ monitoring: { cpuWarning: 0.95, cpuCritical: 0.9 } });
    expect(config).toBeUndefined();
    expect(problems[0]).toMatchObject({ path: 'monitoring.cpuWarning', severity: 'error' });
  });
});

describe('a job past the memory budget', () => {
  it('is refused with RESOURCE_EXHAUSTED before any backend starts', async () => {
    const { registry, started } = countingJsRegistry();
    const clusterer = new NeuromorphicClusterer({
      method: 'esn',
      nClusters: 3,
      backend: 'js',
      registry,
      logger: createLogger({ level: 'silent' }),
      // A budget smaller than what the process already holds: nothing more fits.
      config: { monitoring: { memoryBudgetMB: 1 } },
    });
    const e = await failure(clusterer.fit(IRIS));
    expect(e.code).toBe('NEUROCLUSTER_ERR_RESOURCE_EXHAUSTED');
    expect(e.message).toMatch(
      /^the job needs about \d+ MiB; the process holds \d+ MiB of a memory budget of 1 MiB/,
    );
    expect(e.context.sizes).toMatchObject({ rows: 150, columns: 4 });
    expect(started()).toBe(0);
    // The same estimate the library offers before a fit.
    const bytes = await clusterer.estimateMemory(IRIS);
    expect(e.message).toContain(`needs about ${Math.ceil(bytes / MiB)} MiB`);
  });

  it('is refused with RESOURCE_EXHAUSTED naming an array past the typed-array limit, whatever the budget', async () => {
    const { registry, started } = countingJsRegistry();
    // 10,000 rows of 4,096 units at 120 time points and the 2 inputs: 4.9e9 values in one array.
    const rows = Array.from({ length: 10_000 }, (_, i) => [i % 7, (i * 3) % 11]);
    const clusterer = new NeuromorphicClusterer({
      method: 'esn',
      nClusters: 3,
      backend: 'js',
      registry,
      logger: createLogger({ level: 'silent' }),
      config: {
        monitoring: { memoryBudgetMB: 64 * 1024 * 1024 },
        encoders: { esn: { units: 4096, readout: 'times', steps: 120, timePoints: 120 } },
      },
    });
    const e = await failure(clusterer.fit(rows));
    expect(e.code).toBe('NEUROCLUSTER_ERR_RESOURCE_EXHAUSTED');
    expect(e.message).toMatch(
      /^the encoder outputs would be one array of 4915220000 values, past this engine's limit of \d+ per typed array/,
    );
    expect(started()).toBe(0);
  });

  it('runs when the budget has room', async () => {
    const clusterer = new NeuromorphicClusterer({
      method: 'esn',
      nClusters: 3,
      backend: 'js',
      logger: createLogger({ level: 'silent' }),
      config: { monitoring: { memoryBudgetMB: 64 * 1024 } },
    });
    expect((await clusterer.fit(IRIS)).labels).toHaveLength(150);
  });

  it("counts every member's weights, and the states an ESN's state PCA is fitted on", async () => {
    const estimate = (config: ConfigOverrides) =>
      new NeuromorphicClusterer({
        method: 'esn',
        nClusters: 3,
        backend: 'js',
        logger: createLogger({ level: 'silent' }),
        config: { ...config, data: { labelColumn: 'label', ...config.data } },
      }).estimateMemory(SERIES);
    const units = 1000;
    const one = await estimate({ encoders: { esn: { units } } });
    const three = await estimate({ encoders: { members: 3, esn: { units } } });
    // Two more reservoirs of 1,000 x (1,000 + 1) weights, held twice (the kernels' working copies).
    expect(three - one).toBeGreaterThanOrEqual(2 * units * (units + 1) * 8 * 2);
    const reduced = await estimate({ encoders: { esn: { units, stateComponents: 10 } } });
    // 64 MB of sampled states for so wide a reservoir (8,388 rows), and two rows more (the
    // narrower model space it reads saves far less than that on 24 series).
    expect(reduced - one).toBeGreaterThanOrEqual((Math.floor((64 * MiB) / (8 * units)) + 2) * units * 8);
  });
});
