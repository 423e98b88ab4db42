/**
 * The resilience layer around the neuromorphic path, composed from cockatiel policies:
 *
 *   fallback( deadline( for each backend in the degradation order:
 *                         breaker[backend|adapter]( retry( attempt ) ) ) )
 *
 * - attempt: the work on one backend, through the fault switch; an out-of-memory error re-plans
 *   with a smaller device-memory budget instead of retrying; a lost device is re-created first.
 * - retry: kernel errors and lost devices only, exponential backoff with jitter.
 * - breaker: per backend and adapter (see breakers.ts); open means the backend is skipped.
 * - deadline: one timeout over all of it, every retry and degradation included.
 * - fallback: when the path fails, times out, is circuit-open, runs out of memory or returns
 *   non-finite numbers, the caller's fallback (CPU K-means) runs at once, outside the deadline.
 *
 * Backends degrade (webgpu -> wasm -> js by default) under `auto` only; a named backend is the
 * only one tried, and one that cannot start is an error, never a fallback.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ExponentialBackoff,
  fallback,
  handleWhen,
  type IBackoff,
  isBrokenCircuitError,
  noop,
  retry,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
} from 'cockatiel';
import type {
  Backend,
  BackendAttempt,
  BackendRegistry,
  SelectionContext,
  SelectionLogger,
} from '../backends/backend.js';
import type { FaultSpec } from '../config/faults.js';
import { AbortedError, throwIfAborted } from '../core/cancel.js';
import {
  BackendError,
  CircuitOpenError,
  isNeuroclusterError,
  type NeuroclusterError,
  TimeoutError,
  toNeuroclusterError,
  withContext,
} from '../core/errors.js';
import type { BackendName } from '../core/matrix.js';
import type { BreakerBook } from './breakers.js';
import { notify, type ResilienceObserver } from './events.js';
import { withFaults } from './faults.js';
import type { ErrorTracker } from './tracker.js';

export interface ResilienceSettings {
  /** One deadline for the whole neuromorphic path, ms. */
  readonly timeoutMs: number;
  readonly retry: { readonly maxRetries: number; readonly baseDelayMs: number; readonly maxDelayMs: number };
  readonly fallback: { readonly enabled: boolean; readonly degradeOrder: readonly BackendName[] };
  readonly fault: FaultSpec | undefined;
  /** Draws of the fault switch; Math.random unless a test pins it. */
  readonly random?: () => number;
}

/** Why the fallback ran: the error that ended the neuromorphic path. */
export interface FallbackReason {
  readonly reason: string;
  readonly code: string;
}

export type ResilientResult<T> =
  | {
      readonly fallback: false;
      readonly value: T;
      readonly backend: Backend;
      readonly tried: BackendAttempt[];
    }
  | {
      readonly fallback: true;
      readonly value: T;
      readonly reason: FallbackReason;
      readonly error: NeuroclusterError;
      readonly tried: BackendAttempt[];
    };

/** Errors worth another try on the same backend. */
function transient(error: Error): boolean {
  return isNeuroclusterError(error) && (error.category === 'kernel' || error.category === 'device-lost');
}

/** Errors the fallback answers: the backend's failures, never the caller's abort or bad input. */
function fallbackFor(error: Error): boolean {
  if (!isNeuroclusterError(error)) return true;
  return !['validation', 'configuration', 'data', 'cancelled', 'io'].includes(error.category);
}

export interface ResilienceDeps {
  readonly registry: BackendRegistry;
  readonly breakers: BreakerBook;
  readonly tracker: ErrorTracker;
  readonly logger: SelectionLogger & { warn(obj: object, msg: string): void };
  readonly selection: SelectionContext;
  /** Told of timeouts, fallbacks, retries, degradations... (the runtime's metrics listen). */
  readonly observer?: ResilienceObserver;
}

export class Resilience {
  constructor(
    readonly settings: ResilienceSettings,
    private readonly deps: ResilienceDeps,
  ) {}

  /**
   * Runs `work` on the requested backend (or, under `auto`, the first of the degradation order
   * that starts and succeeds) under the policies; when it fails and the fallback is on, answers
   * with `rescue` instead. The caller's `signal` cancels everything, the fallback included.
   */
  async run<T>(
    request: BackendName | 'auto',
    work: (backend: Backend, signal: AbortSignal) => Promise<T>,
    rescue: (failure: NeuroclusterError) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<ResilientResult<T>> {
    const tried: BackendAttempt[] = [];
    let failure: NeuroclusterError | undefined;
    let rescuing = false;
    const deadline = timeout(this.settings.timeoutMs, TimeoutStrategy.Aggressive);
    const answer = fallback(
      handleWhen((e) => {
        failure = this.classify(e, signal);
        if (failure.category === 'timeout') notify(this.deps.observer, 'timeout');
        // A backend named by the caller that cannot start is an answer in itself (exit 1), never
        // silently replaced by the CPU.
        const named = request !== 'auto' && failure.code === 'NEUROCLUSTER_ERR_BACKEND_UNAVAILABLE';
        return this.settings.fallback.enabled && !named && fallbackFor(failure);
      }),
      async () => {
        rescuing = true;
        return { rescued: await rescue(failure!) };
      },
    );
    const outcome = await answer
      .execute(
        () =>
          deadline.execute(async ({ signal: inner }) => {
            const ran = await this.degrade(request, work, inner, signal, tried);
            return { ran };
          }, signal),
        signal,
      )
      .catch((error: unknown) => {
        // The fallback's own failure (the caller cancelled it, say) is the answer; else the path's.
        if (rescuing) throw error;
        throw failure ?? this.classify(error as Error, signal);
      });
    if ('rescued' in outcome) {
      const error = failure!;
      notify(this.deps.observer, 'fallback', error.category);
      this.deps.logger.warn(
        { code: error.code, reason: error.category, tried },
        `the neuromorphic path failed (${error.message}); answered by CPU K-means`,
      );
      return {
        fallback: true,
        value: outcome.rescued,
        reason: { reason: error.category, code: error.code },
        error,
        tried,
      };
    }
    return { fallback: false, value: outcome.ran.value, backend: outcome.ran.backend, tried };
  }

  /** An error as the engine's, recorded by the tracker (once per error, however often it passes). */
  private classify(error: Error, signal: AbortSignal | undefined): NeuroclusterError {
    const e = this.engineError(error, signal);
    this.deps.tracker.record(e);
    return e;
  }

  /** An error as the engine's: cockatiel's timeout gets its code, a caller's abort its own. */
  private engineError(error: unknown, signal: AbortSignal | undefined): NeuroclusterError {
    if (isNeuroclusterError(error)) return error;
    if (signal?.aborted) return new AbortedError('the operation was aborted', { cause: error });
    // instanceof, not cockatiel's isTaskCancelledError: in 3.2.1 that tests the bulkhead's flag.
    if (error instanceof TaskCancelledError) {
      return new TimeoutError(`the neuromorphic path passed its deadline of ${this.settings.timeoutMs} ms`, {
        cause: error,
      });
    }
    return toNeuroclusterError(error);
  }

  /** The backends to try, in order: the named one, or the degradation order under `auto`. */
  private candidates(request: BackendName | 'auto'): readonly BackendName[] {
    if (request !== 'auto') return [request];
    const known = new Set(this.deps.registry.registered());
    return this.settings.fallback.degradeOrder.filter((name) => known.has(name));
  }

  private async degrade<T>(
    request: BackendName | 'auto',
    work: (backend: Backend, signal: AbortSignal) => Promise<T>,
    signal: AbortSignal,
    callerSignal: AbortSignal | undefined,
    tried: BackendAttempt[],
  ): Promise<{ value: T; backend: Backend }> {
    const auto = request === 'auto';
    let last: NeuroclusterError | undefined;
    for (const name of this.candidates(request)) {
      if (signal.aborted) break;
      let backend: Backend;
      try {
        backend = await this.deps.registry.acquire(name, auto, this.deps.selection);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        tried.push({ name, ok: false, reason });
        this.deps.logger.info({ backend: name, reason }, `backend ${name} skipped`);
        // A named backend that cannot start is the caller's answer, not a fallback.
        if (!auto) throw error;
        continue;
      }
      const key = `${name}|${backend.device}`;
      const breakers = this.deps.breakers.settings.enabled;
      const breaker = breakers ? this.deps.breakers.policy(key) : noop;
      try {
        const ran = await breaker.execute(() => this.retried(name, auto, work, signal, callerSignal), signal);
        tried.push({ name, ok: true });
        return ran;
      } catch (error) {
        const open = isBrokenCircuitError(error);
        if (open) notify(this.deps.observer, 'breakerRejected', name);
        const e = open
          ? new CircuitOpenError(`the circuit breaker of ${key} is open`, { cause: error })
          : this.engineError(error, callerSignal);
        // Recorded after the backend is known, so the tracker's record carries it.
        this.deps.tracker.record(withContext(e, { backend: name }));
        tried.push({ name, ok: false, reason: e.message });
        last = e;
        if (e.category === 'timeout' || e.category === 'cancelled' || !auto) throw e;
        notify(this.deps.observer, 'degraded', name);
        this.deps.logger.info({ backend: name, code: e.code }, `backend ${name} failed; trying the next`);
      } finally {
        if (breakers) this.saveBreaker(key);
      }
    }
    throw (
      last ??
      new BackendError(`no backend could start (${tried.map((t) => `${t.name}: ${t.reason}`).join('; ')})`)
    );
  }

  /**
   * Keeps a breaker's state for the next process. A state that cannot be written (a full disk)
   * is a warning: it never counts against the backend nor fails the request.
   */
  private saveBreaker(key: string): void {
    try {
      this.deps.breakers.save(key);
    } catch (error) {
      this.deps.logger.warn(
        { err: error, breaker: key },
        `the circuit breaker state could not be saved: ${(error as Error).message}`,
      );
    }
  }

  /** The retry policy around one backend's attempts. */
  private retried<T>(
    name: BackendName,
    auto: boolean,
    work: (backend: Backend, signal: AbortSignal) => Promise<T>,
    signal: AbortSignal,
    callerSignal: AbortSignal | undefined,
  ): Promise<{ value: T; backend: Backend }> {
    const { maxRetries, baseDelayMs, maxDelayMs } = this.settings.retry;
    // cockatiel decides whether to try again; the wait between tries (cockatiel's exponential
    // backoff with decorrelated jitter) is slept here, on the deadline's signal, because the retry
    // policy's own timer neither stops at the deadline nor lets the process exit while it runs.
    const policy = retry(handleWhen(transient), { maxAttempts: maxRetries });
    const schedule = new ExponentialBackoff({ initialDelay: baseDelayMs, maxDelay: maxDelayMs });
    let backoff: IBackoff<unknown> | undefined;
    let lost = false;
    return policy.execute(async ({ attempt }) => {
      try {
        if (attempt > 0) {
          backoff = backoff ? backoff.next(undefined) : schedule.next();
          notify(this.deps.observer, 'retry', backoff.duration / 1000);
          await sleep(backoff.duration, undefined, { signal });
        }
        throwIfAborted(signal);
        // A lost device is re-created before the next try.
        if (lost) {
          notify(this.deps.observer, 'deviceReset', name);
          await this.deps.registry.discard(name);
        }
        lost = false;
        const backend = await this.deps.registry.acquire(name, auto, this.deps.selection);
        return { value: await this.attempt(backend, work, signal), backend };
      } catch (error) {
        if (signal.aborted && !callerSignal?.aborted) {
          throw new TimeoutError(
            `${name} was still running at the deadline (${this.settings.timeoutMs} ms)`,
            {
              cause: error,
              context: { backend: name },
            },
          );
        }
        const e = toNeuroclusterError(error);
        withContext(e, { backend: name, attempt });
        lost = e.category === 'device-lost';
        this.deps.tracker.record(e);
        throw e;
      }
    }, signal);
  }

  /** One try on one backend: an out-of-memory error re-plans smaller chunks while it can. */
  private async attempt<T>(
    backend: Backend,
    work: (backend: Backend, signal: AbortSignal) => Promise<T>,
    signal: AbortSignal,
  ): Promise<T> {
    for (;;) {
      try {
        return await work(
          withFaults(backend, this.settings.fault, signal, this.settings.random, this.deps.observer),
          signal,
        );
      } catch (error) {
        const oom = isNeuroclusterError(error) && error.category === 'out-of-memory';
        if (!oom || signal.aborted || !backend.shrinkMemoryBudget?.()) throw error;
        notify(this.deps.observer, 'memoryReplan', backend.name);
        this.deps.logger.info(
          { backend: backend.name },
          'out of device memory: running again in smaller chunks',
        );
      }
    }
  }
}
