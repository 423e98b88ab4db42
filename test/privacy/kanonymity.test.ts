/** k-anonymity: no released cluster below the minimum, by merging or suppression, N labels always. */
import { describe, expect, it } from 'vitest';
import { enforceMinClusterSize } from '../../src/security/kanonymity.js';

/** Labels with the given cluster sizes, in order. */
function labelsOf(sizes: number[]): Int32Array {
  return Int32Array.from(sizes.flatMap((s, c) => new Array<number>(s).fill(c)));
}

describe('enforceMinClusterSize', () => {
  // Centroids on a line: 0 at x=0, 1 at x=1, 2 at x=10.
  const centroids = Float64Array.from([0, 1, 10]);

  it('merges a small cluster into its nearest neighbour, size-weighted, and renumbers', () => {
    const labels = labelsOf([2, 8, 10]);
    const out = enforceMinClusterSize(labels, centroids, 3, 1, { minClusterSize: 5, strategy: 'merge' });
    expect(out.k).toBe(2);
    expect(out.labels).toHaveLength(20);
    expect([...out.labels]).toEqual([...new Array<number>(10).fill(0), ...new Array<number>(10).fill(1)]);
    expect(out.sizes).toEqual([10, 10]);
    expect(out.centroids[0]).toBeCloseTo((0 * 2 + 1 * 8) / 10, 12);
    expect(out.report).toEqual({
      minClusterSize: 5,
      strategy: 'merge',
      clustersBefore: 3,
      clustersAfter: 2,
      merged: [{ cluster: 0, into: 1, size: 2 }],
      suppressed: [],
      suppressedRows: 0,
    });
  });

  it('keeps merging until every cluster is large enough', () => {
    const out = enforceMinClusterSize(labelsOf([2, 2, 10]), centroids, 3, 1, {
      minClusterSize: 5,
      strategy: 'merge',
    });
    // 0 (2) into 1 (now 4, still small), then 1 into 2.
    expect(out.k).toBe(1);
    expect(out.sizes).toEqual([14]);
    expect(out.report.merged.map((m) => [m.cluster, m.into])).toEqual([
      [0, 1],
      [1, 2],
    ]);
    expect([...out.labels].every((l) => l === 0)).toBe(true);
  });

  it('suppresses small clusters when told to: their rows keep their place with label -1', () => {
    const out = enforceMinClusterSize(labelsOf([2, 8, 10]), centroids, 3, 1, {
      minClusterSize: 5,
      strategy: 'suppress',
    });
    expect(out.labels).toHaveLength(20);
    expect([...out.labels.subarray(0, 2)]).toEqual([-1, -1]);
    expect(out.k).toBe(2);
    expect(out.report.suppressed).toEqual([{ cluster: 0, size: 2 }]);
    expect(out.report.suppressedRows).toBe(2);
    expect([...out.centroids]).toEqual([1, 10]);
  });

  it('suppresses everything when fewer rows than the minimum exist', () => {
    const out = enforceMinClusterSize(labelsOf([1, 2, 1]), centroids, 3, 1, {
      minClusterSize: 5,
      strategy: 'merge',
    });
    expect(out.k).toBe(0);
    expect([...out.labels]).toEqual([-1, -1, -1, -1]);
    expect(out.report.suppressedRows).toBe(4);
  });

  it('drops empty clusters and changes nothing when all are large enough', () => {
    const out = enforceMinClusterSize(labelsOf([6, 0, 7]), centroids, 3, 1, {
      minClusterSize: 5,
      strategy: 'merge',
    });
    expect(out.k).toBe(2);
    expect(out.sizes).toEqual([6, 7]);
    expect(out.report.merged).toEqual([]);
    expect(out.report.suppressedRows).toBe(0);
  });
});
