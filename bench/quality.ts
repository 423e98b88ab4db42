/**
 * `npm run bench:quality [-- --markdown] [--seeds 0,1,2] [--methods kmeans,hybrid] [--config file]
 * [--candidates file.json] [--pool series|tabular] [--sets a,b]` (default: seeds 0..9, every
 * method, default settings; `--config` as the CLI's): every method, or every candidate of
 * `--candidates` (a JSON list of `{ name, method, config }`, the current default first), on the
 * development pool: iris, the fixtures' blobs, the development series sets (../shared/data/ts)
 * and the seeded synthetic families of bench/synthetic.ts. ARI and NMI against the truth averaged
 * over the seeds, the seed spread (max - min ARI) and the seconds of one fit, next to
 * scikit-learn's KMeans (test/fixtures/sklearn.json, made by make_fixtures.py) and the published
 * scores in
 * ../shared/data/ts/published.csv; with more than one candidate, leave-one-dataset-out per pool.
 * One JSON line per data set and candidate, then one per pool; `--markdown` prints the tables of
 * docs/encoders.md instead.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Backend } from '../src/backends/backend.js';
import { registryOf } from '../src/bench/workloads.js';
import { NeuromorphicClusterer } from '../src/clusterer.js';
import { readConfigFile } from '../src/config/load.js';
import { type ConfigOverrides, METHODS, type Method } from '../src/config/schema.js';
import { createLogger } from '../src/observability/logger.js';
import { writePool } from './synthetic.js';

const SHARED_SERIES = '../shared/data/ts/';

export interface QualityCase {
  readonly name: string;
  readonly path: string;
  readonly k: number;
  readonly labelColumn: string;
  /** scikit-learn KMeans(n_init=10, random_state=0) on the same cleaned input, where made. */
  readonly sklearn?: { readonly inertia: number; readonly ari: number } | undefined;
  /** Series or rows: the pools are judged apart. */
  readonly kind: 'series' | 'tabular';
}

export interface QualityRow {
  readonly dataset: string;
  readonly method: Method | 'auto';
  /** The candidate's name (the method's, without --candidates). */
  readonly candidate?: string | undefined;
  readonly seeds: readonly number[];
  /** Means over the seeds. */
  readonly ari: number;
  readonly nmi: number;
  /** Max - min ARI over the seeds. */
  readonly spread: number;
  /** For kmeans: our inertia over scikit-learn's (mean over seeds). */
  readonly inertiaRatio?: number;
  /** Wall seconds of one fit, reading the file included (mean over the seeds). */
  readonly seconds: number;
}

/** Every case of the fixture (iris, the blobs, the series sets that exist here). */
function fixtureCases(root: string, seriesDir?: string): QualityCase[] {
  const fixture = JSON.parse(readFileSync(resolve(root, 'test/fixtures/sklearn.json'), 'utf8')) as {
    kmeans: { name: string; source: string; k: number; inertia: number; ari: number; labelColumn: string }[];
  };
  return fixture.kmeans
    .map((c) => ({
      name: c.name,
      path:
        seriesDir && c.source.startsWith(SHARED_SERIES)
          ? resolve(seriesDir, c.source.slice(SHARED_SERIES.length))
          : resolve(root, c.source),
      k: c.k,
      labelColumn: c.labelColumn,
      sklearn: { inertia: c.inertia, ari: c.ari },
      kind: c.source.startsWith(SHARED_SERIES) ? ('series' as const) : ('tabular' as const),
    }))
    .filter((c) => existsSync(c.path));
}

/**
 * iris and the development series sets that exist here, with scikit-learn's figures; `seriesDir`
 * replaces ../shared/data/ts (the sets travel to a GPU machine in another folder).
 */
export function qualityCases(root = '.', seriesDir?: string): QualityCase[] {
  return fixtureCases(root, seriesDir).filter((c) => !c.name.startsWith('blobs'));
}

/**
 * The development pool: iris, the blobs of the fixtures, the development series sets that exist
 * here, and the seeded synthetic families of bench/synthetic.ts, written into `syntheticDir`.
 * Never a held-out set.
 */
export function developmentPool(root: string, syntheticDir: string): QualityCase[] {
  const synthetic = [...writePool(syntheticDir).values()].map(({ path, set }) => ({
    name: set.name,
    path,
    k: set.k,
    labelColumn: 'label',
    kind: set.kind,
  }));
  return [...fixtureCases(root), ...synthetic];
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

/** Runs one method (with a configuration) on one data set over the seeds. */
export async function evaluate(
  c: QualityCase,
  method: Method | 'auto',
  seeds: readonly number[],
  config: ConfigOverrides = {},
): Promise<QualityRow> {
  const logger = createLogger({ level: 'silent' });
  const aris: number[] = [];
  let nmi = 0;
  let inertia = 0;
  let seconds = 0;
  for (const seed of seeds) {
    const clusterer = new NeuromorphicClusterer({
      method,
      nClusters: c.k,
      seed,
      logger,
      config: { ...config, data: { ...config.data, labelColumn: c.labelColumn } },
    });
    const started = performance.now();
    const r = await clusterer.fit(c.path);
    seconds += (performance.now() - started) / 1000 / seeds.length;
    aris.push(r.external!.ari);
    nmi += r.external!.nmi / seeds.length;
    inertia += r.quality.inertia / seeds.length;
  }
  return {
    dataset: c.name,
    method,
    seeds,
    ari: aris.reduce((s, v) => s + v, 0) / aris.length,
    nmi,
    spread: Math.max(...aris) - Math.min(...aris),
    seconds,
    ...(method === 'kmeans' && c.sklearn ? { inertiaRatio: inertia / c.sklearn.inertia } : {}),
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

/** A method and its settings, as one column of the table and one choice of leave-one-dataset-out. */
export interface Candidate {
  readonly name: string;
  readonly method: Method | 'auto';
  readonly config?: ConfigOverrides | undefined;
}

/** What leave-one-dataset-out says of a list of candidates over a pool of sets. */
export interface LeaveOneOut {
  /** Per held-out set: the candidate best on the mean of the others, and its ARI on the set. */
  readonly folds: { readonly heldOut: string; readonly chosen: string; readonly ari: number }[];
  /** Mean ARI on the held-out sets: what the choice is worth on a set it was not made on. */
  readonly mean: number;
  /** The candidate best on every set together, and its mean (the in-sample figure). */
  readonly inSample: { readonly chosen: string; readonly mean: number };
}

const meanOf = (values: readonly number[]) => values.reduce((s, v) => s + v, 0) / Math.max(1, values.length);

/**
 * For each set, chooses the candidate with the best mean ARI over the other sets and scores it on
 * the set left out; ties go to the earlier candidate (list the current default first).
 */
export function leaveOneOut(
  rows: readonly QualityRow[],
  candidates: readonly string[],
  sets: readonly string[],
): LeaveOneOut {
  const ari = (candidate: string, set: string) => {
    const row = rows.find((r) => r.candidate === candidate && r.dataset === set);
    if (!row) throw new Error(`no result for ${candidate} on ${set}`);
    return row.ari;
  };
  const best = (over: readonly string[]) => {
    let chosen = candidates[0]!;
    let top = Number.NEGATIVE_INFINITY;
    for (const c of candidates) {
      const m = meanOf(over.map((s) => ari(c, s)));
      if (m > top + 1e-12) {
        top = m;
        chosen = c;
      }
    }
    return { chosen, mean: top };
  };
  const folds = sets.map((heldOut) => {
    const { chosen } = best(sets.filter((s) => s !== heldOut));
    return { heldOut, chosen, ari: ari(chosen, heldOut) };
  });
  return { folds, mean: meanOf(folds.map((f) => f.ari)), inSample: best(sets) };
}

function markdown(
  rows: QualityRow[],
  cases: QualityCase[],
  candidates: readonly string[],
  root: string,
): string {
  const published = readPublished(root);
  const out: string[] = [];
  for (const kind of ['series', 'tabular'] as const) {
    const pool = cases.filter((c) => c.kind === kind);
    if (pool.length === 0) continue;
    const head = ['data set', 'k', ...candidates.map((m) => `${m} ARI (spread)`), 'scikit-learn K-means ARI'];
    if (kind === 'series') head.push('best published unsupervised ARI');
    const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
    for (const c of pool) {
      const cells = candidates.map((m) => {
        const r = rows.find((x) => x.dataset === c.name && x.candidate === m);
        return r ? `${f3(r.ari)} (${f3(r.spread)})` : '-';
      });
      const line = [c.name, String(c.k), ...cells, f3(c.sklearn?.ari)];
      if (kind === 'series') {
        const pub = (published.get(c.name) ?? []).filter(
          (p) => p.metric === 'ARI' && !p.method.includes('supervised'),
        );
        const top = pub.sort((a, b) => b.value - a.value)[0];
        line.push(top ? `${f3(top.value)} (${top.method}, ${top.source})` : '-');
      }
      lines.push(`| ${line.join(' | ')} |`);
    }
    const names = pool.map((c) => c.name);
    const of = (m: string) => rows.filter((r) => r.candidate === m && names.includes(r.dataset));
    const tail = (label: string, cells: string[]) =>
      `| ${[label, '', ...cells, '', ...(kind === 'series' ? [''] : [])].join(' | ')} |`;
    lines.push(
      tail(
        `mean over the ${pool.length} ${kind} sets`,
        candidates.map((m) => f3(meanOf(of(m).map((r) => r.ari)))),
      ),
    );
    lines.push(
      tail(
        'mean seed spread',
        candidates.map((m) => f3(meanOf(of(m).map((r) => r.spread)))),
      ),
    );
    out.push(lines.join('\n'));
    if (candidates.length > 1) {
      const lodo = leaveOneOut(rows, candidates, names);
      out.push(
        `Leave-one-dataset-out over the ${kind} sets: mean held-out ARI ${f3(lodo.mean)}; chosen on all sets together: ${lodo.inSample.chosen} (${f3(lodo.inSample.mean)}); per fold: ${lodo.folds.map((f) => `${f.heldOut} ${f.chosen} ${f3(f.ari)}`).join(', ')}.`,
      );
    }
  }
  return `${out.join('\n\n')}\n`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      markdown: { type: 'boolean', default: false },
      seeds: { type: 'string', default: '0,1,2,3,4,5,6,7,8,9' },
      methods: { type: 'string', default: ['auto', ...METHODS].join(',') },
      config: { type: 'string' },
      candidates: { type: 'string' },
      sets: { type: 'string' },
      pool: { type: 'string', default: 'all' },
    },
  });
  const config = values.config ? ((await readConfigFile(values.config)) as ConfigOverrides) : {};
  const seeds = values.seeds.split(',').map(Number);
  const candidates: Candidate[] = values.candidates
    ? (JSON.parse(readFileSync(values.candidates, 'utf8')) as Candidate[])
    : (values.methods.split(',') as (Method | 'auto')[]).map((m) => ({ name: m, method: m, config }));
  const synthetic = mkdtempSync(join(tmpdir(), 'neurocluster-quality-'));
  // A run stopped with Ctrl-C or a kill leaves no synthetic files behind either.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      rmSync(synthetic, { recursive: true, force: true });
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  try {
    const wanted = values.sets?.split(',');
    const cases = developmentPool('.', synthetic).filter(
      (c) => (values.pool === 'all' || c.kind === values.pool) && (!wanted || wanted.includes(c.name)),
    );
    const rows: QualityRow[] = [];
    for (const c of cases) {
      for (const candidate of candidates) {
        const row = {
          ...(await evaluate(c, candidate.method, seeds, candidate.config)),
          candidate: candidate.name,
        };
        rows.push(row);
        if (!values.markdown) process.stdout.write(`${JSON.stringify(row)}\n`);
      }
    }
    const names = candidates.map((c) => c.name);
    if (values.markdown) process.stdout.write(markdown(rows, cases, names, '.'));
    else if (names.length > 1) {
      for (const kind of ['series', 'tabular'] as const) {
        const pool = cases.filter((c) => c.kind === kind).map((c) => c.name);
        if (pool.length > 0)
          process.stdout.write(`${JSON.stringify({ pool: kind, ...leaveOneOut(rows, names, pool) })}\n`);
      }
    }
  } finally {
    rmSync(synthetic, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]).endsWith('bench/quality.js')) await main();
