/**
 * Circuit breakers, one per backend and adapter, built with cockatiel and kept between processes
 * in `$NEUROCLUSTER_HOME/state/breakers.json`: a CLI run that finds a breaker opened by the run
 * before it within `recoveryTimeout` does not send work to that backend either. A saved state
 * expires `recoveryTimeout` after it was written. A state that cannot be written (a full disk) is a
 * warning of the caller, never a failure of the backend.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  type IBreaker,
  SamplingBreaker,
} from 'cockatiel';
import { writeStateFileSync } from '../core/atomic.js';
import { isNeuroclusterError } from '../core/errors.js';
import type { BreakerStateName, BreakerStatus } from '../observability/health.js';
import { notify, type ResilienceObserver } from './events.js';

export interface BreakerSettings {
  readonly enabled: boolean;
  /** Consecutive failures that open it (consecutive strategy). */
  readonly failureThreshold: number;
  /** How long it stays open before a half-open probe; also how long a saved state lives. */
  readonly recoveryTimeoutMs: number;
  readonly strategy: 'consecutive' | 'sampling';
  /** Sampling strategy: the window, the failure ratio that opens, and the requests it needs. */
  readonly samplingWindowMs: number;
  readonly failureRatio: number;
  readonly minimumRequests: number;
}

interface SavedBreaker {
  readonly savedAt: number;
  readonly policy: unknown;
}

const NAMES: Record<CircuitState, BreakerStateName> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

/** Failures a breaker counts: a backend at fault, not the caller or the input. */
export function countsAgainstBackend(error: Error): boolean {
  if (!isNeuroclusterError(error)) return true;
  return ['kernel', 'device-lost', 'out-of-memory', 'numerical', 'timeout', 'internal'].includes(
    error.category,
  );
}

/** The breaker file of a NEUROCLUSTER_HOME. */
export function breakerFile(home: string): string {
  return join(home, 'state', 'breakers.json');
}

/** The IBreaker of the configured strategy. */
function makeBreaker(s: BreakerSettings): IBreaker {
  if (s.strategy === 'sampling') {
    return new SamplingBreaker({
      threshold: s.failureRatio,
      duration: s.samplingWindowMs,
      minimumRps: s.minimumRequests / (s.samplingWindowMs / 1000),
    });
  }
  return new ConsecutiveBreaker(s.failureThreshold);
}

/** The process's breakers, by key (`<backend>|<adapter>`), over one state file (or none). */
export class BreakerBook {
  private readonly policies = new Map<string, CircuitBreakerPolicy>();

  constructor(
    readonly settings: BreakerSettings,
    /** Where states are kept; undefined keeps them in this process only. */
    readonly file: string | undefined,
    private readonly now: () => number = Date.now,
    /** Told of every breaker's transitions (the runtime's metrics listen). */
    private readonly observer?: ResilienceObserver,
  ) {}

  /** The breaker of `key`, from the state file when a live state is saved there. */
  policy(key: string): CircuitBreakerPolicy {
    let policy = this.policies.get(key);
    if (policy) return policy;
    const saved = this.read()[key];
    policy = circuitBreaker(handleWhen(countsAgainstBackend), {
      halfOpenAfter: this.settings.recoveryTimeoutMs,
      breaker: makeBreaker(this.settings),
      ...(saved ? { initialState: saved.policy } : {}),
    });
    const backend = key.split('|')[0]!;
    policy.onBreak(() => notify(this.observer, 'breakerTransition', backend, 'open'));
    policy.onHalfOpen(() => notify(this.observer, 'breakerTransition', backend, 'half-open'));
    policy.onReset(() => notify(this.observer, 'breakerTransition', backend, 'closed'));
    this.policies.set(key, policy);
    return policy;
  }

  /**
   * Writes `key`'s state to the file (other keys as they are there), whole or not at all. It throws
   * what the file system says (ENOSPC, ...): the caller logs it; a state that cannot be kept never
   * decides a request's answer.
   */
  save(key: string): void {
    const policy = this.policies.get(key);
    if (!this.file || !policy) return;
    const all = this.read();
    all[key] = { savedAt: this.now(), policy: policy.toJSON() };
    mkdirSync(dirname(this.file), { recursive: true });
    writeStateFileSync(this.file, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 });
  }

  /** Every breaker known here or saved in the file and not expired. */
  list(): BreakerStatus[] {
    const saved = this.read();
    const keys = new Set([...Object.keys(saved), ...this.policies.keys()]);
    return [...keys].sort().map((key) => {
      const policy = this.policy(key);
      const state = NAMES[policy.state];
      const own = (policy.toJSON() as { ownState?: { openedAt?: number } }).ownState;
      const savedAt = saved[key]?.savedAt ?? this.now();
      return {
        key,
        state,
        ...(state === 'open' && own?.openedAt ? { openedAt: new Date(own.openedAt).toISOString() } : {}),
        expiresAt: new Date(savedAt + this.settings.recoveryTimeoutMs).toISOString(),
      };
    });
  }

  /** Closes every breaker: forgets this process's and deletes the file. */
  reset(): void {
    this.policies.clear();
    if (this.file) rmSync(this.file, { force: true });
  }

  /** Live saved states; a missing, unreadable or foreign file reads as none. */
  private read(): Record<string, SavedBreaker> {
    if (!this.file) return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.file, 'utf8'));
    } catch {
      return {};
    }
    if (typeof parsed !== 'object' || parsed === null) return {};
    const live: Record<string, SavedBreaker> = {};
    for (const [key, value] of Object.entries(parsed as Record<string, SavedBreaker>)) {
      if (typeof value?.savedAt !== 'number' || typeof value.policy !== 'object') continue;
      if (this.now() - value.savedAt < this.settings.recoveryTimeoutMs) live[key] = value;
    }
    return live;
  }
}
