/**
 * Performance baselines: per workload shape (method, backend, and N and d in power-of-two
 * buckets), the phase durations of the last runs, kept in `$NEUROCLUSTER_HOME/state/baselines.json`.
 * A run whose phase takes more than `anomalyFactor` times the baseline (the median of the kept
 * runs, once `minSamples` of them exist) is flagged as an anomaly. Every run then joins the
 * baseline, the oldest leaving once `window` are kept.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeStateFileSync } from '../core/atomic.js';

export interface BaselineSettings {
  readonly enabled: boolean;
  readonly anomalyFactor: number;
  readonly window: number;
  readonly minSamples: number;
  /** Phases shorter than this (seconds) are not judged: their noise is larger than they are. */
  readonly minSeconds: number;
}

/** A phase that ran slower than its baseline allows. */
export interface PerformanceAnomaly {
  readonly phase: string;
  readonly seconds: number;
  /** The median of the kept runs of this shape. */
  readonly baseline: number;
  readonly factor: number;
}

export interface WorkloadShape {
  readonly method: string;
  readonly backend: string;
  readonly n: number;
  readonly d: number;
}

type Store = Record<string, Record<string, number[]>>;

/** The baseline file of a NEUROCLUSTER_HOME. */
export function baselineFile(home: string): string {
  return join(home, 'state', 'baselines.json');
}

/** `method|backend|n<2^i>|d<2^j>`: runs of similar size share a baseline. */
export function shapeKey(s: WorkloadShape): string {
  const bucket = (x: number) => 2 ** Math.floor(Math.log2(Math.max(1, x)));
  return `${s.method}|${s.backend}|n${bucket(s.n)}|d${bucket(s.d)}`;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function read(file: string): Store {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as Store) : {};
  } catch {
    return {};
  }
}

/**
 * Judges a run's phase durations against the baseline of its shape, then adds them to it; returns
 * the anomalies (none while the baseline has fewer than `minSamples` runs).
 */
export function recordRun(
  file: string,
  shape: WorkloadShape,
  phases: Readonly<Record<string, number>>,
  s: BaselineSettings,
): PerformanceAnomaly[] {
  if (!s.enabled) return [];
  const store = read(file);
  const key = shapeKey(shape);
  const kept = store[key] ?? {};
  store[key] = kept;
  const anomalies: PerformanceAnomaly[] = [];
  for (const [phase, seconds] of Object.entries(phases)) {
    const runs = kept[phase] ?? [];
    kept[phase] = runs;
    if (runs.length >= s.minSamples && seconds >= s.minSeconds) {
      const baseline = median(runs);
      if (seconds > s.anomalyFactor * baseline)
        anomalies.push({ phase, seconds, baseline, factor: seconds / baseline });
    }
    runs.push(seconds);
    if (runs.length > s.window) runs.splice(0, runs.length - s.window);
  }
  mkdirSync(dirname(file), { recursive: true });
  writeStateFileSync(file, `${JSON.stringify(store)}\n`);
  return anomalies;
}
