/**
 * Column moments merged over chunks (Chan, Golub and LeVeque's pairwise update): each chunk's
 * count, mean and sum of squared deviations are computed in two passes over the chunk, then
 * merged. The merge is associative, so the same moments come from one process, all cores or many
 * machines, in any chunk order, equal up to float64 rounding. Non-finite values are left out of
 * their column (a NaN policy that imputes later needs the means of the finite ones).
 */
import { SAFE_MAGNITUDE } from './moments.js';

/** A mergeable state: per column, the count of finite values, their mean and sum of squared deviations. */
export class RunningMoments {
  readonly count: Float64Array;
  readonly mean: Float64Array;
  readonly m2: Float64Array;
  /** The largest magnitude seen: values past SAFE_MAGNITUDE would overflow the squares. */
  maxAbs = 0;

  constructor(readonly cols: number) {
    this.count = new Float64Array(cols);
    this.mean = new Float64Array(cols);
    this.m2 = new Float64Array(cols);
  }

  /** Adds `rows` rows of `cols` values, row-major. */
  add(values: ArrayLike<number>, rows: number): this {
    const d = this.cols;
    const chunk = new RunningMoments(d);
    const { count, mean, m2 } = chunk;
    let maxAbs = 0;
    for (let i = 0; i < rows; i++) {
      const at = i * d;
      for (let j = 0; j < d; j++) {
        const v = values[at + j]!;
        if (!Number.isFinite(v)) continue;
        count[j]!++;
        mean[j]! += v;
        const a = Math.abs(v);
        if (a > maxAbs) maxAbs = a;
      }
    }
    for (let j = 0; j < d; j++) if (count[j]! > 0) mean[j]! /= count[j]!;
    for (let i = 0; i < rows; i++) {
      const at = i * d;
      for (let j = 0; j < d; j++) {
        const v = values[at + j]!;
        if (!Number.isFinite(v)) continue;
        const dv = v - mean[j]!;
        m2[j]! += dv * dv;
      }
    }
    chunk.maxAbs = maxAbs;
    return this.merge(chunk);
  }

  /** Merges another state into this one (Chan et al.). */
  merge(other: RunningMoments): this {
    if (other.cols !== this.cols)
      throw new RangeError(`moments of ${other.cols} columns merged into ${this.cols}`);
    for (let j = 0; j < this.cols; j++) {
      const nb = other.count[j]!;
      if (nb === 0) continue;
      const na = this.count[j]!;
      const n = na + nb;
      const delta = other.mean[j]! - this.mean[j]!;
      this.mean[j] = na === 0 ? other.mean[j]! : this.mean[j]! + (delta * nb) / n;
      this.m2[j] = this.m2[j]! + other.m2[j]! + (delta * delta * na * nb) / n;
      this.count[j] = n;
    }
    this.maxAbs = Math.max(this.maxAbs, other.maxAbs);
    return this;
  }

  /** Population standard deviations. */
  stds(): Float64Array {
    return this.m2.map((m, j) => (this.count[j]! > 0 ? Math.sqrt(m / this.count[j]!) : 0));
  }

  /** Whether every value stayed where its square is finite. */
  get squarable(): boolean {
    return this.maxAbs <= SAFE_MAGNITUDE;
  }

  toJSON() {
    return {
      cols: this.cols,
      count: [...this.count],
      mean: [...this.mean],
      m2: [...this.m2],
      maxAbs: this.maxAbs,
    };
  }

  static fromJSON(o: ReturnType<RunningMoments['toJSON']>): RunningMoments {
    const m = new RunningMoments(o.cols);
    m.count.set(o.count);
    m.mean.set(o.mean);
    m.m2.set(o.m2);
    m.maxAbs = o.maxAbs;
    return m;
  }
}
