/**
 * The engine's error model: a small set of classes, each carrying a stable `NEUROCLUSTER_ERR_*` code.
 *
 * One table ({@link ERROR_CODES}) maps every code to its category, severity, process exit code and
 * recovery actions, so the CLI, the library, the error tracker and (later) the HTTP service agree
 * on what an error means. Every instance also has its own `errorId`, the correlation ID of the
 * operation it happened in, and context (phase, backend, sizes).
 */
import { randomUUID } from 'node:crypto';
import { currentCorrelationId } from '../observability/context.js';

/** What kind of failure an error is. */
export type ErrorCategory =
  | 'validation'
  | 'configuration'
  | 'data'
  | 'kernel'
  | 'device-lost'
  | 'out-of-memory'
  | 'timeout'
  | 'circuit-open'
  | 'numerical'
  | 'resource-exhausted'
  | 'privacy-budget'
  | 'security'
  | 'quality'
  | 'backend'
  | 'cancelled'
  | 'io'
  | 'internal';

/** How bad: `low` the caller's input, `medium` one request lost or degraded, up to `critical`. */
export type Severity = 'low' | 'medium' | 'high' | 'critical';

interface CodeInfo {
  readonly category: ErrorCategory;
  readonly severity: Severity;
  /** Process exit status: 2 for bad usage or bad input, 1 for any other failure. */
  readonly exitCode: 1 | 2;
  /** What to do about it, most useful first. */
  readonly recovery: readonly string[];
}

/** Every error code the engine raises, with its meaning. Codes are stable: scripts match on them. */
export const ERROR_CODES = {
  NEUROCLUSTER_ERR_USAGE: {
    category: 'validation',
    severity: 'low',
    exitCode: 2,
    recovery: ['Check the command line against `neurocluster --help`.'],
  },
  NEUROCLUSTER_ERR_INVALID_ARGUMENT: {
    category: 'validation',
    severity: 'low',
    exitCode: 2,
    recovery: ['Fix the named option; the README lists every option and its range.'],
  },
  NEUROCLUSTER_ERR_CONFIG: {
    category: 'configuration',
    severity: 'medium',
    exitCode: 2,
    recovery: ['Fix the named key of the configuration document.'],
  },
  NEUROCLUSTER_ERR_DATA_READ: {
    category: 'io',
    severity: 'low',
    exitCode: 2,
    recovery: ['Check that the input file exists and is readable.'],
  },
  NEUROCLUSTER_ERR_DATA_FORMAT: {
    category: 'data',
    severity: 'low',
    exitCode: 2,
    recovery: ['Check the file format: CSV with a header row, JSON rows, or a float32/float64 NPY array.'],
  },
  NEUROCLUSTER_ERR_DATA_VALUE: {
    category: 'data',
    severity: 'low',
    exitCode: 2,
    recovery: ['Fix the named cell, or choose a NaN policy (drop-rows, impute-mean) for missing values.'],
  },
  NEUROCLUSTER_ERR_DATA_SHAPE: {
    category: 'data',
    severity: 'low',
    exitCode: 2,
    recovery: ['Check the number of rows and columns against the options (k, series length, model width).'],
  },
  NEUROCLUSTER_ERR_MODEL_FILE: {
    category: 'data',
    severity: 'medium',
    exitCode: 2,
    recovery: ['The model file is damaged or not a neurocluster model; restore it or fit again.'],
  },
  NEUROCLUSTER_ERR_MODEL_VERSION: {
    category: 'data',
    severity: 'low',
    exitCode: 2,
    recovery: ['The model was written by a newer neurocluster; upgrade to read it.'],
  },
  NEUROCLUSTER_ERR_BACKEND_UNAVAILABLE: {
    category: 'backend',
    severity: 'high',
    exitCode: 1,
    recovery: ['Choose another backend, or `--backend auto` to take the best one that starts.'],
  },
  NEUROCLUSTER_ERR_KERNEL: {
    category: 'kernel',
    severity: 'high',
    exitCode: 1,
    recovery: [
      'A compute kernel failed; the request is retried and, under `auto`, moved to the next backend.',
      "If it repeats, run `neurocluster health` to see whether the backend's circuit breaker is open.",
      'Name a CPU backend (`--backend wasm` or `js`) to keep the GPU out of the way.',
    ],
  },
  NEUROCLUSTER_ERR_DEVICE_LOST: {
    category: 'device-lost',
    severity: 'critical',
    exitCode: 1,
    recovery: [
      'The GPU device was lost (driver reset, or the GPU went away); the device is re-created and the request retried.',
      'Check the driver and `nvidia-smi` for resets; run on the CPU (`--backend wasm`) until it is stable.',
    ],
  },
  NEUROCLUSTER_ERR_OUT_OF_MEMORY: {
    category: 'out-of-memory',
    severity: 'high',
    exitCode: 1,
    recovery: [
      'Lower engine.webgpu.memoryBudgetMB so work is split into smaller chunks, or use a CPU backend.',
      'Free GPU memory held by other processes, or cluster fewer rows per request.',
    ],
  },
  NEUROCLUSTER_ERR_NUMERICAL: {
    category: 'numerical',
    severity: 'medium',
    exitCode: 1,
    recovery: [
      'A kernel produced NaN or infinity; check the input scale and the encoder settings.',
      "Turn standardization on (data.standardize) or lower the encoder's input scaling.",
    ],
  },
  NEUROCLUSTER_ERR_TIMEOUT: {
    category: 'timeout',
    severity: 'medium',
    exitCode: 1,
    recovery: [
      'The neuromorphic path ran past its deadline; raise --timeout (config `timeout`), or cluster fewer rows.',
      'A backend that hangs: run `neurocluster health` and name another backend.',
    ],
  },
  NEUROCLUSTER_ERR_CIRCUIT_OPEN: {
    category: 'circuit-open',
    severity: 'medium',
    exitCode: 1,
    recovery: [
      'The backend failed repeatedly and its circuit breaker is open; it is tried again after circuitBreaker.recoveryTimeout.',
      'Fix the backend, then `neurocluster breakers reset` to close the breaker at once.',
    ],
  },
  NEUROCLUSTER_ERR_RESOURCE_EXHAUSTED: {
    category: 'resource-exhausted',
    severity: 'high',
    exitCode: 1,
    recovery: [
      'The job would not fit in memory; cluster fewer rows, choose a smaller encoder (units, neurons), or plain kmeans.',
      'Raise monitoring.memoryBudgetMB if the machine has the memory, or run on a larger machine.',
    ],
  },
  NEUROCLUSTER_ERR_QUALITY_GATE: {
    category: 'quality',
    severity: 'medium',
    exitCode: 1,
    recovery: [
      'The clustering missed a quality gate in fail mode; try another k or method, or lower the gate (qualityGates).',
      'qualityGates.mode: warn reports failed gates in the result instead of failing.',
    ],
  },
  NEUROCLUSTER_ERR_PRIVACY_BUDGET: {
    category: 'privacy-budget',
    severity: 'medium',
    exitCode: 1,
    recovery: [
      'See what is left with `neurocluster privacy status --dataset <id>`; a spent budget does not come back.',
      'Ask for a smaller epsilon, or release fewer statistics (fewer iterations, public --bounds, no standardization).',
    ],
  },
  NEUROCLUSTER_ERR_PRIVACY_DATA: {
    category: 'data',
    severity: 'low',
    exitCode: 2,
    recovery: [
      'The data are too few for a DP range estimate at this epsilon: give public bounds (--bounds, privacy.bounds), or a larger epsilon, or more rows.',
    ],
  },
  NEUROCLUSTER_ERR_SECURITY: {
    category: 'security',
    severity: 'high',
    exitCode: 1,
    recovery: [
      'Check the keyring (NEUROCLUSTER_KEYRING, or $NEUROCLUSTER_HOME/keys/keyring.json): the key the file names must be in it and not retired.',
    ],
  },
  NEUROCLUSTER_ERR_SECURITY_PATH: {
    category: 'security',
    severity: 'medium',
    exitCode: 2,
    recovery: [
      'Read data from inside security.dataRoots, or add the directory to them (symbolic links count where they point).',
      "Write outputs outside the engine's own files: $NEUROCLUSTER_HOME/keys, $NEUROCLUSTER_HOME/audit, the store (neurocluster.db) and the keyring.",
    ],
  },
  NEUROCLUSTER_ERR_INTEGRITY: {
    category: 'security',
    severity: 'critical',
    exitCode: 1,
    recovery: [
      'The file or record was changed after it was written: restore it from a backup and find out who changed it (the audit log says who wrote it).',
    ],
  },
  NEUROCLUSTER_ERR_ABORTED: {
    category: 'cancelled',
    severity: 'low',
    exitCode: 1,
    recovery: ['The operation was cancelled by its caller.'],
  },
  NEUROCLUSTER_ERR_IO: {
    category: 'io',
    severity: 'medium',
    exitCode: 1,
    recovery: ['Check that the output location exists, is writable and has free space.'],
  },
  NEUROCLUSTER_ERR_INTERNAL: {
    category: 'internal',
    severity: 'critical',
    exitCode: 1,
    recovery: ['This is a bug in neurocluster; please report it with the command that caused it.'],
  },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Where in an input an error was found; rows are 1-based data rows (the header is row 0). */
export interface ErrorLocation {
  readonly file?: string;
  readonly row?: number;
  readonly column?: string | number;
}

const brand = Symbol.for('neurocluster.error');

/** Where an error happened: the phase of the operation, the backend, and the sizes involved. */
export interface ErrorContext {
  readonly phase?: string;
  readonly backend?: string;
  readonly sizes?: Readonly<Record<string, number>>;
  readonly [key: string]: unknown;
}

export interface ErrorOptions {
  readonly cause?: unknown;
  readonly location?: ErrorLocation;
  readonly context?: ErrorContext;
  /** Defaults to the correlation ID of the operation the error is raised in, if any. */
  readonly correlationId?: string;
}

/** Base class of every error the engine raises on purpose. */
export class NeuroclusterError extends Error {
  readonly [brand] = true;
  readonly code: ErrorCode;
  readonly location: ErrorLocation | undefined;
  /** Unique to this instance: the key of the error tracker's records. */
  readonly errorId: string = randomUUID();
  readonly correlationId: string | undefined;
  /** Phase, backend, sizes: added to as the error travels up (see {@link withContext}). */
  context: ErrorContext;
  readonly timestamp = new Date().toISOString();

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.location = options.location;
    this.context = options.context ?? {};
    this.correlationId = options.correlationId ?? currentCorrelationId();
  }

  get category(): ErrorCategory {
    return ERROR_CODES[this.code].category;
  }

  get severity(): Severity {
    return ERROR_CODES[this.code].severity;
  }

  get exitCode(): 1 | 2 {
    return ERROR_CODES[this.code].exitCode;
  }

  /** The first recovery action of the code's table entry. */
  get suggestion(): string {
    return ERROR_CODES[this.code].recovery[0];
  }

  get recovery(): readonly string[] {
    return ERROR_CODES[this.code].recovery;
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      category: this.category,
      severity: this.severity,
      message: this.message,
      errorId: this.errorId,
      ...(this.correlationId ? { correlationId: this.correlationId } : {}),
      ...(Object.keys(this.context).length > 0 ? { context: this.context } : {}),
      ...(this.location ? { location: this.location } : {}),
    };
  }
}

/** Adds what is known where an error passes by (keys already set win: they are more specific). */
export function withContext<E extends NeuroclusterError>(error: E, context: ErrorContext): E {
  error.context = { ...context, ...error.context };
  return error;
}

/** Bad command line or bad option value. */
export class UsageError extends NeuroclusterError {
  constructor(
    message: string,
    code:
      | 'NEUROCLUSTER_ERR_USAGE'
      | 'NEUROCLUSTER_ERR_INVALID_ARGUMENT' = 'NEUROCLUSTER_ERR_INVALID_ARGUMENT',
    options: ErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

/** A configuration document or value that fails its schema. */
export class ConfigError extends NeuroclusterError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('NEUROCLUSTER_ERR_CONFIG', message, options);
  }
}

/** Input data that cannot be read, parsed or used. */
export class DataError extends NeuroclusterError {
  constructor(
    code:
      | 'NEUROCLUSTER_ERR_DATA_READ'
      | 'NEUROCLUSTER_ERR_DATA_FORMAT'
      | 'NEUROCLUSTER_ERR_DATA_VALUE'
      | 'NEUROCLUSTER_ERR_DATA_SHAPE',
    message: string,
    options: ErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

/** A model file that is corrupt, truncated, or from an unsupported version. */
export class ModelFileError extends NeuroclusterError {
  constructor(message: string, options: ErrorOptions & { newerVersion?: boolean } = {}) {
    super(
      options.newerVersion ? 'NEUROCLUSTER_ERR_MODEL_VERSION' : 'NEUROCLUSTER_ERR_MODEL_FILE',
      message,
      options,
    );
  }
}

/**
 * A backend that was asked for by name and cannot start, a kernel that failed, a device that was
 * lost or out of memory, or a kernel output that is not finite.
 */
export class BackendError extends NeuroclusterError {
  constructor(
    message: string,
    code:
      | 'NEUROCLUSTER_ERR_BACKEND_UNAVAILABLE'
      | 'NEUROCLUSTER_ERR_KERNEL'
      | 'NEUROCLUSTER_ERR_DEVICE_LOST'
      | 'NEUROCLUSTER_ERR_OUT_OF_MEMORY'
      | 'NEUROCLUSTER_ERR_NUMERICAL' = 'NEUROCLUSTER_ERR_BACKEND_UNAVAILABLE',
    options: ErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

/** The deadline of the neuromorphic path passed (`--timeout`, config `timeout`). */
export class TimeoutError extends NeuroclusterError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('NEUROCLUSTER_ERR_TIMEOUT', message, options);
  }
}

/** A job that would not fit the memory budget, refused before it allocates. */
export class ResourceExhaustedError extends NeuroclusterError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('NEUROCLUSTER_ERR_RESOURCE_EXHAUSTED', message, options);
  }
}

/** A result that missed a quality gate in `fail` mode; the result itself is attached. */
export class QualityGateError extends NeuroclusterError {
  constructor(
    message: string,
    /** The failed gates. */
    readonly failures: readonly { gate: string; value: number; threshold: number }[],
    /** The result that failed them (a ClusteringResult). */
    readonly result: unknown,
    options: ErrorOptions = {},
  ) {
    super('NEUROCLUSTER_ERR_QUALITY_GATE', message, options);
  }
}

/** A backend's circuit breaker is open: the request is not sent to it. */
export class CircuitOpenError extends NeuroclusterError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('NEUROCLUSTER_ERR_CIRCUIT_OPEN', message, options);
  }
}

/**
 * Throws NUMERICAL when any value is NaN or infinite: a kernel's output must be finite (a NaN
 * would otherwise pass silently, a column of them looking like a constant one).
 */
export function requireFinite(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) {
      throw new BackendError(
        `${what} produced a non-finite value (${values[i]} at index ${i})`,
        'NEUROCLUSTER_ERR_NUMERICAL',
      );
    }
  }
}

/** A key, a keyring or an encrypted file that cannot be used; `integrity` when its bytes were changed. */
export class SecurityError extends NeuroclusterError {
  constructor(message: string, options: ErrorOptions & { integrity?: boolean; path?: boolean } = {}) {
    const code = options.integrity
      ? 'NEUROCLUSTER_ERR_INTEGRITY'
      : options.path
        ? 'NEUROCLUSTER_ERR_SECURITY_PATH'
        : 'NEUROCLUSTER_ERR_SECURITY';
    super(code, message, options);
  }
}

/** A differential-privacy request the budget cannot pay for, refused before any noise is drawn. */
export class PrivacyBudgetError extends NeuroclusterError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('NEUROCLUSTER_ERR_PRIVACY_BUDGET', message, options);
  }
}

/** The caller's AbortSignal fired. */
export class AbortedError extends NeuroclusterError {
  constructor(message = 'the operation was aborted', options: ErrorOptions = {}) {
    super('NEUROCLUSTER_ERR_ABORTED', message, options);
  }
}

/** Writing an output failed. */
export class OutputError extends NeuroclusterError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('NEUROCLUSTER_ERR_IO', message, options);
  }
}

/** Brand-based guard: true for errors raised by any copy of this package. */
export function isNeuroclusterError(error: unknown): error is NeuroclusterError {
  return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[brand] === true;
}

/** Throws {@link AbortedError} if the signal has fired; call it between units of work. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new AbortedError('the operation was aborted', { cause: signal.reason });
  }
}

/**
 * A full, over-quota or read-only disk (ENOSPC, EDQUOT, EROFS; SQLite's SQLITE_FULL, SQLITE_IOERR*,
 * "database or disk is full", "disk I/O error") as NEUROCLUSTER_ERR_IO with a message that says
 * so, prefixed with `what` (what could not be written); undefined for any other error.
 */
export function storageError(
  error: unknown,
  what = 'a write failed',
  location?: ErrorLocation,
): OutputError | undefined {
  const code = String((error as { code?: unknown } | null)?.code ?? '');
  const message = error instanceof Error ? error.message : String(error);
  let reason: string;
  if (code === 'ENOSPC' || code === 'SQLITE_FULL' || /database or disk is full/i.test(message))
    reason = 'the disk is full';
  else if (code === 'EDQUOT') reason = 'the disk quota is exceeded';
  else if (code === 'EROFS') reason = 'the file system is read-only';
  else if (code.startsWith('SQLITE_IOERR') || /^disk I\/O error/i.test(message))
    reason = 'the store could not be written (a full disk, most often)';
  else return undefined;
  return new OutputError(`${what}: ${reason} (${message})`, {
    cause: error,
    ...(location ? { location } : {}),
  });
}

/** Wraps anything thrown into a NeuroclusterError, keeping it as the `cause`; a full disk is NEUROCLUSTER_ERR_IO. */
export function toNeuroclusterError(error: unknown): NeuroclusterError {
  if (isNeuroclusterError(error)) return error;
  const storage = storageError(error);
  if (storage) return storage;
  const message = error instanceof Error ? error.message : String(error);
  return new NeuroclusterError('NEUROCLUSTER_ERR_INTERNAL', message, { cause: error });
}

/**
 * Renders a cell value for an error message: control characters escaped, at most 40 characters,
 * so that a hostile or binary input cannot garble the terminal or flood the log.
 */
export function quoteValue(value: string, max = 40): string {
  const escaped = printable(JSON.stringify(value).slice(1, -1));
  const cut = escaped.length > max ? `${escaped.slice(0, max - 1)}…` : escaped;
  return `"${cut}"`;
}

/**
 * What a terminal would act on instead of printing: C0 and C1 controls and DEL, the bidirectional
 * controls (U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069), the line and paragraph separators,
 * and lone surrogates.
 */
const UNPRINTABLE = /[\p{Cc}\p{Bidi_Control}\p{Zl}\p{Zp}\p{Cs}]/gu;
const SHORT_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Text safe to echo on a terminal: each {@link UNPRINTABLE} character becomes a visible escape
 * (`\n`, `\x1b`, `\u202e`), so a file name or a cell cannot clear the screen, forge a second line
 * or reorder the text around it. Everything else (any script, emoji) is left as it is.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return (
      SHORT_ESCAPES[c] ??
      (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`)
    );
  });
}
