/**
 * `npm run bench:resilience [-- --pairs 15] [--n 20000] [--d 8] [--method esn]`: what the
 * resilience layer costs on the happy path, and how fast the fallback answers. One JSON line.
 *
 * - time: `--pairs` interleaved pairs of the same fit with the layer on and off (ClustererOptions
 *   `resilience: false`), in one process, the order alternating within pairs; the median of the
 *   per-pair ratios on/off, with the lowest and highest.
 * - memory: the same pairs as child processes (peak RSS is per process), interleaved; the median
 *   of the per-pair ratios of peak RSS on/off.
 * - fallback: pairs of the happy path against the same request with `oom` injected at the first
 *   kernel (not retried: the path fails at once and CPU K-means answers); median ratio.
 * - layerMsPerRequest: the layer alone around a no-op (policies, breaker file read and write,
 *   fault check), the mean of 1,000 requests: the fixed cost the pairs above cannot resolve.
 * - observability: everything on (the resilience layer, logs at info to a file, metrics) against
 *   everything off (`resilience: false`, logs silent, `NEUROCLUSTER_METRICS=off`), as interleaved
 *   pairs of child processes (metrics are switched per process); each child times the fastest of
 *   three fits after one that warms it up, and reports its peak RSS: medians of the per-pair ratios.
 * - auditMsPerRecord: one audit record appended (HMAC, hash chain, the head's transaction in
 *   SQLite, anomaly rules), the mean of 1,000 in a temporary home; a CLI run appends one to three.
 * - metricsShareOfFit: what the metrics cost one fit, measured directly: the extra time of a kernel
 *   call through the observed registry (1x1 matmuls, 20,000 each way, interleaved in blocks) times
 *   the kernel calls of one fit, plus the per-operation updates, over the fit's time.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { defaultRegistry } from '../src/backends/index.js';
import { makeBlobs } from '../src/bench/workloads.js';
import { NeuromorphicClusterer } from '../src/clusterer.js';
import { neuroclusterHome } from '../src/config/home.js';
import type { Method } from '../src/config/schema.js';
import { createLogger } from '../src/observability/logger.js';
import { metrics } from '../src/observability/metrics.js';
import { BreakerBook, breakerFile } from '../src/resilience/breakers.js';
import { Resilience } from '../src/resilience/policy.js';
import { ErrorTracker } from '../src/resilience/tracker.js';
import { breakerSettings } from '../src/runtime/runtime.js';

const { values } = parseArgs({
  options: {
    pairs: { type: 'string', default: '15' },
    n: { type: 'string', default: '20000' },
    d: { type: 'string', default: '8' },
    k: { type: 'string', default: '5' },
    method: { type: 'string', default: 'esn' },
    child: { type: 'string' },
  },
});
const n = Number(values.n);
const d = Number(values.d);
const k = Number(values.k);
const method = values.method as Method;
const quiet = createLogger({ level: 'silent' });
const { points } = makeBlobs(n, d, k, 0);
const rows = Array.from({ length: n }, (_, i) => Array.from(points.data.subarray(i * d, (i + 1) * d)));

/** Seconds of one fit with the layer on or off, optionally under an injected fault. */
async function fitSeconds(on: boolean, fault?: string, logger = quiet): Promise<number> {
  const clusterer = new NeuromorphicClusterer({
    method,
    nClusters: k,
    seed: 0,
    logger,
    resilience: on,
    config: fault ? { faults: { inject: fault } } : {},
  });
  const t0 = performance.now();
  const result = await clusterer.fit(rows);
  const seconds = (performance.now() - t0) / 1000;
  if (result.fallbackUsed !== (fault !== undefined))
    throw new Error(`unexpected fallback: ${result.fallback?.reason}`);
  return seconds;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function summary(ratios: number[]) {
  const r = (x: number) => Math.round(x * 10000) / 10000;
  return { median: r(median(ratios)), min: r(Math.min(...ratios)), max: r(Math.max(...ratios)) };
}

/** Microseconds the metrics add to one kernel call: an observed registry against a bare one. */
async function kernelMetricsUs(calls = 20_000): Promise<number> {
  const { BackendRegistry } = await import('../src/backends/backend.js');
  const { jsBackendFactory } = await import('../src/backends/js/js-backend.js');
  const make = (observed: boolean) => {
    const registry = new BackendRegistry();
    registry.register(jsBackendFactory);
    if (observed) registry.observe(metrics.backendObserver);
    return registry.get('js');
  };
  const [bare, observed] = [await make(false), await make(true)];
  const a = { rows: 1, cols: 1, data: new Float64Array([1]) };
  const block = async (backend: typeof bare) => {
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) await backend.matmul(a, a);
    return performance.now() - t0;
  };
  for (let i = 0; i < 5; i++) await Promise.all([block(bare), block(observed)]);
  let bareMs = 0;
  let observedMs = 0;
  for (let b = 0; b < calls / 1000; b++) {
    bareMs += await block(bare);
    observedMs += await block(observed);
  }
  return ((observedMs - bareMs) / calls) * 1000;
}

/** Kernel calls of one fit, from the metrics. */
async function kernelCallsPerFit(): Promise<number> {
  const read = async () => (await metrics.kernelDispatches.get()).values.reduce((s, v) => s + v.value, 0);
  const before = await read();
  await fitSeconds(true);
  return (await read()) - before;
}

/** Milliseconds one audit record costs (its own temporary keyring, store and log). */
async function auditMs(records = 1000): Promise<number> {
  const { AuditLog } = await import('../src/security/audit.js');
  const { AnomalyDetector } = await import('../src/security/anomaly.js');
  const { Keyring } = await import('../src/security/keyring.js');
  const { openStore } = await import('../src/store/db.js');
  const dir = mkdtempSync(join(tmpdir(), 'neurocluster-audit-bench-'));
  const keyring = Keyring.open({ env: { NEUROCLUSTER_KEYRING: join(dir, 'k.json') }, warn: () => {} });
  const log = new AuditLog(
    join(dir, 'audit'),
    keyring,
    openStore(join(dir, 's.db')),
    { enabled: true, retentionDays: 365, maxBytes: 64 * 2 ** 20 },
    undefined,
    new AnomalyDetector(),
  );
  const event = {
    action: 'data.read',
    resource: 'bench.csv',
    outcome: 'success' as const,
    details: { rows: n },
  };
  for (let i = 0; i < 50; i++) log.append(event);
  const t0 = performance.now();
  for (let i = 0; i < records; i++) log.append(event);
  return (performance.now() - t0) / records;
}

/** The metrics' direct cost per kernel call and, with the kernel calls of one fit, per fit. */
async function metricsShare(fitSeconds: number) {
  const us = await kernelMetricsUs();
  const calls = await kernelCallsPerFit();
  return {
    metricsUsPerKernelCall: Math.round(us * 100) / 100,
    kernelCallsPerFit: calls,
    metricsShareOfFit: Number(((us * 1e-6 * calls) / fitSeconds).toExponential(2)),
  };
}

/** Milliseconds the resilience layer costs a request whose work is nothing. */
async function layerMs(requests = 1000): Promise<number> {
  const book = new BreakerBook(breakerSettings(), breakerFile(neuroclusterHome()));
  const deps = {
    registry: defaultRegistry,
    breakers: book,
    tracker: new ErrorTracker(),
    logger: quiet,
    selection: {},
  };
  const settings = {
    timeoutMs: 600_000,
    retry: { maxRetries: 2, baseDelayMs: 1000, maxDelayMs: 30_000 },
    fallback: { enabled: true, degradeOrder: ['webgpu', 'wasm', 'js'] as const },
    fault: undefined,
  };
  const request = () =>
    new Resilience(settings, deps).run(
      'js',
      async () => 1,
      async () => 0,
    );
  for (let i = 0; i < 50; i++) await request();
  const t0 = performance.now();
  for (let i = 0; i < requests; i++) await request();
  return (performance.now() - t0) / requests;
}

if (values.child === 'all-on' || values.child === 'all-off') {
  // Everything on or off in this process (metrics by NEUROCLUSTER_METRICS, set by the parent).
  const on = values.child === 'all-on';
  const file = join(mkdtempSync(join(tmpdir(), 'neurocluster-bench-')), 'log.jsonl');
  const logger = on
    ? createLogger({ level: 'info', destination: pino.destination({ dest: file, sync: true }) })
    : quiet;
  await fitSeconds(on, undefined, logger);
  // The fastest of three fits: the shared second core adds noise, never speed.
  const seconds = Math.min(
    await fitSeconds(on, undefined, logger),
    await fitSeconds(on, undefined, logger),
    await fitSeconds(on, undefined, logger),
  );
  process.stdout.write(`${JSON.stringify({ seconds, maxRssKiB: process.resourceUsage().maxRSS })}\n`);
} else if (values.child) {
  // One fit in this process; its peak RSS, for the memory pairs.
  await fitSeconds(values.child === 'on');
  process.stdout.write(`${JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS })}\n`);
} else {
  const pairs = Number(values.pairs);
  await fitSeconds(true);
  await fitSeconds(false);
  const time: number[] = [];
  const fallback: number[] = [];
  const happy: number[] = [];
  for (let p = 0; p < pairs; p++) {
    // Alternating which goes first, so that warming and drift do not favour one side.
    let on: number;
    let off: number;
    if (p % 2 === 0) {
      on = await fitSeconds(true);
      off = await fitSeconds(false);
    } else {
      off = await fitSeconds(false);
      on = await fitSeconds(true);
    }
    time.push(on / off);
    happy.push(on);
    fallback.push((await fitSeconds(true, 'oom')) / on);
  }
  const self = fileURLToPath(import.meta.url);
  const child = (mode: string) => {
    const env = { ...process.env, NEUROCLUSTER_METRICS: mode === 'all-off' ? 'off' : 'on' };
    const r = spawnSync(
      process.execPath,
      [self, '--child', mode, '--n', String(n), '--d', String(d), '--k', String(k), '--method', method],
      { encoding: 'utf8', env },
    );
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as { maxRssKiB: number; seconds?: number };
  };
  const rss = (mode: string) => child(mode).maxRssKiB;
  const memory: number[] = [];
  for (let p = 0; p < pairs; p++) {
    let on: number;
    let off: number;
    if (p % 2 === 0) {
      on = rss('on');
      off = rss('off');
    } else {
      off = rss('off');
      on = rss('on');
    }
    memory.push(on / off);
  }
  const allTime: number[] = [];
  const allMemory: number[] = [];
  for (let p = 0; p < pairs; p++) {
    const [first, second] = p % 2 === 0 ? ['all-on', 'all-off'] : ['all-off', 'all-on'];
    const a = child(first);
    const b = child(second);
    const [on, off] = first === 'all-on' ? [a, b] : [b, a];
    allTime.push(on.seconds! / off.seconds!);
    allMemory.push(on.maxRssKiB / off.maxRssKiB);
  }
  process.stdout.write(
    `${JSON.stringify({
      bench: 'resilience',
      method,
      n,
      d,
      k,
      pairs,
      happySeconds: Math.round(median(happy) * 1000) / 1000,
      timeOnOverOff: summary(time),
      peakRssOnOverOff: summary(memory),
      fallbackOverHappy: summary(fallback),
      layerMsPerRequest: Math.round((await layerMs()) * 1000) / 1000,
      observability: {
        timeAllOnOverAllOff: summary(allTime),
        peakRssAllOnOverAllOff: summary(allMemory),
        ...(await metricsShare(median(happy))),
        auditMsPerRecord: Math.round((await auditMs()) * 1000) / 1000,
      },
    })}\n`,
  );
}
