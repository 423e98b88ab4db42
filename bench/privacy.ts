/**
 * `npm run bench:privacy [-- --runs 10 --epsilons 0.5,1,2,5]`: the utility of DP K-means. For each
 * development data set and epsilon, `--runs` DP fits (fresh noise each) against the non-private
 * K-means of the same data (standardized, same k and seed 0; the DP runs use seeds 0..runs-1), with
 * Laplace noise and with Gaussian noise at `--delta`: the median ARI between the two
 * labellings, its range, and the median ARI against the true classes. Bounds are public, chosen
 * from what is known of each data set without looking at it (see BOUNDS); DP standardization on.
 * Each fit charges a budget of its own (a fresh dataset name), in a temporary NEUROCLUSTER_HOME.
 * One JSON line; `--markdown` prints the table of docs/privacy.md.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { makeBlobs } from '../src/bench/workloads.js';
import { externalQuality } from '../src/cluster/metrics.js';
import { NeuromorphicClusterer } from '../src/clusterer.js';
import type { Dataset } from '../src/data/dataset.js';
import { loadDataset } from '../src/data/load.js';
import { createLogger } from '../src/observability/logger.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    epsilons: { type: 'string', default: '0.5,1,2,5' },
    delta: { type: 'string', default: '1e-6' },
    markdown: { type: 'boolean', default: false },
  },
});
process.env.NEUROCLUSTER_HOME ??= mkdtempSync(join(tmpdir(), 'neurocluster-privacy-bench-'));
const quiet = createLogger({ level: 'silent' });
const ROOT = new URL('../..', import.meta.url).pathname;
const TS = join(ROOT, '..', 'shared', 'data', 'ts');

/** Public bounds: iris in centimetres; UCR series are z-normalized per series; the blobs' generator range. */
const SETS: { name: string; load: () => Promise<Dataset>; k: number; bounds: string }[] = [
  {
    name: 'iris',
    k: 3,
    bounds: '0:10',
    load: () =>
      loadDataset(join(ROOT, 'examples/iris.csv'), { labelColumn: 'species', nanPolicy: 'error' }, quiet),
  },
  {
    name: 'ItalyPowerDemand',
    k: 2,
    bounds: '-4:4',
    load: () =>
      loadDataset(join(TS, 'ItalyPowerDemand.csv'), { labelColumn: 'label', nanPolicy: 'error' }, quiet),
  },
  {
    name: 'SyntheticControl',
    k: 6,
    bounds: '-4:4',
    load: () =>
      loadDataset(join(TS, 'SyntheticControl.csv'), { labelColumn: 'label', nanPolicy: 'error' }, quiet),
  },
  {
    name: 'blobs (5000 x 8, k 5)',
    k: 5,
    bounds: '-20:20',
    load: async () => {
      const { points, truth } = makeBlobs(5000, 8, 5, 0);
      return {
        source: '<blobs>',
        n: points.rows,
        width: points.cols,
        values: Float64Array.from(points.data),
        columns: Array.from({ length: points.cols }, (_, j) => `x${j}`),
        truth: Array.from(truth, String),
      };
    },
  },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const r3 = (x: number) => Math.round(x * 1000) / 1000;

const runs = Number(values.runs);
const epsilons = values.epsilons.split(',').map(Number);
const rows: Record<string, unknown>[] = [];
let run = 0;
for (const set of SETS) {
  const dataset = await set.load();
  const plain = await new NeuromorphicClusterer({
    method: 'kmeans',
    nClusters: set.k,
    seed: 0,
    logger: quiet,
  }).fit(dataset);
  for (const [epsilon, delta] of epsilons.flatMap((e) => [
    [e, undefined],
    [e, Number(values.delta)],
  ])) {
    const vsKMeans: number[] = [];
    const vsTruth: number[] = [];
    for (let r = 0; r < runs; r++) {
      const dp = new NeuromorphicClusterer({
        method: 'kmeans',
        nClusters: set.k,
        seed: r,
        logger: quiet,
        config: {
          privacy: { epsilon, delta, bounds: set.bounds, dataset: `bench-${run++}`, minClusterSize: 1 },
        },
      });
      const result = await dp.fit(dataset);
      vsKMeans.push(externalQuality(plain.labels, result.labels).ari);
      if (dataset.truth) vsTruth.push(externalQuality(dataset.truth, result.labels).ari);
    }
    rows.push({
      dataset: set.name,
      n: dataset.n,
      d: dataset.width,
      k: set.k,
      epsilon,
      mechanism: delta === undefined ? 'laplace' : `gaussian, delta ${delta.toExponential()}`,
      ariVsKMeans: {
        median: r3(median(vsKMeans)),
        min: r3(Math.min(...vsKMeans)),
        max: r3(Math.max(...vsKMeans)),
      },
      ariVsTruth: r3(median(vsTruth)),
      kmeansAriVsTruth: r3(dataset.truth ? externalQuality(dataset.truth, plain.labels).ari : Number.NaN),
    });
  }
}
if (values.markdown) {
  const lines = [
    '| data | n x d, k | epsilon | noise | ARI vs K-means: median (min-max) | ARI vs classes (K-means alone) |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of rows as {
    dataset: string;
    n: number;
    d: number;
    k: number;
    epsilon: number;
    mechanism: string;
    ariVsKMeans: { median: number; min: number; max: number };
    ariVsTruth: number;
    kmeansAriVsTruth: number;
  }[]) {
    const a = r.ariVsKMeans;
    lines.push(
      `| ${r.dataset} | ${r.n} x ${r.d}, ${r.k} | ${r.epsilon} | ${r.mechanism} | ${a.median} (${a.min}-${a.max}) | ${r.ariVsTruth} (${r.kmeansAriVsTruth}) |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
} else {
  process.stdout.write(`${JSON.stringify({ bench: 'privacy', runs, rows })}\n`);
}
