/**
 * `npm run bench:quality [-- --markdown] [--seeds 0,1,2] [--methods kmeans,hybrid] [--config file]`
 * (default: seeds 0..9, every method, default settings; `--config` as the CLI's): every method
 * on iris and on every development series set (../shared/data/ts), ARI and NMI against the truth,
 * averaged over seeds, next to scikit-learn's KMeans (test/fixtures/sklearn.json, made by
 * make_fixtures.py) and the published scores in ../shared/data/ts/published.csv.
 * One JSON line per data set and method; `--markdown` prints the table of docs/encoders.md instead.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Backend } from '../src/backends/backend.js';
import { registryOf } from '../src/bench/workloads.js';
import { NeuromorphicClusterer } from '../src/clusterer.js';
import { readConfigFile } from '../src/config/load.js';
import { type ConfigOverrides, METHODS, type Method } from '../src/config/schema.js';
import { createLogger } from '../src/observability/logger.js';

const SHARED_SERIES = '../shared/data/ts/';

export interface QualityCase {
  readonly name: string;
  readonly path: string;
  readonly k: number;
  readonly labelColumn: string;
  /** scikit-learn KMeans(n_init=10, random_state=0) on the same cleaned input. */
  readonly sklearn: { readonly inertia: number; readonly ari: number };
}

export interface QualityRow {
  readonly dataset: string;
  readonly method: Method;
  readonly seeds: readonly number[];
  /** Means over the seeds. */
  readonly ari: number;
  readonly nmi: number;
  /** For kmeans: our inertia over scikit-learn's (mean over seeds). */
  readonly inertiaRatio?: number;
}

/**
 * iris and the development series sets that exist here, with scikit-learn's figures; `seriesDir`
 * replaces ../shared/data/ts (the sets travel to a GPU machine in another folder).
 */
export function qualityCases(root = '.', seriesDir?: string): QualityCase[] {
  const fixture = JSON.parse(readFileSync(resolve(root, 'test/fixtures/sklearn.json'), 'utf8')) as {
    kmeans: { name: string; source: string; k: number; inertia: number; ari: number; labelColumn: string }[];
  };
  return fixture.kmeans
    .filter((c) => !c.name.startsWith('blobs'))
    .map((c) => ({
      name: c.name,
      path:
        seriesDir && c.source.startsWith(SHARED_SERIES)
          ? resolve(seriesDir, c.source.slice(SHARED_SERIES.length))
          : resolve(root, c.source),
      k: c.k,
      labelColumn: c.labelColumn,
      sklearn: { inertia: c.inertia, ari: c.ari },
    }))
    .filter((c) => existsSync(c.path));
}

/**
 * The labels one method gives one data set on exactly this backend instance (a registry of its
 * own holds it), for comparing backends: the same seed should give the same labels on each.
 */
export async function labelsOn(
  backend: Backend,
  c: QualityCase,
  method: Method,
  seed = 0,
): Promise<Int32Array> {
  const registry = registryOf(backend);
  const clusterer = new NeuromorphicClusterer({
    method,
    nClusters: c.k,
    seed,
    logger: createLogger({ level: 'silent' }),
    registry,
    backend: backend.name,
    config: { data: { labelColumn: c.labelColumn } },
  });
  const result = await clusterer.fit(c.path);
  if (result.backend !== backend.name) throw new Error(`ran on ${result.backend}, not ${backend.name}`);
  return result.labels;
}

/** Runs one method on one data set over the seeds. */
export async function evaluate(
  c: QualityCase,
  method: Method,
  seeds: readonly number[],
  config: ConfigOverrides = {},
): Promise<QualityRow> {
  const logger = createLogger({ level: 'silent' });
  let ari = 0;
  let nmi = 0;
  let inertia = 0;
  for (const seed of seeds) {
    const clusterer = new NeuromorphicClusterer({
      method,
      nClusters: c.k,
      seed,
      logger,
      config: { ...config, data: { ...config.data, labelColumn: c.labelColumn } },
    });
    const r = await clusterer.fit(c.path);
    ari += r.external!.ari / seeds.length;
    nmi += r.external!.nmi / seeds.length;
    inertia += r.quality.inertia / seeds.length;
  }
  return {
    dataset: c.name,
    method,
    seeds,
    ari,
    nmi,
    ...(method === 'kmeans' ? { inertiaRatio: inertia / c.sklearn.inertia } : {}),
  };
}

interface Published {
  readonly method: string;
  readonly metric: string;
  readonly value: number;
  readonly source: string;
}

function readPublished(root: string): Map<string, Published[]> {
  const path = resolve(root, '../shared/data/ts/published.csv');
  const out = new Map<string, Published[]>();
  if (!existsSync(path)) return out;
  for (const line of readFileSync(path, 'utf8').trim().split(/\r?\n/).slice(1)) {
    const [dataset, method, metric, value, source] = line.split(',');
    const list = out.get(dataset!) ?? [];
    list.push({ method: method!, metric: metric!, value: Number(value), source: source! });
    out.set(dataset!, list);
  }
  return out;
}

const f3 = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(3));

function markdown(rows: QualityRow[], cases: QualityCase[], methods: Method[], root: string): string {
  const published = readPublished(root);
  const head = [
    'data set',
    'k',
    ...methods.map((m) => `${m} ARI / NMI`),
    'scikit-learn K-means ARI',
    'published K-means ARI',
    'best published unsupervised ARI',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const c of cases) {
    const pub = (published.get(c.name) ?? []).filter((p) => p.metric === 'ARI');
    const kmeansPub = pub.find((p) => p.method === 'K-means (Euclidean)');
    const best = pub.filter((p) => !p.method.includes('supervised')).sort((a, b) => b.value - a.value)[0];
    const cells = methods.map((m) => {
      const r = rows.find((x) => x.dataset === c.name && x.method === m);
      return r ? `${f3(r.ari)} / ${f3(r.nmi)}` : '-';
    });
    lines.push(
      `| ${[c.name, c.k, ...cells, f3(c.sklearn.ari), f3(kmeansPub?.value), best ? `${f3(best.value)} (${best.method}, ${best.source})` : '-'].join(' | ')} |`,
    );
  }
  const series = cases.filter((c) => c.name !== 'iris');
  const means = methods.map((m) => {
    const rs = rows.filter((r) => r.method === m && r.dataset !== 'iris');
    return `${f3(rs.reduce((s, r) => s + r.ari, 0) / Math.max(1, rs.length))} / ${f3(rs.reduce((s, r) => s + r.nmi, 0) / Math.max(1, rs.length))}`;
  });
  lines.push(`| mean of the ${series.length} series sets | | ${means.join(' | ')} | | | |`);
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      markdown: { type: 'boolean', default: false },
      seeds: { type: 'string', default: '0,1,2,3,4,5,6,7,8,9' },
      methods: { type: 'string', default: METHODS.join(',') },
      config: { type: 'string' },
    },
  });
  const config = values.config ? ((await readConfigFile(values.config)) as ConfigOverrides) : {};
  const seeds = values.seeds.split(',').map(Number);
  const methods = values.methods.split(',') as Method[];
  const cases = qualityCases();
  const rows: QualityRow[] = [];
  for (const c of cases) {
    for (const m of methods) {
      const row = await evaluate(c, m, seeds, config);
      rows.push(row);
      if (!values.markdown) process.stdout.write(`${JSON.stringify(row)}\n`);
    }
  }
  if (values.markdown) process.stdout.write(markdown(rows, cases, methods, '.'));
}

if (process.argv[1] && resolve(process.argv[1]).endsWith('bench/quality.js')) await main();
