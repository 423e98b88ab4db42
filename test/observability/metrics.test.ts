/**
 * Metrics read from the registry after real runs (success, fallback, failure), checked by their
 * exact increments; the batch exports (--metrics-out, --pushgateway against a local server that
 * records the push); the health score; and that every family follows Prometheus naming.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { type Backend, BackendRegistry, KERNEL_NAMES } from '../../src/backends/backend.js';
import { jsBackendFactory } from '../../src/backends/js/js-backend.js';
import { main } from '../../src/cli/main.js';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import type { ConfigOverrides } from '../../src/config/schema.js';
import { createLogger } from '../../src/observability/logger.js';
import { HEALTH_WEIGHTS, healthScore, metrics } from '../../src/observability/metrics.js';
import { ROOT, tempDir } from '../helpers.js';

const IRIS = join(ROOT, 'examples/iris.csv');
const quiet = createLogger({ level: 'silent' });

/** The value of a sample (`name` may end in _count, _sum or _bucket), summed over series matching `labels`. */
async function value(name: string, labels: Record<string, string> = {}): Promise<number> {
  const family = name.replace(/_(count|sum|bucket)$/, '');
  const metric = metrics.registry.getSingleMetric(family) ?? metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter((v) => {
      const sample = (v as { metricName?: string }).metricName;
      return sample === undefined || sample === name;
    })
    .filter((v) => Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l))
    .reduce((s, v) => s + v.value, 0);
}

/** Runs `work` and returns how much each sample grew. */
async function delta(
  samples: Record<string, [string, Record<string, string>?]>,
  work: () => Promise<unknown>,
): Promise<Record<string, number>> {
  const before: Record<string, number> = {};
  for (const [key, [name, labels]] of Object.entries(samples)) before[key] = await value(name, labels);
  await work();
  const out: Record<string, number> = {};
  for (const [key, [name, labels]] of Object.entries(samples))
    out[key] = (await value(name, labels)) - before[key]!;
  return out;
}

/** A registry whose JS backend counts its own kernel calls, apart from the metrics. */
function countingKernels(): { registry: BackendRegistry; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const registry = new BackendRegistry();
  registry.register({
    ...jsBackendFactory,
    create: async (context) => {
      const real = await jsBackendFactory.create(context);
      return new Proxy(real, {
        get(target, key) {
          const v = Reflect.get(target, key);
          if (typeof v !== 'function') return v;
          if ((KERNEL_NAMES as readonly (string | symbol)[]).includes(key)) {
            return (...args: unknown[]) => {
              calls.set(key as string, (calls.get(key as string) ?? 0) + 1);
              return v.apply(target, args);
            };
          }
          return v.bind(target);
        },
      }) as Backend;
    },
  });
  return { registry, calls };
}

function clusterer(config: ConfigOverrides = {}, registry?: BackendRegistry) {
  return new NeuromorphicClusterer({
    method: 'esn',
    nClusters: 3,
    seed: 5,
    backend: 'js',
    logger: quiet,
    config: { retry: { baseDelay: '1ms', maxDelay: '2ms', maxRetries: 2 }, ...config },
    ...(registry ? { registry } : {}),
  });
}

describe('metrics after real runs', () => {
  it('count a successful fit: its operation, rows, phases and every kernel call, exactly', async () => {
    const { registry, calls } = countingKernels();
    const c = clusterer({ data: { labelColumn: 'species' } }, registry);
    const d = await delta(
      {
        ops: ['neurocluster_operations_total', { method: 'esn', backend: 'js', outcome: 'succeeded' }],
        samples: ['neurocluster_samples_processed_total'],
        encode: ['neurocluster_phase_duration_seconds_count', { phase: 'encode' }],
        reduce: ['neurocluster_phase_duration_seconds_count', { phase: 'reduce' }],
        fits: ['neurocluster_operation_duration_seconds_count', { kind: 'fit', outcome: 'succeeded' }],
        dispatches: ['neurocluster_kernel_dispatches_total', { backend: 'js' }],
        reservoir: ['neurocluster_kernel_dispatches_total', { backend: 'js', kernel: 'reservoirRun' }],
        reservoirTimed: [
          'neurocluster_kernel_duration_seconds_count',
          { backend: 'js', kernel: 'reservoirRun' },
        ],
        reservoirRows: ['neurocluster_kernel_samples_total', { backend: 'js', kernel: 'reservoirRun' }],
        starts: ['neurocluster_backend_start_duration_seconds_count', { backend: 'js' }],
        rows: ['neurocluster_data_rows_read_total', { source: 'file' }],
        fallbacks: ['neurocluster_fallbacks_total'],
        errors: ['neurocluster_errors_total'],
      },
      () => c.fit(IRIS),
    );
    const kernelCalls = [...calls.values()].reduce((a, b) => a + b, 0);
    expect(kernelCalls).toBeGreaterThan(0);
    expect(d).toEqual({
      ops: 1,
      samples: 150,
      encode: 1,
      reduce: 0, // esn has no PCA; a phase it did not go through is not observed
      fits: 1,
      dispatches: kernelCalls,
      reservoir: calls.get('reservoirRun'),
      reservoirTimed: calls.get('reservoirRun'),
      reservoirRows: 150 * calls.get('reservoirRun')!,
      starts: 1,
      rows: 150,
      fallbacks: 0,
      errors: 0,
    });
    expect(await value('neurocluster_quality_silhouette', { method: 'esn' })).toBeGreaterThan(0);
    expect(await value('neurocluster_quality_adjusted_rand_index', { method: 'esn' })).toBeGreaterThan(0);
    expect(await value('neurocluster_kmeans_clusters', { method: 'esn' })).toBe(3);
  });

  it('count a fallback: the reason, the retries, each injected fault, each error once', async () => {
    // Every kernel call throws: one try and maxRetries (2) retries, then CPU K-means answers.
    const c = clusterer({ faults: { inject: 'kernel-throw' } });
    const d = await delta(
      {
        degraded: ['neurocluster_operations_total', { method: 'esn', outcome: 'degraded' }],
        fallbacks: ['neurocluster_fallbacks_total', { reason: 'kernel' }],
        retries: ['neurocluster_retries_total'],
        backoffs: ['neurocluster_retry_backoff_seconds_count'],
        faults: ['neurocluster_faults_injected_total', { kind: 'kernel-throw' }],
        errors: ['neurocluster_errors_total', { category: 'kernel' }],
        byCode: ['neurocluster_errors_by_code_total', { code: 'NEUROCLUSTER_ERR_KERNEL' }],
        failures: ['neurocluster_kernel_failures_total', { backend: 'js' }],
      },
      async () => {
        const result = await c.fit(IRIS);
        expect(result.fallbackUsed).toBe(true);
      },
    );
    expect(d).toEqual({
      degraded: 1,
      fallbacks: 1,
      retries: 2,
      backoffs: 2,
      faults: 3,
      errors: 3,
      byCode: 3,
      // The fault switch throws before the kernel runs: the kernel itself never failed.
      failures: 0,
    });
  });

  it('count a failure: the operation failed, its error by category and code, in-flight back to 0', async () => {
    const c = clusterer({ faults: { inject: 'kernel-throw' }, fallback: { enabled: false } });
    const d = await delta(
      {
        failed: ['neurocluster_operations_total', { method: 'esn', backend: 'js', outcome: 'failed' }],
        failedFits: ['neurocluster_operation_duration_seconds_count', { kind: 'fit', outcome: 'failed' }],
        fallbacks: ['neurocluster_fallbacks_total'],
        errors: ['neurocluster_errors_total', { category: 'kernel' }],
        samples: ['neurocluster_samples_processed_total'],
      },
      () => c.fit(IRIS).catch(() => undefined),
    );
    expect(d).toEqual({ failed: 1, failedFits: 1, fallbacks: 0, errors: 3, samples: 0 });
    expect(await value('neurocluster_operations_in_flight', { kind: 'fit' })).toBe(0);
  });

  it('count failed quality gates by gate, and saves with their persist phase', async () => {
    const dir = tempDir();
    const c = clusterer({ qualityGates: { minSilhouette: 0.99 } });
    const d = await delta(
      {
        gate: ['neurocluster_quality_gate_failures_total', { gate: 'silhouette' }],
        saves: ['neurocluster_model_operations_total', { operation: 'save', outcome: 'ok' }],
        persist: ['neurocluster_phase_duration_seconds_count', { phase: 'persist' }],
        bytes: ['neurocluster_model_file_bytes_count'],
      },
      async () => {
        await c.fit(IRIS);
        await c.save(join(dir, 'm.json'));
      },
    );
    expect(d).toEqual({ gate: 1, saves: 1, persist: 1, bytes: 1 });
  });
});

describe('metric families', () => {
  it('are at least 45 neurocluster_* families, named the Prometheus way', async () => {
    const all = metrics.registry.getMetricsAsArray();
    const names = all.map((m) => (m as unknown as { name: string }).name);
    expect(names.length).toBeGreaterThanOrEqual(45);
    for (const m of await metrics.registry.getMetricsAsJSON()) {
      expect(m.name).toMatch(/^neurocluster_[a-z0-9_]+$/);
      if (String(m.type) === 'counter') expect(m.name).toMatch(/_total$/);
      else expect(m.name).not.toMatch(/_total$/);
      if (String(m.type) === 'histogram') expect(m.name).toMatch(/_(seconds|bytes|rows|iterations)$/);
      expect(m.help.length).toBeGreaterThan(10);
    }
  });

  it('include the names alert rules and dashboards depend on, with their labels', async () => {
    const fixed: Record<string, string[]> = {
      neurocluster_operations_total: ['method', 'backend', 'outcome'],
      neurocluster_phase_duration_seconds: ['phase'],
      neurocluster_kernel_dispatches_total: ['backend', 'kernel'],
      neurocluster_kernel_duration_seconds: ['backend', 'kernel'],
      neurocluster_fallbacks_total: ['reason'],
      neurocluster_circuit_breaker_state: ['backend'],
      neurocluster_retries_total: [],
      neurocluster_errors_total: ['category'],
      neurocluster_device_memory_bytes: ['state'],
      neurocluster_samples_processed_total: [],
      neurocluster_quality_silhouette: ['method'],
      neurocluster_quality_gate_failures_total: ['gate'],
      neurocluster_system_health_score: [],
    };
    for (const [name, labels] of Object.entries(fixed)) {
      const m = metrics.registry.getSingleMetric(name) as unknown as { labelNames: string[] } | undefined;
      expect(m, name).toBeDefined();
      expect(m!.labelNames, name).toEqual(labels);
    }
  });

  it('are listed in docs/observability.md exactly as the registry describes them', async () => {
    const readme = readFileSync(join(ROOT, 'docs', 'observability.md'), 'utf8');
    const listed = /<!-- metrics:begin -->\n([\s\S]*?)<!-- metrics:end -->/.exec(readme)?.[1];
    expect(listed).toBe(await metrics.markdown());
  });

  it('export the health score in [0, 1], as the documented weighted mean', async () => {
    expect(Object.values(HEALTH_WEIGHTS).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(healthScore({ operations: 1, breakers: 1, resources: 1, errors: 1 })).toBeCloseTo(1, 12);
    expect(healthScore({ operations: 0, breakers: 1, resources: 1, errors: 1 })).toBeCloseTo(0.6, 12);
    expect(healthScore({ operations: 0.5, breakers: 0, resources: 0.5, errors: -3 })).toBeCloseTo(0.3, 12);
    const text = await metrics.text();
    const score = Number(/^neurocluster_system_health_score (\S+)$/m.exec(text)![1]);
    expect(score).toBeGreaterThanOrEqual(0);
    expect(score).toBeLessThanOrEqual(1);
  });
});

describe('batch exports', () => {
  // The CLI's own output is not what these tests read.
  beforeEach(() => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    return () => vi.restoreAllMocks();
  });

  it('--metrics-out writes the registry after the run, a failed run included', async () => {
    const dir = tempDir();
    const out = join(dir, 'run.prom');
    const code = await main([
      'node',
      'neurocluster',
      '--log-level',
      'silent',
      '--metrics-out',
      out,
      'cluster',
      join(dir, 'missing.csv'),
      '--k',
      '3',
    ]);
    expect(code).not.toBe(0);
    const text = readFileSync(out, 'utf8');
    expect(text).toMatch(/^# TYPE neurocluster_operations_total counter$/m);
    expect(text).toMatch(
      /^neurocluster_operations_total\{method="auto",backend="none",outcome="failed"\} [1-9]/m,
    );
  });

  it('--pushgateway PUTs the registry under job neurocluster and this host', async () => {
    const pushes: { method: string; url: string; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        pushes.push({ method: req.method!, url: req.url!, body });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const url = `http://127.0.0.1:${port}`;
      const code = await main([
        'node',
        'neurocluster',
        '--log-level',
        'silent',
        '--pushgateway',
        url,
        'cluster',
        IRIS,
        '--k',
        '3',
        '--json',
      ]);
      expect(code).toBe(0);
      expect(pushes).toHaveLength(1);
      expect(pushes[0]!.method).toBe('PUT');
      expect(pushes[0]!.url).toBe(`/metrics/job/neurocluster/instance/${encodeURIComponent(hostname())}`);
      expect(pushes[0]!.body).toMatch(
        /^neurocluster_operations_total\{method="kmeans",backend="js",outcome="succeeded"\} [1-9]/m,
      );
    } finally {
      server.close();
    }
  });

  it('a Pushgateway that cannot be reached costs a warning, not the run', async () => {
    const code = await main([
      'node',
      'neurocluster',
      '--log-level',
      'silent',
      '--pushgateway',
      'http://127.0.0.1:9',
      'cluster',
      IRIS,
      '--k',
      '3',
      '--json',
    ]);
    expect(code).toBe(0);
  });
});
