/**
 * `node dist/bench/privacy-bounds.js [--runs 10 --epsilon 1 --per-class 60]`: what per-column
 * bounds buy DP K-means on a table whose columns have very different scales. The table is
 * synthetic and seeded (see {@link mixedScaleTable}: 3 x `--per-class` rows, 3 classes, six
 * columns from 0-1 to 300-1700); each run fits DP K-means (k 3, DP standardization on, k-anonymity
 * off) with one public range for every column (`0:1700`, the smallest that holds them all) and
 * with each column's own range, with Laplace noise and with Gaussian noise at `--delta`, seeds
 * 0..runs-1, and reports the ARI against the classes: median (min-max), and the non-private
 * K-means' for scale. One JSON line; `--markdown` prints the table of docs/privacy.md.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { externalQuality } from '../src/cluster/metrics.js';
import { NeuromorphicClusterer } from '../src/clusterer.js';
import { Random } from '../src/core/random.js';
import type { Dataset } from '../src/data/dataset.js';
import { createLogger } from '../src/observability/logger.js';

/** The columns of the table: name, public range, and the three classes' means and spread. */
export const MIXED_COLUMNS = [
  { name: 'ratio', lo: 0.1, hi: 5, means: [1, 2.5, 4], sd: 0.6 },
  { name: 'level', lo: 300, hi: 1700, means: [650, 1000, 1350], sd: 180 },
  { name: 'percent', lo: 10, hi: 30, means: [15, 20, 25], sd: 2.5 },
  { name: 'share', lo: 0, hi: 1, means: [0.25, 0.5, 0.75], sd: 0.12 },
  { name: 'rate', lo: 70, hi: 160, means: [95, 115, 135], sd: 10 },
  { name: 'grade', lo: 1, hi: 13, means: [4, 7, 10], sd: 1.5 },
] as const;

/** One range for every column (`0:1700`), and each column's own (`ratio=0.1:5,level=300:1700,...`). */
export const ONE_RANGE = '0:1700';
export const PER_COLUMN = MIXED_COLUMNS.map((c) => `${c.name}=${c.lo}:${c.hi}`).join(',');

/**
 * 3 x `perClass` rows of six columns on very different scales (normal around each class's mean,
 * clipped to the column's public range), seeded; `truth` is the class of each row.
 */
export function mixedScaleTable(seed: number, perClass = 60): Dataset {
  const rng = new Random(seed);
  const d = MIXED_COLUMNS.length;
  const values = new Float64Array(3 * perClass * d);
  const truth: string[] = [];
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < perClass; i++) {
      const row = c * perClass + i;
      MIXED_COLUMNS.forEach((col, j) => {
        const x = col.means[c]! + col.sd * rng.normal();
        values[row * d + j] = Math.min(col.hi, Math.max(col.lo, x));
      });
      truth.push(`class${c}`);
    }
  }
  return {
    source: '<mixed-scale table>',
    n: 3 * perClass,
    width: d,
    values,
    columns: MIXED_COLUMNS.map((c) => c.name),
    truth,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** ARI against the classes of `runs` DP K-means fits (seeds 0..runs-1), each charged to a dataset of its own. */
export async function dpAri(
  table: Dataset,
  bounds: string,
  epsilon: number,
  delta: number | undefined,
  runs: number,
): Promise<number[]> {
  const quiet = createLogger({ level: 'silent' });
  const out: number[] = [];
  for (let seed = 0; seed < runs; seed++) {
    const result = await new NeuromorphicClusterer({
      method: 'kmeans',
      nClusters: 3,
      seed,
      logger: quiet,
      config: {
        privacy: {
          epsilon,
          delta,
          bounds,
          dataset: `bounds-bench-${bounds}-${delta}-${seed}`,
          minClusterSize: 1,
        },
      },
    }).fit(table);
    out.push(externalQuality(table.truth!, result.labels).ari);
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '10' },
      epsilon: { type: 'string', default: '1' },
      'per-class': { type: 'string', default: '60' },
      delta: { type: 'string', default: '1e-6' },
      markdown: { type: 'boolean', default: false },
    },
  });
  const home = mkdtempSync(join(tmpdir(), 'neurocluster-bounds-bench-'));
  process.env.NEUROCLUSTER_HOME = home;
  try {
    const runs = Number(values.runs);
    const epsilon = Number(values.epsilon);
    const table = mixedScaleTable(0, Number(values['per-class']));
    const plain = await new NeuromorphicClusterer({
      method: 'kmeans',
      nClusters: 3,
      seed: 0,
      logger: createLogger({ level: 'silent' }),
    }).fit(table);
    const kmeansAri = r3(externalQuality(table.truth!, plain.labels).ari);
    const rows: { bounds: string; noise: string; median: number; min: number; max: number }[] = [];
    for (const delta of [undefined, Number(values.delta)]) {
      for (const [name, bounds] of [
        ['one range', ONE_RANGE],
        ['per column', PER_COLUMN],
      ] as const) {
        const aris = await dpAri(table, bounds, epsilon, delta, runs);
        rows.push({
          bounds: name,
          noise: delta === undefined ? 'laplace' : `gaussian, delta ${delta.toExponential()}`,
          median: r3(median(aris)),
          min: r3(Math.min(...aris)),
          max: r3(Math.max(...aris)),
        });
      }
    }
    if (values.markdown) {
      const lines = [
        `| bounds (${table.n} x ${table.width}, k 3) | noise | ARI vs classes at epsilon ${epsilon}: median (min-max) of ${runs} |`,
        '|---|---|---|',
        ...rows.map((r) => `| ${r.bounds} | ${r.noise} | ${r.median} (${r.min}-${r.max}) |`),
        `| (K-means, no privacy) | - | ${kmeansAri} |`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    } else {
      process.stdout.write(
        `${JSON.stringify({ bench: 'privacy-bounds', n: table.n, d: table.width, epsilon, runs, kmeansAri, rows })}\n`,
      );
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
