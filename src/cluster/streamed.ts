/**
 * K-means and its judges over chunks: each pass maps every chunk to a small state and merges the
 * states, associatively, so a pass runs the same in one process, on all cores or on many machines.
 *
 * - {@link LloydSums}: one Lloyd pass (per-cluster sums and counts, the objective), from which the
 *   next centres come ({@link nextCentres}).
 * - {@link ClusterMoments}: the last pass (counts, sums, the distances to the final centres), from
 *   which the inertia, Calinski-Harabasz and Davies-Bouldin of all rows come ({@link streamedQuality}).
 * - {@link ContingencyCounts}: true classes against clusters, for ARI and NMI.
 */
import type { ClusterSums, Matrix } from '../core/matrix.js';
import {
  calinskiHarabaszOf,
  contingencyOf,
  contingencyQuality,
  daviesBouldinOf,
  type ExternalQuality,
} from './metrics.js';

/** One Lloyd pass's state: per-cluster sums (k x d) and counts, and the sum of squared distances. */
export class LloydSums {
  readonly sums: Float64Array;
  readonly counts: Float64Array;
  inertia = 0;

  constructor(
    readonly k: number,
    readonly d: number,
  ) {
    this.sums = new Float64Array(k * d);
    this.counts = new Float64Array(k);
  }

  add(step: ClusterSums & { readonly inertia: number }): this {
    for (let i = 0; i < this.sums.length; i++) this.sums[i]! += step.sums[i]!;
    for (let j = 0; j < this.k; j++) this.counts[j]! += step.counts[j]!;
    this.inertia += step.inertia;
    return this;
  }

  merge(other: LloydSums): this {
    return this.add(other);
  }

  toJSON() {
    return { k: this.k, d: this.d, sums: [...this.sums], counts: [...this.counts], inertia: this.inertia };
  }

  static fromJSON(o: ReturnType<LloydSums['toJSON']>): LloydSums {
    const s = new LloydSums(o.k, o.d);
    s.sums.set(o.sums);
    s.counts.set(o.counts);
    s.inertia = o.inertia;
    return s;
  }
}

/**
 * The centres a pass moves to (a cluster left empty keeps its centre) and how far they moved in
 * all: the sum of squared shifts, which scikit-learn compares with `tol` times the mean variance.
 */
export function nextCentres(
  pass: LloydSums,
  centres: Float64Array,
): { centres: Float64Array; shift: number; empty: number } {
  const { k, d } = pass;
  const next = new Float64Array(k * d);
  let shift = 0;
  let empty = 0;
  for (let j = 0; j < k; j++) {
    const c = pass.counts[j]!;
    if (c === 0) empty++;
    for (let t = 0; t < d; t++) {
      const v = c === 0 ? centres[j * d + t]! : pass.sums[j * d + t]! / c;
      next[j * d + t] = v;
      shift += (v - centres[j * d + t]!) ** 2;
    }
  }
  return { centres: next, shift, empty };
}

/** The last pass's state: per cluster the count, the sum of the points and of their distances to the centre. */
export class ClusterMoments {
  readonly counts: Float64Array;
  readonly sums: Float64Array;
  /** Per cluster, the sum of Euclidean distances to its centre. */
  readonly spread: Float64Array;
  /** Sum of squared distances to the centres (the K-means objective). */
  inertia = 0;
  /** The overall sum of the points, per column. */
  readonly total: Float64Array;

  constructor(
    readonly k: number,
    readonly d: number,
  ) {
    this.counts = new Float64Array(k);
    this.sums = new Float64Array(k * d);
    this.spread = new Float64Array(k);
    this.total = new Float64Array(d);
  }

  /** Adds a chunk: its points, their labels and their squared distances to their centre. */
  add(points: Matrix, labels: Int32Array, squared: ArrayLike<number>): this {
    const { d } = this;
    for (let i = 0; i < points.rows; i++) {
      const j = labels[i]!;
      this.counts[j]!++;
      this.spread[j]! += Math.sqrt(squared[i]!);
      this.inertia += squared[i]!;
      for (let t = 0; t < d; t++) {
        const v = points.data[i * d + t]!;
        this.sums[j * d + t]! += v;
        this.total[t]! += v;
      }
    }
    return this;
  }

  merge(other: ClusterMoments): this {
    for (let j = 0; j < this.k; j++) {
      this.counts[j]! += other.counts[j]!;
      this.spread[j]! += other.spread[j]!;
    }
    for (let i = 0; i < this.sums.length; i++) this.sums[i]! += other.sums[i]!;
    for (let t = 0; t < this.d; t++) this.total[t]! += other.total[t]!;
    this.inertia += other.inertia;
    return this;
  }

  toJSON() {
    const { k, d, inertia } = this;
    return {
      k,
      d,
      inertia,
      counts: [...this.counts],
      sums: [...this.sums],
      spread: [...this.spread],
      total: [...this.total],
    };
  }

  static fromJSON(o: ReturnType<ClusterMoments['toJSON']>): ClusterMoments {
    const m = new ClusterMoments(o.k, o.d);
    m.counts.set(o.counts);
    m.sums.set(o.sums);
    m.spread.set(o.spread);
    m.total.set(o.total);
    m.inertia = o.inertia;
    return m;
  }
}

/**
 * Inertia, Calinski-Harabasz and Davies-Bouldin of every row from the last pass's moments. The
 * within-cluster sum of squares is about the clusters' means, exactly: the objective about the
 * centres less n_j |mean_j - centre_j|^2 per cluster. Davies-Bouldin's spreads are the mean
 * distances to the centres, which are the clusters' means once Lloyd has converged.
 */
export function streamedQuality(
  m: ClusterMoments,
  centres: Float64Array,
): { inertia: number; calinskiHarabasz: number | null; daviesBouldin: number | null } {
  const { k, d } = m;
  const n = m.counts.reduce((a, b) => a + b, 0);
  const means = new Float64Array(k * d);
  const spreads = new Float64Array(k);
  let within = m.inertia;
  let clusters = 0;
  for (let j = 0; j < k; j++) {
    const c = m.counts[j]!;
    if (c === 0) {
      spreads[j] = Number.NaN;
      continue;
    }
    clusters++;
    spreads[j] = m.spread[j]! / c;
    let off = 0;
    for (let t = 0; t < d; t++) {
      means[j * d + t] = m.sums[j * d + t]! / c;
      off += (means[j * d + t]! - centres[j * d + t]!) ** 2;
    }
    within -= c * off;
  }
  if (clusters < 2 || clusters > n - 1)
    return { inertia: m.inertia, calinskiHarabasz: null, daviesBouldin: null };
  const mean = m.total.map((v) => v / n);
  return {
    inertia: m.inertia,
    calinskiHarabasz: calinskiHarabaszOf(m.counts, means, mean, Math.max(0, within), d),
    daviesBouldin: daviesBouldinOf(spreads, centres, d),
  };
}

/** True classes (coded as they come) against clusters, counted over chunks. */
export class ContingencyCounts {
  private readonly codes = new Map<string, number>();
  private readonly counts: number[][] = [];

  constructor(readonly k: number) {}

  /** The code of a class name, assigned in order of first appearance. */
  code(name: string): number {
    let c = this.codes.get(name);
    if (c === undefined) {
      c = this.codes.size;
      this.codes.set(name, c);
    }
    return c;
  }

  /** Counts a chunk: class codes (from {@link code}) and cluster labels (negative: left out). */
  add(classes: ArrayLike<number>, labels: ArrayLike<number>): this {
    for (let i = 0; i < labels.length; i++) {
      const l = labels[i]!;
      if (l < 0) continue;
      const c = classes[i]!;
      const row = this.counts[c] ?? new Array<number>(this.k).fill(0);
      this.counts[c] = row;
      row[l]!++;
    }
    return this;
  }

  /** Adds another count's classes by name: codes new to this one follow in the other's order. */
  merge(other: ContingencyCounts): this {
    for (const [name, c] of other.codes) {
      const row = other.counts[c];
      if (!row) {
        this.code(name);
        continue;
      }
      const mine = this.code(name);
      const into = this.counts[mine] ?? new Array<number>(this.k).fill(0);
      this.counts[mine] = into;
      for (let j = 0; j < this.k; j++) into[j]! += row[j]!;
    }
    return this;
  }

  toJSON() {
    return { k: this.k, classes: [...this.codes.keys()], counts: this.counts.map((r) => r ?? null) };
  }

  static fromJSON(o: ReturnType<ContingencyCounts['toJSON']>): ContingencyCounts {
    const c = new ContingencyCounts(o.k);
    for (const name of o.classes) c.code(name);
    o.counts.forEach((row, i) => {
      if (row) c.counts[i] = [...row];
    });
    return c;
  }

  quality(): ExternalQuality {
    const rows = Math.max(this.codes.size, this.counts.length);
    const table = new Float64Array(rows * this.k);
    this.counts.forEach((row, a) => {
      row?.forEach((v, b) => {
        table[a * this.k + b] = v;
      });
    });
    return contingencyQuality(contingencyOf(table, rows, this.k));
  }
}
