/**
 * What the resilience layer reports as it works: its policies, breakers, fault switch and error
 * tracker call these, as cockatiel's policies emit onBreak/onRetry. The layer imports nothing of
 * the metrics; a runtime hands it its metrics' observer (see src/runtime/runtime.ts), and a test
 * or an embedding program may hand it one of its own. Every callback is optional.
 */
export interface ResilienceObserver {
  /** The deadline over the whole path fired. */
  timeout?(): void;
  /** The fallback (CPU K-means) answered, for an error of `category`. */
  fallback?(category: string): void;
  /** `backend` was skipped because its breaker is open. */
  breakerRejected?(backend: string): void;
  /** `auto` passed over `backend` to the next in the degradation order. */
  degraded?(backend: string): void;
  /** A transient failure is retried after `backoffSeconds`. */
  retry?(backoffSeconds: number): void;
  /** `backend` lost its device and was re-created. */
  deviceReset?(backend: string): void;
  /** `backend` ran out of memory and the work was re-planned with a smaller budget. */
  memoryReplan?(backend: string): void;
  /** The fault switch made a kernel call fail as `kind`. */
  faultInjected?(kind: string): void;
  /** A breaker of `backend` moved to `state`. */
  breakerTransition?(backend: string, state: 'open' | 'half-open' | 'closed'): void;
  /** The error tracker recorded an error. */
  error?(category: string, code: string): void;
  /** An alert rule of the error tracker started firing. */
  alert?(rule: string): void;
}

/** Calls `event` on `observer` when both are there; an observer that throws never breaks a request. */
export function notify<E extends keyof ResilienceObserver>(
  observer: ResilienceObserver | undefined,
  event: E,
  ...args: Parameters<NonNullable<ResilienceObserver[E]>>
): void {
  const listener = observer?.[event] as ((...a: unknown[]) => void) | undefined;
  if (!listener) return;
  try {
    listener.apply(observer, args);
  } catch {
    // ignored on purpose: what observes the layer must not change its answers
  }
}
