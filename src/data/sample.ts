/**
 * A seeded sample of a stream of rows that does not depend on how the rows were chunked or
 * ordered: the `size` rows of smallest sample key (ties by content, then by index), the key being
 * the row's identity hash the spike generator uses (its id, else its content). Merging two samples
 * is taking the smallest of both, so it is associative like the other stage states. Rows come out
 * in that order, which for a file of at most `size` rows is the engine's canonical order
 * (src/data/order.ts): the streamed plan then fits exactly what the in-memory one does.
 */

/** One sampled row: its key, its index in the file, its values, and its id and label when known. */
export interface SampledRow {
  readonly key: number;
  readonly index: number;
  readonly values: Float64Array;
  readonly id?: string | undefined;
  readonly truth?: string | undefined;
}

function compare(a: SampledRow, b: SampledRow): number {
  if (a.key !== b.key) return a.key - b.key;
  for (let t = 0; t < a.values.length; t++) {
    const diff = a.values[t]! - b.values[t]!;
    if (diff !== 0) return diff;
  }
  return a.index - b.index;
}

export class KeySample {
  private rows: SampledRow[] = [];
  /** The key past which no row can enter (once the sample is full). */
  private cutoff = Number.POSITIVE_INFINITY;

  constructor(readonly size: number) {}

  /** Whether a row with this key could enter: a quick test before its values are copied. */
  admits(key: number): boolean {
    return key <= this.cutoff;
  }

  add(row: SampledRow): void {
    if (row.key > this.cutoff) return;
    this.rows.push(row);
    if (this.rows.length >= 2 * this.size) this.trim();
  }

  merge(other: KeySample): this {
    for (const row of other.sorted()) this.add(row);
    return this;
  }

  private trim(): void {
    this.rows.sort(compare);
    if (this.rows.length > this.size) {
      this.rows.length = this.size;
      this.cutoff = this.rows[this.size - 1]!.key;
    }
  }

  /** The sample, in key order. */
  sorted(): readonly SampledRow[] {
    this.trim();
    return this.rows;
  }
}
