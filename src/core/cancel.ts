/**
 * Cancellation: the caller's AbortSignal travels down every path (kernels, K-means steps, writes),
 * and work checks it between units. Core, not resilience: every layer stops the same way.
 */
import { type ErrorOptions, NeuroclusterError } from './errors.js';

/** The caller's AbortSignal fired. */
export class AbortedError extends NeuroclusterError {
  constructor(message = 'the operation was aborted', options: ErrorOptions = {}) {
    super('NEUROCLUSTER_ERR_ABORTED', message, options);
  }
}

/** Throws {@link AbortedError} if the signal has fired; call it between units of work. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new AbortedError('the operation was aborted', { cause: signal.reason });
  }
}
