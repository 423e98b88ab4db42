/**
 * The privacy API of the library: budget status per dataset, the accountant of a configuration,
 * and `anonymizeClusteringResults`, which releases per-cluster statistics of a clustering under
 * differential privacy with k-anonymity.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterMeans } from '../../cluster/metrics.js';
import { envWithHome, neuroclusterHome } from '../../config/home.js';
import { resolveConfig } from '../../config/load.js';
import type { Config, PrivacyConfig } from '../../config/schema.js';
import { currentCorrelationId, withCorrelationId } from '../../core/context.js';
import { UsageError } from '../../core/errors.js';
import type { Matrix } from '../../core/matrix.js';
import { quoteValue } from '../../core/printable.js';
import { SAFE_MAGNITUDE } from '../../linalg/moments.js';
import { openStore, storeFile } from '../../store/db.js';
import { type AnonymityReport, enforceMinClusterSize, type SmallClusterStrategy } from '../kanonymity.js';
import { Keyring } from '../keyring.js';
import { type BudgetStatus, budgetName, datasetId, PrivacyAccountant, rhoForEpsilon } from './accountant.js';
import { type Bounds, countShare, DpLedger, type DpStep, estimateBounds, splitCost } from './dp-kmeans.js';
import { gaussianMechanism, grid, laplaceMechanism, type PrivacyKind, toGrid, toPico } from './mechanisms.js';
import { cryptoRandom, type RandomSource } from './samplers.js';

const accountants = new Map<string, PrivacyAccountant>();

/**
 * The accountant over `$NEUROCLUSTER_HOME/neurocluster.db` with the configuration's default budget,
 * signing with the home's keyring, and refusing a dataset new to the ledger that the home's audit
 * log records charges of (a deleted or replaced store must not start its budgets afresh).
 */
export function privacyAccountant(
  config: Config = resolveConfig(),
  home: string = neuroclusterHome(),
): PrivacyAccountant {
  const { epsilon, delta } = config.privacy.budget;
  const file = storeFile(home);
  const key = `${file}\n${epsilon}\n${delta}`;
  let accountant = accountants.get(key);
  if (!accountant) {
    accountant = new PrivacyAccountant(
      openStore(file),
      { epsilon, delta },
      {
        keyring: Keyring.open({ env: envWithHome(home) }),
        recordedCharges: (dataset) => auditedCharges(join(home, 'audit'), dataset),
      },
    );
    accountants.set(key, accountant);
  }
  return accountant;
}

/**
 * How many successful `privacy.spend` records of `dataset` the audit log in `dir` holds (its
 * rotated files too). Read only when a dataset is new to the ledger; the records' signatures are
 * not checked here (`neurocluster audit verify` does): a forged record can only refuse a charge.
 */
function auditedCharges(dir: string, dataset: string): number {
  if (!existsSync(dir)) return 0;
  let count = 0;
  for (const name of readdirSync(dir).filter((f) => /^audit(-.*)?\.jsonl$/.test(f))) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      if (!line.includes('"privacy.spend"')) continue;
      try {
        const r = JSON.parse(line) as { action?: unknown; outcome?: unknown; resource?: unknown };
        if (r.action === 'privacy.spend' && r.outcome === 'success' && r.resource === dataset) count++;
      } catch {
        // a damaged line: audit verify reports it
      }
    }
  }
  return count;
}

/** What is spent and left of a dataset's budget; every charged dataset's when none is named. */
export function getPrivacyBudgetStatus(dataset?: string, config?: Config): BudgetStatus | BudgetStatus[] {
  const accountant = privacyAccountant(config);
  return dataset === undefined ? accountant.list() : accountant.status(dataset);
}

/** The `privacy` block of a released result. */
export interface PrivacyReport {
  readonly dataset: string;
  /** What this release was charged, in epsilon (and the delta its Gaussian noise was converted at). */
  readonly epsilon: number;
  readonly delta: number | undefined;
  readonly mechanism: 'laplace' | 'gaussian';
  /** The dataset's budget after the charge. */
  readonly spent: number;
  readonly remaining: number;
  readonly budget: number;
}

/** The `privacy` block of a DP K-means result: the charge, and how the release was made. */
export interface PrivacyResult extends PrivacyReport {
  readonly iterations: number;
  readonly boundsSource: 'public' | 'dp-estimate';
  /** The bounds the values were clipped to (public, or themselves a DP release). */
  readonly bounds: Bounds;
  /** Whether the data were standardized with the DP mean and standard deviation. */
  readonly standardized: boolean;
  /** The clusters' noisy sizes from the last iteration (before k-anonymity). */
  readonly noisyCounts: readonly number[];
  /** Every DP release of the run and its cost (epsilon, or rho under zCDP); they add up to the charge. */
  readonly steps: readonly { readonly step: string; readonly mechanism: string; readonly cost: number }[];
}

/** Charges a release of `epsilon` (pure) or of the rho that `epsilon` is at `delta` (zCDP). */
export function chargeRelease(
  accountant: PrivacyAccountant,
  dataset: string,
  epsilon: number,
  delta: number | undefined,
  purpose: string,
): { kind: PrivacyKind; cost: bigint; report: PrivacyReport } {
  const kind: PrivacyKind = delta === undefined ? 'pure' : 'zcdp';
  const cost = kind === 'pure' ? toPico(epsilon) : rhoForEpsilon(epsilon, delta!);
  if (cost <= 0n) throw new UsageError(`epsilon ${epsilon} is too small to charge`);
  const mechanism = kind === 'pure' ? 'laplace' : 'gaussian';
  const status = accountant.charge(dataset, {
    kind,
    pico: cost,
    mechanism,
    purpose,
    correlationId: currentCorrelationId(),
  });
  return {
    kind,
    cost,
    report: {
      dataset,
      epsilon,
      delta,
      mechanism,
      spent: status.spent,
      remaining: status.remaining,
      budget: status.epsilon,
    },
  };
}

/** Public bounds as the configuration gives them (`privacy.bounds`, `--bounds`). */
export type BoundsSpec = NonNullable<PrivacyConfig['bounds']>;

/**
 * Public bounds for the columns `columns` (their names; or how many there are, when they have
 * none): one range for every column (`0:10`), one range per column by position (`0:10,300:1700`,
 * or an array of `<min>:<max>` or [min, max]), or by name (`alcohol=11:15,malic=0.7:5.8`, or a map),
 * every column named once. Refuses (UsageError, exit 2) an unknown column, a column without a
 * range, a column named twice, the wrong number of ranges, and min >= max, naming where.
 */
export function resolveBounds(spec: BoundsSpec, columns: readonly string[] | number): Bounds {
  const names = typeof columns === 'number' ? undefined : columns;
  const d = typeof columns === 'number' ? columns : columns.length;
  const label = (j: number) => (names ? `column ${quoteValue(names[j]!)}` : `column ${j}`);
  const range = (r: string | readonly [number, number], where: string): [number, number] => {
    const [lo, hi] = typeof r === 'string' ? r.split(':').map((x) => Number(x.trim())) : r;
    if (!Number.isFinite(lo) || !Number.isFinite(hi) || (typeof r === 'string' && r.split(':').length !== 2))
      throw new UsageError(
        `bounds of ${where}: ${quoteValue(String(r))} is not <min>:<max> with two numbers`,
      );
    if (!(hi! > lo!)) throw new UsageError(`bounds of ${where}: min ${lo} is not below max ${hi}`);
    // The noise scales with the width and the data are clipped to it: both must stay in float64.
    const width = hi! - lo!;
    if (Math.max(Math.abs(lo!), Math.abs(hi!)) > SAFE_MAGNITUDE || !(width >= 1 / SAFE_MAGNITUDE))
      throw new UsageError(
        `bounds of ${where}: ${lo}:${hi} is out of range (min and max at most ${SAFE_MAGNITUDE} in magnitude, max - min at least ${1 / SAFE_MAGNITUDE}); rescale the data`,
      );
    return [lo!, hi!];
  };
  let ranges: (string | readonly [number, number])[];
  let named: [string, string | readonly [number, number]][] | undefined;
  if (typeof spec === 'string') {
    const parts = spec.split(',');
    if (spec.includes('=')) {
      named = parts.map((part) => {
        const at = part.indexOf('=');
        if (at < 0)
          throw new UsageError(
            `bounds ${quoteValue(spec)}: ${quoteValue(part)} has no column name; name every column (<column>=<min>:<max>) or none`,
          );
        return [part.slice(0, at).trim(), part.slice(at + 1)];
      });
    }
    ranges = parts;
  } else if (Array.isArray(spec)) {
    ranges = spec as (string | readonly [number, number])[];
  } else {
    named = Object.entries(spec as Record<string, string | readonly [number, number]>);
    ranges = [];
  }
  const lo: number[] = [];
  const hi: number[] = [];
  if (named) {
    if (!names)
      throw new UsageError(
        'bounds by column name need the column names: give one range per column by position',
      );
    const byName = new Map<string, [number, number]>();
    for (const [name, r] of named) {
      if (!names.includes(name))
        throw new UsageError(
          `bounds: there is no column ${quoteValue(name)} (the columns: ${names.map((n) => quoteValue(n)).join(', ')})`,
        );
      if (byName.has(name)) throw new UsageError(`bounds: column ${quoteValue(name)} is named twice`);
      byName.set(name, range(r, `column ${quoteValue(name)}`));
    }
    const missing = names.filter((n) => !byName.has(n));
    if (missing.length > 0)
      throw new UsageError(
        `bounds: no range for ${missing.map((n) => quoteValue(n)).join(', ')}; name every column, or give one range for all`,
      );
    for (const name of names) {
      const [l, h] = byName.get(name)!;
      lo.push(l);
      hi.push(h);
    }
    return { lo, hi };
  }
  if (ranges.length === 1 && typeof spec === 'string') {
    const [l, h] = range(ranges[0]!, 'every column');
    return { lo: new Array<number>(d).fill(l), hi: new Array<number>(d).fill(h) };
  }
  if (ranges.length !== d)
    throw new UsageError(
      `bounds: ${ranges.length} range${ranges.length === 1 ? '' : 's'} for ${d} column${d === 1 ? '' : 's'}; give one per column in order, or one range for all`,
    );
  ranges.forEach((r, j) => {
    const [l, h] = range(r, label(j));
    lo.push(l);
    hi.push(h);
  });
  return { lo, hi };
}

export interface AnonymizeOptions {
  readonly correlationId?: string;
  /** The release's epsilon; `privacy.epsilon` of the configuration when absent. */
  readonly epsilon?: number;
  /** Gaussian noise under zCDP, converted at this delta; Laplace when absent. */
  readonly delta?: number;
  /** Public bounds (see {@link resolveBounds}); estimated under DP when absent. */
  readonly bounds?: BoundsSpec;
  /** The names of the feature columns, for bounds given by name. */
  readonly columns?: readonly string[];
  /** The dataset the budget belongs to; the content hash of `features` by default. */
  readonly dataset?: string;
  readonly minClusterSize?: number;
  readonly smallClusters?: SmallClusterStrategy;
  /** The configuration whose `privacy` section gives the rest (the resolved defaults otherwise). */
  readonly config?: Config;
  /** Noise source; the OS CSPRNG unless a test pins it. */
  readonly noise?: RandomSource;
}

export interface AnonymizedRelease {
  /** Per released cluster (numbered after k-anonymity): its noisy size and noisy mean. */
  readonly clusters: readonly { readonly cluster: number; readonly count: number; readonly mean: number[] }[];
  /** The labels after k-anonymity: -1 for suppressed rows, as many as given. */
  readonly labels: Int32Array;
  readonly anonymity: AnonymityReport;
  readonly privacy: PrivacyReport;
  /** Each DP release and its cost in pico-units (they add up to the charge). */
  readonly steps: readonly DpStep[];
}

/**
 * Releases per-cluster statistics of a clustering under differential privacy: the noisy size and
 * the noisy mean of every cluster (Laplace, or Gaussian with `delta`), charged to the dataset's
 * budget before any noise is drawn, after small clusters are merged or suppressed (k-anonymity;
 * decided on the true sizes, so no released cluster is smaller than `minClusterSize`).
 */
export function anonymizeClusteringResults(
  labels: ArrayLike<number>,
  features: Matrix | readonly (readonly number[])[],
  options: AnonymizeOptions = {},
): Promise<AnonymizedRelease> {
  return withCorrelationId(options.correlationId, async () => {
    const config = options.config ?? resolveConfig();
    const p: PrivacyConfig = config.privacy;
    const matrix = toMatrix(features);
    const { rows: n, cols: d } = matrix;
    if (labels.length !== n) throw new UsageError(`${labels.length} labels for ${n} rows of features`);
    const epsilon = options.epsilon ?? p.epsilon;
    if (epsilon === undefined)
      throw new UsageError(
        'anonymizeClusteringResults needs an epsilon (options.epsilon or privacy.epsilon)',
      );
    const delta = options.delta ?? p.delta;
    const bounds = options.bounds ?? p.bounds;
    const k = Math.max(0, ...Array.from(labels)) + 1;
    const labelled = Int32Array.from(labels);
    if (labelled.some((l) => l < -1))
      throw new UsageError('labels must be cluster numbers >= 0 (or -1 for suppressed rows)');

    // k-anonymity first (true sizes): the released clusters are the large enough ones. The plain
    // means only order its merges (empty clusters, NaN, are never merge targets); never released.
    const { means } = clusterMeans(matrix, labelled, k);
    const anonymous = enforceMinClusterSize(labelled, means, k, d, {
      minClusterSize: options.minClusterSize ?? p.minClusterSize ?? 5,
      strategy: options.smallClusters ?? p.smallClusters,
    });

    if (options.columns && options.columns.length !== d)
      throw new UsageError(`${options.columns.length} column names for ${d} columns of features`);
    // Public bounds are checked before the charge: a mistake in them costs no budget.
    const publicBounds = bounds === undefined ? undefined : resolveBounds(bounds, options.columns ?? d);
    const dataset = budgetName(p.namespace, options.dataset ?? p.dataset ?? datasetId(matrix));
    const accountant = privacyAccountant(config);
    const { kind, cost, report } = chargeRelease(accountant, dataset, epsilon, delta, 'anonymize');
    const ledger = new DpLedger(
      kind === 'pure' ? laplaceMechanism : gaussianMechanism,
      options.noise ?? cryptoRandom,
    );
    const parts = publicBounds === undefined ? [p.rangeShare, 1 - p.rangeShare] : [1];
    const costs = splitCost(cost, parts);
    const b = publicBounds ?? estimateBounds(matrix, ledger, costs[0]!);
    const releaseCost = costs.at(-1)!;
    const [countCost, sumCost] = splitCost(releaseCost, [countShare(kind, d), 1 - countShare(kind, d)]);
    const grids = b.lo.map((lo, j) => grid(lo, b.hi[j]!));
    const counts = new Array<number>(anonymous.k).fill(0);
    const sums = new Array<number>(anonymous.k * d).fill(0);
    for (let i = 0; i < n; i++) {
      const c = anonymous.labels[i]!;
      if (c < 0) continue;
      counts[c]!++;
      for (let j = 0; j < d; j++) sums[c * d + j]! += toGrid(matrix.data[i * d + j]!, grids[j]!);
    }
    const noisyCounts = ledger.release('counts', counts, 1n, 1n, countCost!);
    const l1 = grids.reduce((s, g) => s + g.maxAbs, 0n);
    const l2 = grids.reduce((s, g) => s + g.maxAbs * g.maxAbs, 0n);
    const noisySums = ledger.release('sums', sums, l1, l2, sumCost!);
    const clusters = noisyCounts.map((count, c) => ({
      cluster: c,
      count,
      mean: grids.map((g, j) => {
        const v = (noisySums[c * d + j]! * g.step) / Math.max(count, 1);
        return Math.min(g.hi, Math.max(g.lo, v));
      }),
    }));
    return {
      clusters,
      labels: anonymous.labels,
      anonymity: anonymous.report,
      privacy: report,
      steps: ledger.steps,
    };
  });
}

function toMatrix(features: Matrix | readonly (readonly number[])[]): Matrix {
  if (!Array.isArray(features)) return features as Matrix;
  const rows = features as readonly (readonly number[])[];
  const cols = rows[0]?.length ?? 0;
  const data = new Float64Array(rows.length * cols);
  rows.forEach((r, i) => {
    if (r.length !== cols) throw new UsageError(`row ${i} has ${r.length} values, row 0 has ${cols}`);
    data.set(r, i * cols);
  });
  return { rows: rows.length, cols, data };
}
