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
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultRegistry } from '../src/backends/index.js';
import { breakerSettings, NeuromorphicClusterer } from '../src/clusterer.js';
import { neuroclusterHome } from '../src/config/home.js';
import type { Method } from '../src/config/schema.js';
import { createLogger } from '../src/observability/logger.js';
import { BreakerBook, breakerFile } from '../src/resilience/breakers.js';
import { Resilience } from '../src/resilience/policy.js';
import { ErrorTracker } from '../src/resilience/tracker.js';
import { makeBlobs } from './workloads.js';

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
async function fitSeconds(on: boolean, fault?: string): Promise<number> {
  const clusterer = new NeuromorphicClusterer({
    method,
    nClusters: k,
    seed: 0,
    logger: quiet,
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

if (values.child) {
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
  const rss = (mode: string) => {
    const r = spawnSync(
      process.execPath,
      [self, '--child', mode, '--n', String(n), '--d', String(d), '--k', String(k), '--method', method],
      {
        encoding: 'utf8',
      },
    );
    if (r.status !== 0) throw new Error(r.stderr);
    return (JSON.parse(r.stdout) as { maxRssKiB: number }).maxRssKiB;
  };
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
    })}\n`,
  );
}
