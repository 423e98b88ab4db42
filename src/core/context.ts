/**
 * The operation context: the correlation ID of the operation in progress, carried through every
 * await by AsyncLocalStorage, so that errors (and log lines) raised anywhere below `fit` know which
 * request they belong to without anyone passing it along.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

interface OperationContext {
  readonly correlationId: string;
}

const storage = new AsyncLocalStorage<OperationContext>();

/** The correlation ID of the operation this code runs in, if any. */
export function currentCorrelationId(): string | undefined {
  return storage.getStore()?.correlationId;
}

/**
 * Runs `work` as an operation with the given correlation ID (a new one when none is given, or the
 * enclosing operation's when this one is nested in it).
 */
export function withCorrelationId<T>(correlationId: string | undefined, work: () => T): T {
  const id = correlationId ?? currentCorrelationId() ?? randomUUID();
  return storage.run({ correlationId: id }, work);
}
