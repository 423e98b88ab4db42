/**
 * The plain TypeScript backend: the reference every other backend is checked against.
 *
 * Straightforward loops, float64 accumulation throughout. Its expected values in the conformance
 * suite come from NumPy, never from itself.
 */

import { throwIfAborted } from '../../core/cancel.js';
import type * as M from '../../core/matrix.js';
import { assembleOnHost, momentsOnHost } from '../../linalg/blocks.js';
import { assignAll } from '../../linalg/nearest.js';
import {
  type Backend,
  type BackendFactory,
  checkLabels,
  type ReservoirRun,
  type SpikingRun,
} from '../backend.js';
import { reservoirRun, type Slice, spikingRun } from './dynamics.js';

function checkSameWidth(a: M.Matrix, b: M.Matrix, what: string): void {
  if (a.cols !== b.cols) throw new RangeError(`${what}: widths differ (${a.cols} vs ${b.cols})`);
}

export class JsBackend implements Backend {
  readonly name = 'js' as const;
  readonly device = 'CPU (plain TypeScript, one thread)';
  readonly precision = 'float64' as const;

  async matmul(a: M.Matrix, b: M.Matrix, bias?: M.Floats): Promise<M.Matrix> {
    if (a.cols !== b.rows) throw new RangeError(`matmul: ${a.rows}x${a.cols} @ ${b.rows}x${b.cols}`);
    if (bias && bias.length !== b.cols)
      throw new RangeError(`matmul: bias length ${bias.length} != ${b.cols}`);
    const m = a.rows;
    const n = b.cols;
    const kk = a.cols;
    const out = new Float64Array(m * n);
    const row = new Float64Array(n);
    for (let i = 0; i < m; i++) {
      if (bias) for (let j = 0; j < n; j++) row[j] = bias[j]!;
      else row.fill(0);
      for (let t = 0; t < kk; t++) {
        const av = a.data[i * kk + t]!;
        if (av === 0) continue;
        const boff = t * n;
        for (let j = 0; j < n; j++) row[j]! += av * b.data[boff + j]!;
      }
      out.set(row, i * n);
    }
    return { rows: m, cols: n, data: out };
  }

  async pairwiseDistances(a: M.Matrix, b: M.Matrix, options: { squared?: boolean } = {}): Promise<M.Matrix> {
    checkSameWidth(a, b, 'pairwiseDistances');
    const d = a.cols;
    const out = new Float64Array(a.rows * b.rows);
    for (let i = 0; i < a.rows; i++) {
      for (let j = 0; j < b.rows; j++) {
        let s = 0;
        for (let t = 0; t < d; t++) {
          const diff = a.data[i * d + t]! - b.data[j * d + t]!;
          s += diff * diff;
        }
        out[i * b.rows + j] = options.squared ? s : Math.sqrt(s);
      }
    }
    return { rows: a.rows, cols: b.rows, data: out };
  }

  async kmeansAssign(points: M.Matrix, centroids: M.Matrix): Promise<M.Assignment> {
    checkSameWidth(points, centroids, 'kmeansAssign');
    const n = points.rows;
    const labels = new Int32Array(n);
    const distances = new Float64Array(n);
    assignAll(points.data, n, centroids.data, centroids.rows, points.cols, labels, distances);
    return { labels, distances };
  }

  async kmeansReduce(points: M.Matrix, labels: Int32Array, k: number): Promise<M.ClusterSums> {
    checkLabels(labels, points.rows, k, 'kmeansReduce');
    const d = points.cols;
    const sums = new Float64Array(k * d);
    const counts = new Float64Array(k);
    for (let i = 0; i < points.rows; i++) {
      const j = labels[i]!;
      counts[j]!++;
      const off = i * d;
      const soff = j * d;
      for (let t = 0; t < d; t++) sums[soff + t]! += points.data[off + t]!;
    }
    return { sums, counts };
  }

  async kmeansStep(points: M.Matrix, centroids: M.Matrix, labels: Int32Array): Promise<M.LloydStep> {
    checkSameWidth(points, centroids, 'kmeansStep');
    const n = points.rows;
    const previous = labels.slice();
    const distances = new Float64Array(n);
    assignAll(points.data, n, centroids.data, centroids.rows, points.cols, labels, distances);
    const { sums, counts } = await this.kmeansReduce(points, labels, centroids.rows);
    let inertia = 0;
    let changed = 0;
    for (let i = 0; i < n; i++) {
      inertia += distances[i]!;
      if (previous[i] !== labels[i]) changed++;
    }
    return { sums, counts, inertia, changed };
  }

  async clusterDistanceSums(
    points: M.Matrix,
    labels: Int32Array,
    k: number,
    rowStart: number,
    rowEnd: number,
  ): Promise<Float64Array> {
    checkLabels(labels, points.rows, k, 'clusterDistanceSums');
    const d = points.cols;
    const n = points.rows;
    const p = points.data;
    const out = new Float64Array((rowEnd - rowStart) * k);
    for (let i = rowStart; i < rowEnd; i++) {
      const ioff = i * d;
      const base = (i - rowStart) * k;
      for (let j = 0; j < n; j++) {
        const joff = j * d;
        let s = 0;
        for (let t = 0; t < d; t++) {
          const diff = p[ioff + t]! - p[joff + t]!;
          s += diff * diff;
        }
        out[base + labels[j]!]! += Math.sqrt(s);
      }
    }
    return out;
  }

  reservoirRun(run: ReservoirRun): Promise<M.Matrix> {
    return cooperative(run.signal, (slice) => reservoirRun(run, slice));
  }

  spikingRun(run: SpikingRun): Promise<M.Matrix> {
    return cooperative(run.signal, (slice) => spikingRun(run, slice));
  }

  async columnMoments(m: M.Features, order?: Int32Array): Promise<M.Moments> {
    return momentsOnHost(m, order);
  }

  async assembleBlocks(blocks: readonly M.FeatureBlock[], order?: Int32Array): Promise<M.Matrix> {
    return assembleOnHost(blocks, order);
  }

  async dispose(): Promise<void> {}
}

/** How long a dynamics run holds the event loop before it yields (timers, the deadline run between). */
const SLICE_MS = 20;

/**
 * Drives a dynamics run (a generator that yields between time steps when its slice is over):
 * gives the event loop a turn between slices and stops when `signal` fires, so a deadline
 * interrupts the reference backend too, within a slice, even in the middle of a long sample.
 */
async function cooperative(
  signal: AbortSignal | undefined,
  run: (slice: Slice) => Generator<void, M.Matrix>,
): Promise<M.Matrix> {
  const slice: Slice = { until: performance.now() + SLICE_MS };
  const steps = run(slice);
  for (;;) {
    throwIfAborted(signal);
    const next = steps.next();
    if (next.done) return next.value;
    await new Promise((resolve) => setImmediate(resolve));
    slice.until = performance.now() + SLICE_MS;
  }
}

/** Always available: priority lowest, so faster backends are preferred under `auto`. */
export const jsBackendFactory: BackendFactory = {
  name: 'js',
  priority: 0,
  smallProblems: true,
  create: async () => new JsBackend(),
};
