import { describe, expect, it } from 'vitest';
import { JsBackend } from '../../src/backends/js/js-backend.js';
import { makeBlobs } from '../../src/bench/workloads.js';
import { kmeans } from '../../src/cluster/kmeans.js';
import { calinskiHarabasz, daviesBouldin, externalQuality } from '../../src/cluster/metrics.js';
import {
  ClusterMoments,
  ContingencyCounts,
  LloydSums,
  nextCentres,
  streamedQuality,
} from '../../src/cluster/streamed.js';
import type { Matrix } from '../../src/core/matrix.js';

const backend = new JsBackend();
const n = 1_200;
const d = 3;
const k = 4;
const { points, truth } = makeBlobs(n, d, k, 5, 2);
const X: Matrix = { rows: n, cols: d, data: Float64Array.from(points.data) };

/** Rows [from, to) of X. */
function rows(from: number, to: number): Matrix {
  return { rows: to - from, cols: d, data: X.data.subarray(from * d, to * d) };
}
const cuts = [0, 1, 250, 251, 900, n];

describe('K-means over chunks', () => {
  it('moves the centres of one Lloyd pass as a pass over all rows does', async () => {
    const centres = Float64Array.from({ length: k * d }, (_, i) => X.data[i * 97]!);
    const whole = await backend.kmeansStep(
      X,
      { rows: k, cols: d, data: centres },
      new Int32Array(n).fill(-1),
    );
    const pass = new LloydSums(k, d);
    for (let c = 0; c + 1 < cuts.length; c++) {
      const part = rows(cuts[c]!, cuts[c + 1]!);
      const sub = new LloydSums(k, d).add(
        await backend.kmeansStep(
          part,
          { rows: k, cols: d, data: centres },
          new Int32Array(part.rows).fill(-1),
        ),
      );
      pass.merge(sub);
    }
    expect(pass.inertia).toBeCloseTo(whole.inertia, 8);
    const next = nextCentres(pass, centres);
    for (let j = 0; j < k; j++) {
      for (let t = 0; t < d; t++) {
        expect(next.centres[j * d + t]).toBeCloseTo(whole.sums[j * d + t]! / whole.counts[j]!, 10);
      }
    }
    let shift = 0;
    for (let i = 0; i < k * d; i++) shift += (next.centres[i]! - centres[i]!) ** 2;
    expect(next.shift).toBeCloseTo(shift, 10);
  });

  it('keeps the centre of a cluster a pass leaves empty', () => {
    const pass = new LloydSums(2, 1).add({
      sums: Float64Array.of(6, 0),
      counts: Float64Array.of(3, 0),
      inertia: 1,
    });
    const next = nextCentres(pass, Float64Array.of(1, 9));
    expect(Array.from(next.centres)).toEqual([2, 9]);
    expect(next).toMatchObject({ shift: 1, empty: 1 });
  });

  it('scores every row from per-cluster moments as the in-memory metrics do', async () => {
    const fit = await kmeans(backend, X, {
      k,
      nInit: 2,
      maxIter: 100,
      tol: 0,
      seed: 1,
      algorithm: 'lloyd',
      miniBatchThreshold: n,
      batchSize: 100,
      maxNoImprovement: 10,
    });
    const moments = new ClusterMoments(k, d);
    for (let c = 0; c + 1 < cuts.length; c++) {
      const part = rows(cuts[c]!, cuts[c + 1]!);
      const assigned = await backend.kmeansAssign(part, { rows: k, cols: d, data: fit.centroids });
      moments.merge(new ClusterMoments(k, d).add(part, assigned.labels, assigned.distances));
    }
    const q = streamedQuality(moments, fit.centroids);
    expect(q.inertia).toBeCloseTo(fit.inertia, 6);
    expect(q.calinskiHarabasz! / calinskiHarabasz(X, fit.labels, k)).toBeCloseTo(1, 9);
    expect(q.daviesBouldin! / daviesBouldin(X, fit.labels, k)).toBeCloseTo(1, 9);
  });

  it('counts the contingency with the truth as externalQuality does', () => {
    const names = Array.from(truth, (t) => `class-${t}`);
    const labels = Int32Array.from(truth, (t, i) => (i % 13 === 0 ? (t + 1) % k : t));
    const counts = new ContingencyCounts(k);
    for (let c = 0; c + 1 < cuts.length; c++) {
      const from = cuts[c]!;
      const to = cuts[c + 1]!;
      counts.add(
        names.slice(from, to).map((name) => counts.code(name)),
        labels.subarray(from, to),
      );
    }
    const expected = externalQuality(names, labels);
    const got = counts.quality();
    expect(got.ari).toBeCloseTo(expected.ari, 12);
    expect(got.nmi).toBeCloseTo(expected.nmi, 12);
    expect(got.randIndex).toBeCloseTo(expected.randIndex, 12);
  });
});
