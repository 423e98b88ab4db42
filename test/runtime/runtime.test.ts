/**
 * The runtime owns what a process's fits share: two runtimes in one process keep their own
 * backends, metrics, operations, trackers and homes, and read the environment they are given.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Backend, BackendRegistry } from '../../src/backends/backend.js';
import { JsBackend, jsBackendFactory } from '../../src/backends/js/js-backend.js';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { resolveConfig } from '../../src/config/load.js';
import { createRuntime, defaultRuntime } from '../../src/runtime/runtime.js';
import { tempDir } from '../helpers.js';

const dirs: string[] = [];
function home(): string {
  const dir = tempDir();
  dirs.push(dir);
  return join(dir, 'home');
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const ROWS = Array.from({ length: 60 }, (_, i) => [
  (i % 3) * 10 + Math.sin(i),
  (i % 3) * -5 + Math.cos(i * 3),
]);

function jsOnly(): BackendRegistry {
  const registry = new BackendRegistry();
  registry.register(jsBackendFactory);
  return registry;
}

/** The value of a metric family's sample with these labels in a text exposition, or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

describe('createRuntime', () => {
  it('keeps the metrics, operations and breaker state of its fits apart from another runtime', async () => {
    const a = createRuntime({ env: { NEUROCLUSTER_HOME: home() }, registry: jsOnly() });
    const b = createRuntime({ env: { NEUROCLUSTER_HOME: home() }, registry: jsOnly() });
    const fitOn = (runtime: typeof a, faults?: string) =>
      new NeuromorphicClusterer({
        runtime,
        method: 'kmeans',
        nClusters: 3,
        backend: 'js',
        config: {
          logging: { level: 'silent' },
          ...(faults ? { faults: { inject: faults }, retry: { maxRetries: 0 } } : {}),
        },
      }).fit(ROWS);
    const result = await fitOn(a, 'kernel-throw:js@1');
    expect(result.fallback?.code).toBe('NEUROCLUSTER_ERR_KERNEL');
    await fitOn(b);
    await fitOn(b);

    const textA = await a.metrics.text();
    const textB = await b.metrics.text();
    // The resilience layer's events reach the metrics of the runtime it ran on, and only those.
    expect(sample(textA, 'neurocluster_fallbacks_total', 'reason="kernel"')).toBe(1);
    expect(sample(textA, 'neurocluster_faults_injected_total', 'kind="kernel-throw"')).toBeGreaterThan(0);
    expect(sample(textA, 'neurocluster_errors_total', 'category="kernel"')).toBeGreaterThan(0);
    expect(sample(textB, 'neurocluster_fallbacks_total', 'reason="kernel"')).toBeUndefined();
    expect(
      sample(textB, 'neurocluster_operations_total', 'method="kmeans",backend="js",outcome="succeeded"'),
    ).toBe(2);
    expect(a.operations.recent(10)).toHaveLength(1);
    expect(b.operations.recent(10)).toHaveLength(2);
    // Each runtime keeps its breaker state in its own home, and its book lists what ran there.
    expect(a.home).not.toBe(b.home);
    for (const r of [a, b]) {
      expect(existsSync(join(r.home, 'state', 'breakers.json'))).toBe(true);
      expect(r.breakers(resolveConfig()).file).toBe(join(r.home, 'state', 'breakers.json'));
    }
    await Promise.all([a.close(), b.close()]);
  });

  it('reads the environment it is given, not the process one', () => {
    const runtime = createRuntime({
      env: { NEUROCLUSTER_HOME: home(), NEUROCLUSTER_WASM_THREADS: '3', NEUROCLUSTER_METRICS: 'off' },
      registry: jsOnly(),
    });
    expect(process.env.NEUROCLUSTER_WASM_THREADS).toBeUndefined();
    const clusterer = new NeuromorphicClusterer({ runtime, config: { logging: { level: 'silent' } } });
    expect(clusterer.config.engine.wasm.threads).toBe(3);
    expect(runtime.metrics.enabled).toBe(false);
    expect(defaultRuntime().metrics.enabled).toBe(true);
    // The runtime's own options sit under the clusterer's.
    const tuned = createRuntime({
      env: {},
      config: { kmeans: { nInit: 2, maxIter: 7 } },
      registry: jsOnly(),
    });
    const c = new NeuromorphicClusterer({ runtime: tuned, config: { kmeans: { maxIter: 9 } } });
    expect(c.config.kmeans.nInit).toBe(2);
    expect(c.config.kmeans.maxIter).toBe(9);
  });

  it("reads device memory from its own registry's GPU, not the default registry's", async () => {
    // The JS kernels under the GPU's name, with a pool that holds 3 of its 4 MiB.
    const gpu = Object.assign(new JsBackend(), {
      name: 'webgpu',
      memoryStats: () => ({
        used: 3 * 2 ** 20,
        total: 4 * 2 ** 20,
        allocated: 3 * 2 ** 20,
        peak: 3 * 2 ** 20,
      }),
    }) as unknown as Backend;
    const registry = new BackendRegistry();
    registry.register({ name: 'webgpu', priority: 1, smallProblems: true, create: async () => gpu });
    const runtime = createRuntime({ env: { NEUROCLUSTER_HOME: home() }, registry });
    const config = resolveConfig();
    expect(runtime.resourceMonitor(config).sample().device).toBeUndefined();
    await registry.get('webgpu');
    const device = runtime.resourceMonitor(config).sample().device;
    expect(device?.fraction).toBeCloseTo(0.75, 6);
    // The default runtime never started that GPU, so it reports none.
    expect(defaultRuntime().resourceMonitor(config).sample().device).toBeUndefined();
    const text = await runtime.metrics.text();
    expect(sample(text, 'neurocluster_device_memory_bytes', 'state="in_use"')).toBe(3 * 2 ** 20);
    await runtime.close();
  });
});
