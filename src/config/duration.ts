/** Durations in configuration and flags: `500ms`, `3s`, `10m`, `1h`, or a plain number of seconds. */
import { z } from 'zod';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** The longest duration: what a Node.js timer can wait (2^31 - 1 ms, about 24.8 days). */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** Milliseconds of a duration; undefined when it is not one (not positive, or past MAX_DURATION_MS). */
export function parseDuration(value: string | number): number | undefined {
  let ms: number;
  if (typeof value === 'number') ms = value * 1000;
  else {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
    if (!match) return undefined;
    ms = Number(match[1]) * UNITS[match[2] ?? 's']!;
  }
  // Past the limit a timer fires at once (Node warns on stderr and waits 1 ms).
  return ms > 0 && ms <= MAX_DURATION_MS ? ms : undefined;
}

/**
 * A duration (`500ms`, `3s`, `10m`, `1h`, or a number of seconds), kept as written (a document
 * parsed twice must mean the same); {@link durationMs} converts it where it is used.
 */
export const durationSchema = (fallback: string) =>
  z
    .union([z.string(), z.number()])
    .default(fallback)
    .refine((value) => parseDuration(value) !== undefined, {
      message: 'not a positive duration of at most 24 days (use 500ms, 3s, 10m, 1h, or a number of seconds)',
    });

/** Milliseconds of a duration that passed the schema. */
export function durationMs(value: string | number): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new RangeError(`not a duration: ${JSON.stringify(value)}`);
  return ms;
}
