/**
 * Fault injection for game days: `NEUROCLUSTER_FAULT=<kind>[:<backend>][@<probability>]` (or the
 * config key `faults.inject`) makes a backend fail inside its real kernels, the way a sick GPU
 * or a crashing worker would, so an operator can watch retries, breakers, degradation and the
 * fallback do their work. Only the neuromorphic path (encoders and the K-means on their output)
 * runs through {@link withFaults}; the fallback's K-means never does. Off unless set.
 */
import { type Backend, KERNEL_NAMES, type KernelName } from '../backends/backend.js';
import type { FaultSpec } from '../config/faults.js';
import { BackendError } from '../core/errors.js';
import { notify, type ResilienceObserver } from './events.js';

/** Puts NaN into a kernel's output, as a kernel with a numerical bug would. */
function poison(out: unknown): unknown {
  if (out instanceof Float32Array || out instanceof Float64Array) {
    if (out.length > 0) out[0] = Number.NaN;
    return out;
  }
  if (typeof out === 'object' && out !== null) {
    const o = out as Record<string, unknown>;
    if ('data' in o) poison(o.data);
    else if ('sums' in o) poison(o.sums);
    else if ('distances' in o) poison(o.distances);
    else if ('means' in o) poison(o.means);
  }
  return out;
}

/**
 * `backend` with the fault switched in: each kernel call fails as `fault` says with its
 * probability (drawn from `random`), else runs as it would. A hang is a kernel call that never
 * completes; it rejects only when `signal` (the deadline) fires, so nothing is left waiting.
 */
export function withFaults(
  backend: Backend,
  fault: FaultSpec | undefined,
  signal: AbortSignal,
  random: () => number = Math.random,
  observer?: ResilienceObserver,
): Backend {
  if (!fault || (fault.backend !== undefined && fault.backend !== backend.name)) return backend;
  if (fault.kind === 'worker-crash' && !backend.injectWorkerCrash) return backend;
  const overrides: Partial<Record<KernelName, unknown>> = {};
  for (const kernel of KERNEL_NAMES) {
    const real = (backend[kernel] as (...args: unknown[]) => Promise<unknown>).bind(backend);
    overrides[kernel] = async (...args: unknown[]) => {
      if (random() >= fault.probability) return real(...args);
      notify(observer, 'faultInjected', fault.kind);
      const where = `injected fault ${fault.kind} in ${backend.name}.${kernel}`;
      switch (fault.kind) {
        case 'kernel-throw':
          throw new BackendError(where, 'NEUROCLUSTER_ERR_KERNEL');
        case 'device-lost':
          throw new BackendError(where, 'NEUROCLUSTER_ERR_DEVICE_LOST');
        case 'oom':
          throw new BackendError(where, 'NEUROCLUSTER_ERR_OUT_OF_MEMORY');
        case 'nan':
          return poison(await real(...args));
        case 'worker-crash':
          backend.injectWorkerCrash!();
          return real(...args);
        case 'kernel-hang':
          return new Promise((_, reject) => {
            const stop = () => reject(signal.reason ?? new Error(where));
            if (signal.aborted) stop();
            else signal.addEventListener('abort', stop, { once: true });
          });
      }
    };
  }
  // Everything else (name, device, dispose, the fault hooks) is the backend's own.
  return new Proxy(backend, {
    get(target, key, receiver) {
      if (typeof key === 'string' && key in overrides) return overrides[key as keyof typeof overrides];
      const value = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
