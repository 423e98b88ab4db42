/**
 * The engine's error model: a small set of classes, each carrying a stable `NEUROCLUSTER_ERR_*` code.
 *
 * One table ({@link ERROR_CODES}) maps every code to its category, process exit code and a recovery
 * suggestion, so the CLI, the library and (later) the HTTP service agree on what an error means.
 */

/** What kind of failure an error is; later issues add categories (device-lost, circuit-open, ...). */
export type ErrorCategory =
  | 'validation'
  | 'configuration'
  | 'data'
  | 'kernel'
  | 'device-lost'
  | 'out-of-memory'
  | 'numerical'
  | 'backend'
  | 'cancelled'
  | 'io'
  | 'internal';

interface CodeInfo {
  readonly category: ErrorCategory;
  /** Process exit status: 2 for bad usage or bad input, 1 for any other failure. */
  readonly exitCode: 1 | 2;
  readonly suggestion: string;
}

/** Every error code the engine raises, with its meaning. Codes are stable: scripts match on them. */
export const ERROR_CODES = {
  NEUROCLUSTER_ERR_USAGE: {
    category: 'validation',
    exitCode: 2,
    suggestion: 'Check the command line against `neurocluster --help`.',
  },
  NEUROCLUSTER_ERR_INVALID_ARGUMENT: {
    category: 'validation',
    exitCode: 2,
    suggestion: 'Fix the named option; the README lists every option and its range.',
  },
  NEUROCLUSTER_ERR_CONFIG: {
    category: 'configuration',
    exitCode: 2,
    suggestion: 'Fix the named key of the configuration document.',
  },
  NEUROCLUSTER_ERR_DATA_READ: {
    category: 'io',
    exitCode: 2,
    suggestion: 'Check that the input file exists and is readable.',
  },
  NEUROCLUSTER_ERR_DATA_FORMAT: {
    category: 'data',
    exitCode: 2,
    suggestion: 'Check the file format: CSV with a header row, JSON rows, or a float32/float64 NPY array.',
  },
  NEUROCLUSTER_ERR_DATA_VALUE: {
    category: 'data',
    exitCode: 2,
    suggestion: 'Fix the named cell, or choose a NaN policy (drop-rows, impute-mean) for missing values.',
  },
  NEUROCLUSTER_ERR_DATA_SHAPE: {
    category: 'data',
    exitCode: 2,
    suggestion: 'Check the number of rows and columns against the options (k, series length, model width).',
  },
  NEUROCLUSTER_ERR_MODEL_FILE: {
    category: 'data',
    exitCode: 2,
    suggestion: 'The model file is damaged or not a neurocluster model; restore it or fit again.',
  },
  NEUROCLUSTER_ERR_MODEL_VERSION: {
    category: 'data',
    exitCode: 2,
    suggestion: 'The model was written by a newer neurocluster; upgrade to read it.',
  },
  NEUROCLUSTER_ERR_BACKEND_UNAVAILABLE: {
    category: 'backend',
    exitCode: 1,
    suggestion: 'Choose another backend, or `--backend auto` to take the best one that starts.',
  },
  NEUROCLUSTER_ERR_KERNEL: {
    category: 'kernel',
    exitCode: 1,
    suggestion: 'A compute kernel failed; retry, or run on another backend.',
  },
  NEUROCLUSTER_ERR_DEVICE_LOST: {
    category: 'device-lost',
    exitCode: 1,
    suggestion: 'The GPU device was lost (driver reset, or the GPU went away); retry, or run on the CPU.',
  },
  NEUROCLUSTER_ERR_OUT_OF_MEMORY: {
    category: 'out-of-memory',
    exitCode: 1,
    suggestion:
      'Lower engine.webgpu.memoryBudgetMB so work is split into smaller chunks, or use a CPU backend.',
  },
  NEUROCLUSTER_ERR_NUMERICAL: {
    category: 'numerical',
    exitCode: 1,
    suggestion: 'A kernel produced NaN or infinity; check the input scale and the encoder settings.',
  },
  NEUROCLUSTER_ERR_ABORTED: {
    category: 'cancelled',
    exitCode: 1,
    suggestion: 'The operation was cancelled by its caller.',
  },
  NEUROCLUSTER_ERR_IO: {
    category: 'io',
    exitCode: 1,
    suggestion: 'Check that the output location exists, is writable and has free space.',
  },
  NEUROCLUSTER_ERR_INTERNAL: {
    category: 'internal',
    exitCode: 1,
    suggestion: 'This is a bug in neurocluster; please report it with the command that caused it.',
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

/** Base class of every error the engine raises on purpose. */
export class NeuroclusterError extends Error {
  readonly [brand] = true;
  readonly code: ErrorCode;
  readonly location: ErrorLocation | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; location?: ErrorLocation } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.location = options.location;
  }

  get category(): ErrorCategory {
    return ERROR_CODES[this.code].category;
  }

  get exitCode(): 1 | 2 {
    return ERROR_CODES[this.code].exitCode;
  }

  get suggestion(): string {
    return ERROR_CODES[this.code].suggestion;
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      category: this.category,
      message: this.message,
      ...(this.location ? { location: this.location } : {}),
    };
  }
}

/** Bad command line or bad option value. */
export class UsageError extends NeuroclusterError {
  constructor(
    message: string,
    code:
      | 'NEUROCLUSTER_ERR_USAGE'
      | 'NEUROCLUSTER_ERR_INVALID_ARGUMENT' = 'NEUROCLUSTER_ERR_INVALID_ARGUMENT',
    options: { cause?: unknown } = {},
  ) {
    super(code, message, options);
  }
}

/** A configuration document or value that fails its schema. */
export class ConfigError extends NeuroclusterError {
  constructor(message: string, options: { cause?: unknown; location?: ErrorLocation } = {}) {
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
    options: { cause?: unknown; location?: ErrorLocation } = {},
  ) {
    super(code, message, options);
  }
}

/** A model file that is corrupt, truncated, or from an unsupported version. */
export class ModelFileError extends NeuroclusterError {
  constructor(
    message: string,
    options: { cause?: unknown; location?: ErrorLocation; newerVersion?: boolean } = {},
  ) {
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
    options: { cause?: unknown } = {},
  ) {
    super(code, message, options);
  }
}

/** The caller's AbortSignal fired. */
export class AbortedError extends NeuroclusterError {
  constructor(message = 'the operation was aborted', options: { cause?: unknown } = {}) {
    super('NEUROCLUSTER_ERR_ABORTED', message, options);
  }
}

/** Writing an output failed. */
export class OutputError extends NeuroclusterError {
  constructor(message: string, options: { cause?: unknown; location?: ErrorLocation } = {}) {
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

/** Wraps anything thrown into a NeuroclusterError, keeping it as the `cause`. */
export function toNeuroclusterError(error: unknown): NeuroclusterError {
  if (isNeuroclusterError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new NeuroclusterError('NEUROCLUSTER_ERR_INTERNAL', message, { cause: error });
}

/**
 * Renders a cell value for an error message: control characters escaped, at most 40 characters,
 * so that a hostile or binary input cannot garble the terminal or flood the log.
 */
export function quoteValue(value: string, max = 40): string {
  const escaped = JSON.stringify(value).slice(1, -1);
  const cut = escaped.length > max ? `${escaped.slice(0, max - 1)}…` : escaped;
  return `"${cut}"`;
}
