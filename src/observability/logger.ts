/**
 * Logging through pino. The CLI writes to stderr (stdout belongs to results): JSON lines, or
 * pino-pretty's human-readable ones on a terminal; a pino transport (any sink) when configured.
 * Library callers pass their own logger or take this default, which also writes to stderr.
 *
 * Secrets and raw data never reach a log line: the keys in {@link REDACT_PATHS} are censored at
 * the top level and one level down, whoever wrote the line. Inside an operation every line carries
 * its correlation ID (see {@link operationLogger}).
 */
import { type DestinationStream, type LevelWithSilent, type Logger, pino } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/** Keys whose values are never logged: credentials, and the data being clustered. */
const SECRET_KEYS = [
  'password',
  'secret',
  'token',
  'apiKey',
  'key',
  'keyring',
  'authorization',
  'passphrase',
];
const DATA_KEYS = ['data', 'values', 'points', 'features', 'rows', 'row', 'cells'];
export const REDACT_PATHS = [...SECRET_KEYS, ...DATA_KEYS].flatMap((k) => [k, `*.${k}`]);
const CENSOR = '[redacted]';

export interface LoggerOptions {
  readonly level?: LevelWithSilent;
  /** Where lines go; defaults to stderr. */
  readonly destination?: DestinationStream;
  /** Human-readable lines (pino-pretty) instead of JSON; `auto`: when stderr is a terminal. */
  readonly pretty?: 'auto' | 'on' | 'off';
  /** A pino transport (package or file) that receives the lines instead; runs in a worker thread. */
  readonly transport?: { readonly target: string; readonly options?: Record<string, unknown> | undefined };
}

/** A JSON logger on stderr (or the given destination, pretty printer or transport). */
export function createLogger({
  level = 'warn',
  destination,
  pretty: mode = 'off',
  transport,
}: LoggerOptions = {}): Logger {
  const options = {
    name: 'neurocluster',
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: CENSOR },
  };
  if (transport) {
    return pino(options, pino.transport({ target: transport.target, options: transport.options ?? {} }));
  }
  const terminal = !destination && process.stderr.isTTY === true;
  if (mode === 'on' || (mode === 'auto' && terminal)) {
    return pino(options, pretty({ destination: destination ?? 2, sync: true, colorize: terminal }));
  }
  return pino(options, destination ?? pino.destination({ fd: 2, sync: true }));
}

/**
 * The logger of one operation: every line carries its correlation ID, and the redaction applies
 * even to a logger the library user passed in.
 */
export function operationLogger(logger: Logger, correlationId: string): Logger {
  return logger.child({ correlationId }, { redact: { paths: REDACT_PATHS, censor: CENSOR } });
}
