/**
 * Quality gates: checks of a clustering result against minimums (silhouette, Calinski-Harabasz,
 * the smallest cluster), plus any the library user adds. In `warn` mode a failed gate is reported
 * in the result and the log and changes nothing else; in `fail` mode the request fails.
 */
import { clusterSizes, type InternalQuality } from './metrics.js';

/** One failed gate: what was measured, and the threshold it missed. */
export interface GateFailure {
  readonly gate: string;
  readonly value: number;
  readonly threshold: number;
}

/** What a gate sees of a result. */
export interface GateInput {
  /** The released labels (none when a streamed fit holds too many rows to return them). */
  readonly labels: Int32Array;
  /** Rows in each cluster, when the fit counted them (a streamed fit): what the labels would give. */
  readonly sizes?: readonly number[];
  readonly k: number;
  /** Metrics of the matrix K-means clustered. */
  readonly quality: InternalQuality;
  /** Metrics of the cleaned input under the same labels. */
  readonly inputQuality: InternalQuality;
}

/** A gate: a function of the result, returning the failure or nothing when it passes. */
export type QualityGate = (result: GateInput) => GateFailure | undefined;

export interface GateSettings {
  readonly minSilhouette: number;
  readonly minCalinskiHarabasz: number;
  readonly minClusterSize: number;
}

/** A minimum on a metric; a metric that is undefined for this result (null) is not judged. */
function minimum(gate: string, threshold: number, pick: (r: GateInput) => number | null): QualityGate {
  return (r) => {
    const value = pick(r);
    return value !== null && value < threshold ? { gate, value, threshold } : undefined;
  };
}

/** The built-in gates with the configured thresholds. */
export function builtinGates(s: GateSettings): QualityGate[] {
  return [
    minimum('silhouette', s.minSilhouette, (r) => r.quality.silhouette),
    minimum('calinskiHarabasz', s.minCalinskiHarabasz, (r) => r.quality.calinskiHarabasz),
    minimum('clusterSize', s.minClusterSize, (r) => Math.min(...(r.sizes ?? clusterSizes(r.labels, r.k)))),
  ];
}

/** The failures of every gate, in order. */
export function evaluateGates(gates: readonly QualityGate[], input: GateInput): GateFailure[] {
  const failures: GateFailure[] = [];
  for (const gate of gates) {
    const failure = gate(input);
    if (failure) failures.push(failure);
  }
  return failures;
}
