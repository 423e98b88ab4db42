/**
 * k-anonymity of released clusterings: no released cluster has fewer than `minClusterSize`
 * members. A smaller cluster is merged into its nearest neighbour (by centroid; the merged
 * centroid is the size-weighted mean) or suppressed (its rows keep their place with label -1), as
 * configured. Merging goes smallest first and repeats until every cluster is large enough; when
 * fewer rows than `minClusterSize` exist at all, every row is suppressed. Surviving clusters are
 * numbered 0..k'-1 in their original order.
 */

import { clusterSizes } from '../cluster/metrics.js';

export type SmallClusterStrategy = 'merge' | 'suppress';

export interface AnonymityOptions {
  readonly minClusterSize: number;
  readonly strategy: SmallClusterStrategy;
}

/** What was done, in the numbering of the clusters before. */
export interface AnonymityReport {
  readonly minClusterSize: number;
  readonly strategy: SmallClusterStrategy;
  readonly clustersBefore: number;
  readonly clustersAfter: number;
  /** Each merge, in order: `cluster` (of `size` rows) went into `into`. */
  readonly merged: readonly { readonly cluster: number; readonly into: number; readonly size: number }[];
  readonly suppressed: readonly { readonly cluster: number; readonly size: number }[];
  readonly suppressedRows: number;
}

export interface Anonymized {
  /** Labels 0..k'-1, or -1 for a suppressed row; as many as before. */
  readonly labels: Int32Array;
  readonly k: number;
  /** k' x d. */
  readonly centroids: Float64Array;
  readonly sizes: readonly number[];
  readonly report: AnonymityReport;
}

/**
 * Enforces the minimum cluster size on `labels` (0..k-1) with their k x d `centroids`. `weights`
 * weigh the centroids of a merge (the cluster sizes by default; DP results pass their noisy counts
 * so the merged centroid stays a function of released values).
 */
export function enforceMinClusterSize(
  labels: Int32Array,
  centroids: Float64Array,
  k: number,
  d: number,
  options: AnonymityOptions,
  weights?: readonly number[],
): Anonymized {
  const { minClusterSize: m, strategy } = options;
  if (!Number.isInteger(m) || m < 1) throw new RangeError(`minClusterSize must be an integer >= 1, got ${m}`);
  const sizes = clusterSizes(labels, k);
  const weight = sizes.map((s, c) => Math.max(weights?.[c] ?? s, 0));
  const where = Array.from({ length: k }, (_, c) => c); // each cluster's current owner
  const owner = (c: number): number => {
    if (where[c] !== c) where[c] = owner(where[c]!);
    return where[c]!;
  };
  const centre = Float64Array.from(centroids);
  const live = new Set<number>();
  for (let c = 0; c < k; c++) if (sizes[c]! > 0) live.add(c);
  const merged: { cluster: number; into: number; size: number }[] = [];
  const suppressed: { cluster: number; size: number }[] = [];

  const smallest = () => {
    let best = -1;
    for (const c of live) if (sizes[c]! < m && (best < 0 || sizes[c]! < sizes[best]!)) best = c;
    return best;
  };
  for (let c = smallest(); c >= 0; c = smallest()) {
    if (strategy === 'suppress' || live.size === 1) {
      suppressed.push({ cluster: c, size: sizes[c]! });
      live.delete(c);
      continue;
    }
    let into = -1;
    let nearest = Number.POSITIVE_INFINITY;
    for (const o of live) {
      if (o === c) continue;
      let dist = 0;
      for (let j = 0; j < d; j++) dist += (centre[c * d + j]! - centre[o * d + j]!) ** 2;
      if (dist < nearest) {
        nearest = dist;
        into = o;
      }
    }
    const total = weight[c]! + weight[into]!;
    for (let j = 0; j < d; j++) {
      const a = centre[c * d + j]!;
      const b = centre[into * d + j]!;
      centre[into * d + j] = total > 0 ? (a * weight[c]! + b * weight[into]!) / total : (a + b) / 2;
    }
    merged.push({ cluster: c, into, size: sizes[c]! });
    sizes[into]! += sizes[c]!;
    weight[into]! += weight[c]!;
    where[c] = into;
    live.delete(c);
  }

  const kept = [...live].sort((a, b) => a - b);
  const index = new Map(kept.map((c, i) => [c, i]));
  const out = new Int32Array(labels.length);
  let suppressedRows = 0;
  labels.forEach((label, i) => {
    const to = label < 0 ? undefined : index.get(owner(label));
    if (to === undefined) suppressedRows++;
    out[i] = to ?? -1;
  });
  const outCentroids = new Float64Array(kept.length * d);
  kept.forEach((c, i) => {
    outCentroids.set(centre.subarray(c * d, (c + 1) * d), i * d);
  });
  return {
    labels: out,
    k: kept.length,
    centroids: outCentroids,
    sizes: kept.map((c) => sizes[c]!),
    report: {
      minClusterSize: m,
      strategy,
      clustersBefore: k,
      clustersAfter: kept.length,
      merged,
      suppressed,
      suppressedRows,
    },
  };
}
