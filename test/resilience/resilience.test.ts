/**
 * The resilience layer, driven through the fault switch (the real kernels fail as configured), not
 * by mocking the engine: every fault ends in CPU K-means labels with the right reason, a hang is
 * cut off by the deadline, breakers open and close, and many requests under random faults are all
 * answered.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { BackendRegistry } from '../../src/backends/backend.js';
import { defaultRegistry } from '../../src/backends/index.js';
import { JsBackend } from '../../src/backends/js/js-backend.js';
import type { WebGpuBackend } from '../../src/backends/webgpu/webgpu-backend.js';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { FAULT_KINDS, parseFault } from '../../src/config/faults.js';
import type { ConfigOverrides } from '../../src/config/schema.js';
import { BackendError, TimeoutError } from '../../src/core/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { BreakerBook, type BreakerSettings } from '../../src/resilience/breakers.js';
import { withFaults } from '../../src/resilience/faults.js';
import { ErrorTracker } from '../../src/resilience/tracker.js';
import { breakerSettings, errorTrackerFor } from '../../src/runtime/runtime.js';
import { countingJsRegistry, failure, ROOT, skipUnlessRequired, tempDir } from '../helpers.js';

const IRIS = join(ROOT, 'examples/iris.csv');
const quiet = createLogger({ level: 'silent' });
/** Fast retries: the policy is the same, the waits are short. */
const FAST: ConfigOverrides = { retry: { baseDelay: '5ms', maxDelay: '20ms' } };

/** Every test keeps its breaker states in a home of its own. */
beforeEach(() => {
  process.env.NEUROCLUSTER_HOME = tempDir();
});

function clusterer(
  config: ConfigOverrides,
  extra: { registry?: BackendRegistry; tracker?: ErrorTracker } = {},
) {
  return new NeuromorphicClusterer({
    method: 'esn',
    nClusters: 3,
    seed: 3,
    logger: quiet,
    config: { ...FAST, data: { labelColumn: 'species' }, ...config },
    ...extra,
  });
}

/** The labels of the fallback itself: CPU K-means on the cleaned input. */
async function cpuKMeansLabels(): Promise<Int32Array> {
  const plain = new NeuromorphicClusterer({
    method: 'kmeans',
    nClusters: 3,
    seed: 3,
    backend: 'js',
    logger: quiet,
    config: { data: { labelColumn: 'species' } },
  });
  return (await plain.fit(IRIS)).labels;
}

describe('fault switch', () => {
  it('parses <kind>[:<backend>][@<probability>] and refuses anything else', () => {
    expect(parseFault('kernel-throw')).toEqual({ kind: 'kernel-throw', backend: undefined, probability: 1 });
    expect(parseFault('oom:webgpu@0.25')).toEqual({ kind: 'oom', backend: 'webgpu', probability: 0.25 });
    expect(parseFault(' ')).toBeUndefined();
    expect(() => parseFault('melt')).toThrow(/unknown kind "melt"/);
    expect(() => parseFault('nan:tpu')).toThrow(/unknown backend "tpu"/);
    expect(() => parseFault('nan@1.5')).toThrow(/probability must be in \(0, 1\]/);
  });

  const cases: [string, string, string][] = [
    ['kernel-throw', 'kernel', 'NEUROCLUSTER_ERR_KERNEL'],
    ['device-lost', 'device-lost', 'NEUROCLUSTER_ERR_DEVICE_LOST'],
    ['oom', 'out-of-memory', 'NEUROCLUSTER_ERR_OUT_OF_MEMORY'],
    ['nan', 'numerical', 'NEUROCLUSTER_ERR_NUMERICAL'],
    ['kernel-hang', 'timeout', 'NEUROCLUSTER_ERR_TIMEOUT'],
    ['worker-crash:wasm', 'kernel', 'NEUROCLUSTER_ERR_KERNEL'],
  ];
  it.each(cases)('%s ends in CPU K-means labels, marked with reason %s', async (fault, reason, code) => {
    const expected = await cpuKMeansLabels();
    const backend = fault.endsWith(':wasm') ? 'wasm' : 'js';
    const result = await clusterer({ engine: { backend }, faults: { inject: fault }, timeout: '2s' }).fit(
      IRIS,
    );
    expect(result.fallbackUsed).toBe(true);
    expect(result.fallback).toEqual({ reason, code });
    expect(result.backend).toBe('js');
    expect(Array.from(result.labels)).toEqual(Array.from(expected));
    expect(result.backendsTried.at(-1)).toEqual({ name: 'js', ok: true, reason: 'fallback: CPU K-means' });
    expect(result.toJSON()).toMatchObject({ fallbackUsed: true, fallback: { reason, code } });
  });

  it('nan poisons the output of every kernel that returns numbers, the moments too', async () => {
    const js = new JsBackend();
    const faulty = withFaults(js, parseFault('nan'), new AbortController().signal);
    const m = { rows: 3, cols: 2, data: Float64Array.from([1, 2, 3, 4, 5, 6]) };
    expect((await faulty.columnMoments(m)).means[0]).toBeNaN();
    const block = { features: m, keep: [0, 1], means: [0, 0], scale: 1 };
    expect((await faulty.assembleBlocks([block])).data[0]).toBeNaN();
    expect((await faulty.matmul(m, { rows: 2, cols: 1, data: Float64Array.from([1, 1]) })).data[0]).toBeNaN();
  });

  it('covers every kind docs/resilience.md lists', () => {
    expect(cases.map(([f]) => f.split(':')[0]).sort()).toEqual([...FAULT_KINDS].sort());
  });

  it('re-creates a lost device before each retry', async () => {
    const { registry, started } = countingJsRegistry();
    const result = await clusterer(
      {
        engine: { backend: 'js' },
        faults: { inject: 'device-lost' },
        retry: { ...FAST.retry, maxRetries: 2 },
      },
      { registry },
    ).fit(IRIS);
    expect(result.fallback?.reason).toBe('device-lost');
    // The first start, then one new device before each of the two retries (the fallback's
    // CPU K-means uses the same registry's js backend, already started).
    expect(started()).toBe(3);
  });

  it('never retries an out-of-memory error; WebGPU re-plans with smaller chunks instead', async (ctx) => {
    const tracker = new ErrorTracker();
    const result = await clusterer({ engine: { backend: 'js' }, faults: { inject: 'oom' } }, { tracker }).fit(
      IRIS,
    );
    // One try, no retry: the JS backend has no memory budget to shrink.
    expect(tracker.timeline(result.correlationId!).map((e) => e.code)).toEqual([
      'NEUROCLUSTER_ERR_OUT_OF_MEMORY',
    ]);
    const gpu = new NeuromorphicClusterer({
      method: 'kmeans',
      nClusters: 3,
      backend: 'webgpu',
      logger: quiet,
      config: { ...FAST, faults: { inject: 'oom:webgpu' } },
    });
    const onGpu = await gpu.fit(IRIS).catch((e: Error) => e);
    if (onGpu instanceof Error) return skipUnlessRequired(ctx.skip, onGpu);
    expect(onGpu.fallback?.reason).toBe('out-of-memory');
    // Each try halved the budget, down to its floor, before the path gave up.
    const device = (await defaultRegistry.get('webgpu')) as WebGpuBackend;
    expect(device.memoryBudgetBytes).toBe(16 * 1024 * 1024);
  });

  it('surfaces the error instead with fallback.enabled false', async () => {
    const e = await failure(
      clusterer({
        engine: { backend: 'js' },
        faults: { inject: 'kernel-throw' },
        fallback: { enabled: false },
      }).fit(IRIS),
    );
    expect(e.code).toBe('NEUROCLUSTER_ERR_KERNEL');
    expect(e.exitCode).toBe(1);
    expect(e.context).toMatchObject({
      backend: 'js',
      phase: 'encode',
      sizes: { rows: 150, columns: 4, k: 3 },
    });
  });

  it('degrades webgpu -> wasm -> js under auto, listing what it tried', async () => {
    // Only wasm fails; a problem this small would skip wasm, so the threshold is off.
    const result = await clusterer({
      engine: { smallProblemSize: 0 },
      faults: { inject: 'kernel-throw:wasm' },
      retry: { ...FAST.retry, maxRetries: 0 },
    }).fit(IRIS);
    expect(result.fallbackUsed).toBe(false);
    expect(result.backend).toBe('js');
    const names = result.backendsTried.map((t) => `${t.name}:${t.ok}`);
    expect(names.slice(-2)).toEqual(['wasm:false', 'js:true']);
  });

  it('answers a hang within the deadline, the hung kernel left behind', async () => {
    const t0 = performance.now();
    const result = await clusterer({
      engine: { backend: 'js' },
      faults: { inject: 'kernel-hang' },
      timeout: '500ms',
    }).fit(IRIS);
    expect(result.fallback).toEqual({ reason: 'timeout', code: 'NEUROCLUSTER_ERR_TIMEOUT' });
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('stops a JS dynamics kernel at the deadline, between time steps of one long sample', async () => {
    // No fault: a real reservoir whose every sample alone takes seconds (R 300, T 20,000: 3.6
    // GFLOP), far past the deadline; the kernel yields between time steps, so the deadline cuts
    // it off inside the first sample (the rest of the time: making the weights, the fallback).
    const t0 = performance.now();
    const result = await clusterer({
      engine: { backend: 'js' },
      encoders: { esn: { units: 300, steps: 20_000 } },
      timeout: '300ms',
    }).fit(IRIS);
    expect(result.fallback?.reason).toBe('timeout');
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

/** Consecutive-strategy breaker settings, as the clusterer derives them from the configuration. */
function consecutive(failureThreshold: number, recoveryTimeoutMs: number): BreakerSettings {
  return { ...breakerSettings(), failureThreshold, recoveryTimeoutMs, samplingWindowMs: recoveryTimeoutMs };
}

describe('circuit breaker', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('opens after failureThreshold failures, skips the backend while open, and closes after a half-open probe', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const breaker: ConfigOverrides = { circuitBreaker: { failureThreshold: 2, recoveryTimeout: '60s' } };
    const failing = clusterer({
      ...breaker,
      engine: { backend: 'js' },
      faults: { inject: 'kernel-throw' },
      retry: { ...FAST.retry, maxRetries: 0 },
    });
    expect((await failing.fit(IRIS)).fallback?.reason).toBe('kernel');
    expect((await failing.fit(IRIS)).fallback?.reason).toBe('kernel');
    // Open: the request does not reach the backend, whose kernels would have thrown.
    const healthy = clusterer({ ...breaker, engine: { backend: 'js' } });
    expect((await healthy.fit(IRIS)).fallback).toEqual({
      reason: 'circuit-open',
      code: 'NEUROCLUSTER_ERR_CIRCUIT_OPEN',
    });
    // Kept between processes: a new book over the same file sees it open.
    const file = join(process.env.NEUROCLUSTER_HOME!, 'state', 'breakers.json');
    expect(new BreakerBook(consecutive(2, 60_000), file).list()).toEqual([
      expect.objectContaining({ key: expect.stringMatching(/^js\|/), state: 'open' }),
    ]);
    // After the recovery time, one probe goes through; it succeeds and closes the breaker.
    vi.setSystemTime(Date.now() + 60_001);
    const probe = await healthy.fit(IRIS);
    expect(probe.fallbackUsed).toBe(false);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<
      string,
      { policy: { ownState: { value: number } } }
    >;
    const [key] = Object.keys(saved);
    expect(key).toMatch(/^js\|/);
    // cockatiel's CircuitState.Closed.
    expect(saved[key!]!.policy.ownState.value).toBe(0);
  });

  it('is not consulted when circuitBreaker.enabled is false', async () => {
    const failing = clusterer({
      circuitBreaker: { enabled: false, failureThreshold: 1 },
      engine: { backend: 'js' },
      faults: { inject: 'kernel-throw' },
      retry: { ...FAST.retry, maxRetries: 0 },
    });
    for (let i = 0; i < 3; i++) expect((await failing.fit(IRIS)).fallback?.reason).toBe('kernel');
  });

  it('forgets a saved state after recoveryTimeout', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const file = join(process.env.NEUROCLUSTER_HOME!, 'state', 'breakers.json');
    const settings = consecutive(1, 1000);
    const book = new BreakerBook(settings, file);
    book.policy('gpu|A');
    book.save('gpu|A');
    expect(new BreakerBook(settings, file).list().map((b) => b.key)).toEqual(['gpu|A']);
    vi.setSystemTime(Date.now() + 1001);
    expect(new BreakerBook(settings, file).list()).toEqual([]);
  });

  it('can open on a failure ratio over a sampling window instead', async () => {
    const sampling: ConfigOverrides = {
      circuitBreaker: { strategy: 'sampling', samplingWindow: '60s', failureRatio: 0.5, minimumRequests: 2 },
      retry: { ...FAST.retry, maxRetries: 0 },
      engine: { backend: 'js' },
    };
    const failing = clusterer({ ...sampling, faults: { inject: 'kernel-throw' } });
    const reasons = [];
    for (let i = 0; i < 4; i++) reasons.push((await failing.fit(IRIS)).fallback?.reason);
    expect(reasons.slice(-1)).toEqual(['circuit-open']);
  });
});

describe('under random faults', () => {
  it('answers every one of 200 requests, and counts its fallbacks exactly', async () => {
    let warned = 0;
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n')) if (line.includes('answered by CPU K-means')) warned++;
        done();
      },
    });
    const logger = createLogger({ level: 'warn', destination: sink });
    const kinds = ['kernel-throw', 'device-lost', 'oom', 'nan', 'kernel-hang'];
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const requests = Array.from({ length: 200 }, (_, i) => ({
      fault: random() < 0.2 ? undefined : `${kinds[i % kinds.length]}@${(0.2 + 0.6 * random()).toFixed(2)}`,
    }));
    const results: { fallback: boolean; n: number }[] = [];
    // Eight at a time, sharing the breakers, the registry and the tracker, as a service would.
    for (let i = 0; i < requests.length; i += 8) {
      const batch = requests.slice(i, i + 8).map(async ({ fault }) => {
        const c = new NeuromorphicClusterer({
          method: 'esn',
          nClusters: 3,
          seed: 1,
          backend: 'js',
          logger,
          config: {
            ...FAST,
            timeout: '1s',
            encoders: { esn: { units: 20, steps: 10 } },
            ...(fault ? { faults: { inject: fault } } : {}),
          },
        });
        const r = await c.fit(IRIS);
        return { fallback: r.fallbackUsed, n: r.labels.length };
      });
      results.push(...(await Promise.all(batch)));
    }
    expect(results).toHaveLength(200);
    expect(results.every((r) => r.n === 150)).toBe(true);
    const fallbacks = results.filter((r) => r.fallback).length;
    expect(fallbacks).toBeGreaterThan(20);
    expect(fallbacks).toBeLessThan(200);
    expect(warned).toBe(fallbacks);
  }, 120_000);
});

describe('errors', () => {
  it('carry a severity, an errorId, the correlation ID and context, and recovery actions from one table', async () => {
    const tracker = new ErrorTracker();
    const result = await clusterer(
      { engine: { backend: 'js' }, faults: { inject: 'kernel-throw' } },
      { tracker },
    ).fit(IRIS);
    const timeline = tracker.timeline(result.correlationId!);
    // The first try and two retries.
    expect(timeline.map((e) => e.code)).toEqual(Array(3).fill('NEUROCLUSTER_ERR_KERNEL'));
    expect(timeline[0]).toMatchObject({
      category: 'kernel',
      severity: 'high',
      backend: 'js',
      phase: 'encode',
    });
    expect(new Set(timeline.map((e) => e.errorId)).size).toBe(3);
    const actions = tracker.suggestRecoveryActions(timeline[2]!.errorId);
    expect(actions[0]).toMatch(/retried/);
    expect(actions.at(-1)).toMatch(/happened 3 times .* on backend js: a persistent fault/);
  });

  it('raise an alert once when the rate threshold is crossed, and again after it falls back', () => {
    let now = 0;
    const tracker = new ErrorTracker({
      rules: [{ name: 'kernel-burst', threshold: 3, windowMs: 1000, category: 'kernel' }],
      now: () => now,
    });
    const alerts: number[] = [];
    tracker.on('alert', (a) => alerts.push(a.count));
    const kernel = () => new BackendError('boom', 'NEUROCLUSTER_ERR_KERNEL');
    for (let i = 0; i < 5; i++) tracker.record(kernel());
    tracker.record(new TimeoutError('late'));
    expect(alerts).toEqual([3]);
    expect(tracker.counts()).toMatchObject({ total: 6, byCategory: { kernel: 5, timeout: 1 } });
    now = 5000;
    expect(tracker.counts(1000).total).toBe(0);
    tracker.record(kernel());
    tracker.record(kernel());
    tracker.record(kernel());
    expect(alerts).toEqual([3, 3]);
  });

  it('are tracked per errorTracking settings: the alert threshold of the configuration raises an alert', async () => {
    const config: ConfigOverrides = {
      engine: { backend: 'js' },
      faults: { inject: 'oom' },
      errorTracking: { window: '10m', alertThreshold: 2 },
    };
    const tracker = errorTrackerFor(new NeuromorphicClusterer({ config }).config);
    const alerts: string[] = [];
    tracker.on('alert', (a) => alerts.push(a.rule.name));
    await clusterer(config).fit(IRIS);
    expect(alerts).toEqual([]);
    await clusterer(config).fit(IRIS);
    expect(alerts).toEqual(['error-rate']);
  });

  it('keep the error of one tracker record once, however often it is recorded', () => {
    const tracker = new ErrorTracker();
    const e = new BackendError('boom', 'NEUROCLUSTER_ERR_KERNEL');
    tracker.record(e);
    tracker.record(e);
    expect(tracker.counts().total).toBe(1);
  });
});
