/**
 * Child process of test/memory/peak.test.ts, run as `node --expose-gc peak-child.mjs '<spec>'`:
 * builds a seeded dataset of the spec's shape, asks the clusterer for its memory estimate, then
 * fits it and measures the peak resident memory the fit added (VmHWM, reset through
 * /proc/self/clear_refs before the fit; process.resourceUsage().maxRSS where that cannot be reset).
 * Prints one JSON line: { estimate, increase, reset } in bytes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { NeuromorphicClusterer } from '../../dist/src/index.js';
import { createLogger } from '../../dist/src/observability/logger.js';

const spec = JSON.parse(process.argv[2]);
const { method, rows, cols, k, series, config = {} } = spec;

/** Seeded values (xorshift), clustered by row so that K-means has something to find. */
let s = 0x9e3779b9;
const next = () => {
  s ^= s << 13;
  s ^= s >>> 17;
  s ^= s << 5;
  return (s >>> 0) / 2 ** 32 - 0.5;
};
const width = series ? series.length * series.dims : cols;
const values = new Float64Array(rows * width);
for (let i = 0; i < rows; i++)
  for (let j = 0; j < width; j++) values[i * width + j] = next() + (i % k) * (j % 3);
const dataset = {
  source: '<memory>',
  n: rows,
  width,
  values,
  columns: Array.from({ length: width }, (_, j) => `c${j}`),
  ...(series ? { series } : {}),
};

const make = () =>
  new NeuromorphicClusterer({
    method,
    nClusters: k,
    seed: 1,
    backend: 'js',
    logger: createLogger({ level: 'silent' }),
    config: { qualityGates: { enabled: false }, performance: { baselines: false }, ...config },
  });
// A small fit of the same kind first, so that compiled code and the heap's own pages are not
// counted as the job's.
const warm = { ...dataset, n: 4 * k, values: values.subarray(0, 4 * k * width) };
await make().fit(warm);
const clusterer = make();
const estimate = await clusterer.estimateMemory(dataset);

const status = () => readFileSync('/proc/self/status', 'utf8');
const kib = (name) => Number(status().match(new RegExp(`${name}:\\s+(\\d+)`))?.[1]) * 1024;
globalThis.gc();
globalThis.gc();
const before = process.memoryUsage().rss;
let reset = true;
try {
  writeFileSync('/proc/self/clear_refs', '5');
} catch {
  reset = false;
}
await clusterer.fit(dataset);
const peak = reset ? kib('VmHWM') : process.resourceUsage().maxRSS * 1024;
process.stdout.write(`${JSON.stringify({ estimate, increase: peak - before, reset })}\n`);
