/**
 * Differential-privacy mechanisms over integers, registered by name. A privacy cost is an integer
 * number of pico-units (1e-12): pico-epsilon for pure DP, pico-rho for zero-concentrated DP. Costs
 * are integers so that budgets, shares and spending add up exactly (0.1 + 0.2 is 0.3 here), and
 * every noise scale is an exact rational computed from the cost actually charged: nothing is
 * rounded in the user's favour.
 *
 * - `laplace`: pure epsilon-DP; adds discrete Laplace noise of scale Delta_1 / epsilon to each
 *   value, Delta_1 the L1 sensitivity of the whole vector.
 * - `gaussian`: rho-zCDP; adds discrete Gaussian noise of variance Delta_2^2 / (2 rho) to each
 *   value, Delta_2 the L2 sensitivity (Canonne, Kamath and Steinke 2020, Theorem 14).
 *
 * Real values are released through {@link toGrid}: clipped to their bounds, rounded to a grid, and
 * scaled to integers; the sensitivity is taken on the rounded integers, so the rounding is in it.
 */
import {
  type RandomSource,
  type Rational,
  sampleDiscreteGaussian,
  sampleDiscreteLaplace,
} from './samplers.js';

/** Pico-units per unit of epsilon or rho. */
export const PICO = 1_000_000_000_000n;

export type PrivacyKind = 'pure' | 'zcdp';

/** How much one record can change the released vector (add/remove-one neighbours). */
export interface Sensitivity {
  /** L1 sensitivity: the sum over coordinates of the most one record moves each. */
  readonly l1: bigint;
  /** Squared L2 sensitivity. */
  readonly l2Squared: bigint;
}

export interface Mechanism {
  readonly name: string;
  readonly kind: PrivacyKind;
  /** `values` plus noise calibrated to `sensitivity` at a cost of `cost` pico-units. */
  release(values: readonly bigint[], sensitivity: Sensitivity, cost: bigint, rng?: RandomSource): bigint[];
  /** The noise's standard deviation, in the values' units (for documentation and tests). */
  noiseStd(sensitivity: Sensitivity, cost: bigint): number;
  /** A value one noise draw exceeds with probability at most `p` (thresholds on noisy counts). */
  tail(sensitivity: Sensitivity, cost: bigint, p: number): number;
}

function positive(cost: bigint, what: string): void {
  if (cost <= 0n) throw new RangeError(`${what}: the privacy cost must be positive, got ${cost} pico-units`);
}

/** Discrete Laplace scale Delta_1 / epsilon, epsilon = cost / PICO. */
export function laplaceScale(sensitivity: Sensitivity, cost: bigint): Rational {
  positive(cost, 'laplace');
  return { num: sensitivity.l1 * PICO, den: cost };
}

/** Discrete Gaussian variance Delta_2^2 / (2 rho), rho = cost / PICO. */
export function gaussianVariance(sensitivity: Sensitivity, cost: bigint): Rational {
  positive(cost, 'gaussian');
  return { num: sensitivity.l2Squared * PICO, den: 2n * cost };
}

const ratio = (r: Rational) => Number(r.num) / Number(r.den);

export const laplaceMechanism: Mechanism = {
  name: 'laplace',
  kind: 'pure',
  release(values, sensitivity, cost, rng) {
    const scale = laplaceScale(sensitivity, cost);
    if (sensitivity.l1 === 0n) return [...values];
    return values.map((v) => v + sampleDiscreteLaplace(scale, rng));
  },
  noiseStd(sensitivity, cost) {
    // Var = 2 e^{-1/b} / (1 - e^{-1/b})^2 for scale b.
    const b = ratio(laplaceScale(sensitivity, cost));
    const q = Math.exp(-1 / b);
    return Math.sqrt((2 * q) / (1 - q) ** 2);
  },
  tail(sensitivity, cost, p) {
    // P(X >= t) = q^t / (1 + q) < exp(-t / b).
    return ratio(laplaceScale(sensitivity, cost)) * Math.log(1 / p);
  },
};

export const gaussianMechanism: Mechanism = {
  name: 'gaussian',
  kind: 'zcdp',
  release(values, sensitivity, cost, rng) {
    const variance = gaussianVariance(sensitivity, cost);
    if (sensitivity.l2Squared === 0n) return [...values];
    return values.map((v) => v + sampleDiscreteGaussian(variance, rng));
  },
  noiseStd(sensitivity, cost) {
    // The discrete Gaussian's variance is at most sigma^2 (CKS20 Corollary 9).
    return Math.sqrt(ratio(gaussianVariance(sensitivity, cost)));
  },
  tail(sensitivity, cost, p) {
    // The discrete Gaussian is sub-Gaussian with variance proxy sigma^2 (CKS20 Proposition 25).
    return Math.sqrt(2 * ratio(gaussianVariance(sensitivity, cost)) * Math.log(1 / p));
  },
};

const registry = new Map<string, Mechanism>([
  [laplaceMechanism.name, laplaceMechanism],
  [gaussianMechanism.name, gaussianMechanism],
]);

/** Adds a mechanism of your own; a name already taken throws. */
export function registerMechanism(mechanism: Mechanism): void {
  if (registry.has(mechanism.name))
    throw new Error(`a mechanism named "${mechanism.name}" is already registered`);
  registry.set(mechanism.name, mechanism);
}

/** The mechanism of that name; throws naming the known ones. */
export function mechanism(name: string): Mechanism {
  const m = registry.get(name);
  if (!m) throw new RangeError(`no privacy mechanism "${name}" (known: ${[...registry.keys()].join(', ')})`);
  return m;
}

/** Pico-units of an epsilon or rho given as a number (rounded to the nearest pico-unit). */
export function toPico(amount: number): bigint {
  if (!Number.isFinite(amount) || amount < 0)
    throw new RangeError(`privacy amount ${amount} is not a finite number >= 0`);
  return BigInt(Math.round(amount * 1e12));
}

/** An amount in pico-units as a number. */
export function fromPico(units: bigint): number {
  return Number(units) / 1e12;
}

/**
 * The grid real values are released on: each value is clipped to [lo, hi] and rounded to the
 * nearest multiple of `step` = (hi - lo) / 2^16, then counted in steps. `maxAbs` is the largest
 * |integer| a value can become, the per-value sensitivity.
 */
export interface Grid {
  readonly lo: number;
  readonly hi: number;
  readonly step: number;
  readonly maxAbs: bigint;
}

export const GRID_STEPS = 65_536;

export function grid(lo: number, hi: number): Grid {
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) {
    throw new RangeError(`bounds [${lo}, ${hi}] must be finite with lo < hi`);
  }
  const step = (hi - lo) / GRID_STEPS;
  const maxAbs = BigInt(Math.max(Math.abs(Math.round(lo / step)), Math.abs(Math.round(hi / step))));
  return { lo, hi, step, maxAbs };
}

/** A value on the grid: clipped, rounded, in steps. */
export function toGrid(value: number, g: Grid): number {
  const clipped = Math.min(g.hi, Math.max(g.lo, value));
  return Math.round(clipped / g.step);
}
