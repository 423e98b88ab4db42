/** The nearest centroid of each point on the host: the CPU reference's assignment, and DP K-means'. */
import type { Floats } from '../core/matrix.js';

/**
 * Nearest centroid of every point, ties to the lowest index: labels into `labels`, squared
 * distances into `distances`. One loop shared by assign and step, written without allocation in
 * the inner loops (this is the hot path of K-means on the CPU reference).
 */
export function assignAll(
  p: Floats,
  n: number,
  c: Floats,
  k: number,
  d: number,
  labels: Int32Array,
  distances: Float64Array,
) {
  for (let i = 0; i < n; i++) {
    const off = i * d;
    let best = 0;
    let bestDist = Number.POSITIVE_INFINITY;
    for (let j = 0; j < k; j++) {
      const coff = j * d;
      let s = 0;
      for (let t = 0; t < d; t++) {
        const diff = p[off + t]! - c[coff + t]!;
        s += diff * diff;
      }
      if (s < bestDist) {
        bestDist = s;
        best = j;
      }
    }
    labels[i] = best;
    distances[i] = bestDist;
  }
}
