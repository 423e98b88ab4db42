/**
 * The fault switch's setting, `<kind>[:<backend>][@<probability>]` (`NEUROCLUSTER_FAULT` or
 * `faults.inject`), parsed where the configuration is validated; src/resilience/faults.ts makes a
 * backend fail as it says.
 */
import { ConfigError } from '../core/errors.js';
import type { BackendName } from '../core/matrix.js';

export const FAULT_KINDS = [
  'kernel-throw',
  'kernel-hang',
  'device-lost',
  'oom',
  'nan',
  'worker-crash',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

const BACKENDS: readonly BackendName[] = ['webgpu', 'wasm', 'js'];

export interface FaultSpec {
  readonly kind: FaultKind;
  /** The backend that fails; every backend when absent. */
  readonly backend: BackendName | undefined;
  /** Chance that one kernel call fails, in (0, 1]. */
  readonly probability: number;
}

/** Parses `<kind>[:<backend>][@<probability>]`; undefined for an empty spec. */
export function parseFault(spec: string | undefined): FaultSpec | undefined {
  const text = spec?.trim();
  if (!text) return undefined;
  const match = /^([a-z-]+)(?::([a-z]+))?(?:@([0-9.eE+-]+))?$/.exec(text);
  const bad = (why: string) =>
    new ConfigError(
      `fault "${text}": ${why} (form: <kind>[:<backend>][@<probability>], kinds ${FAULT_KINDS.join(', ')})`,
    );
  if (!match) throw bad('not understood');
  const [, kind, backend, p] = match;
  if (!(FAULT_KINDS as readonly string[]).includes(kind!)) throw bad(`unknown kind "${kind}"`);
  if (backend !== undefined && !(BACKENDS as readonly string[]).includes(backend)) {
    throw bad(`unknown backend "${backend}"`);
  }
  const probability = p === undefined ? 1 : Number(p);
  if (!(probability > 0 && probability <= 1)) throw bad(`probability must be in (0, 1], got ${p}`);
  return { kind: kind as FaultKind, backend: backend as BackendName | undefined, probability };
}
