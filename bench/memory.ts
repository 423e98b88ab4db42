/**
 * `npm run bench:memory [-- --n 20000 --d 8 --method esn]`: the memory a job is admitted by
 * (`estimateMemory`, from its shape) against the rise of the process's peak RSS while it runs
 * (one fit, one K-means restart, on the js backend). One JSON line. Run it once per shape: the
 * peak RSS of a process only grows.
 */
import { parseArgs } from 'node:util';
import { makeBlobs } from '../src/bench/workloads.js';
import { NeuromorphicClusterer } from '../src/clusterer.js';
import type { Method } from '../src/config/schema.js';
import { createLogger } from '../src/observability/logger.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    d: { type: 'string', default: '8' },
    method: { type: 'string', default: 'esn' },
  },
});
const n = Number(values.n);
const d = Number(values.d);
const method = values.method as Method;
const { points } = makeBlobs(n, d, 5, 0);
const matrix = { rows: n, cols: d, data: Float64Array.from(points.data) };
const clusterer = new NeuromorphicClusterer({
  method,
  nClusters: 5,
  backend: 'js',
  logger: createLogger({ level: 'silent' }),
  config: { kmeans: { nInit: 1 } },
});
const estimated = await clusterer.estimateMemory(matrix);
const before = process.memoryUsage().rss;
await clusterer.fit(matrix);
const rise = process.resourceUsage().maxRSS * 1024 - before;
const mib = (b: number) => Math.round(b / 2 ** 20);
process.stdout.write(
  `${JSON.stringify({ bench: 'memory', method, n, d, estimatedMiB: mib(estimated), peakRssRiseMiB: mib(rise), ratio: Math.round((estimated / rise) * 100) / 100 })}\n`,
);
