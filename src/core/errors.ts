/**
 * The engine's error model: a small set of classes, each carrying a stable `NEUROCLUSTER_ERR_*` code.
 *
 * One table ({@link ERROR_CODES}) maps every code to its category, severity, process exit code and
 * recovery actions, so the CLI, the library, the error tracker and (later) the HTTP service agree
 * on what an error means. Every instance also has its own `errorId`, the correlation ID of the
 * operation it happened in, and context (phase, backend, sizes).
 */
import { randomUUID } from 'node:crypto';
import { currentCorrelationId } from './context.js';
import { ERROR_CODES, type ErrorCategory, type ErrorCode, type Severity } from './error-codes.js';

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

/** A request the service cannot take: no or a bad key, an unknown job, a job not there yet, too large. */
export class RequestError extends NeuroclusterError {
  constructor(
    code:
      | 'NEUROCLUSTER_ERR_UNAUTHORIZED'
      | 'NEUROCLUSTER_ERR_NOT_FOUND'
      | 'NEUROCLUSTER_ERR_CONFLICT'
      | 'NEUROCLUSTER_ERR_TOO_LARGE'
      | 'NEUROCLUSTER_ERR_RATE_LIMIT',
    message: string,
    options: ErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

/**
 * A tenant's quota would be passed by the request (the service answers 429); `retryAfterSeconds`
 * where waiting helps (a job ends, the hour moves on), absent where it does not (too many rows).
 */
export class QuotaError extends NeuroclusterError {
  readonly retryAfterSeconds: number | undefined;

  constructor(message: string, options: ErrorOptions & { retryAfterSeconds?: number } = {}) {
    super('NEUROCLUSTER_ERR_QUOTA', message, options);
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
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
