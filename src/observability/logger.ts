/**
 * Logging through pino. The CLI writes to stderr (stdout belongs to results): JSON lines, or
 * pino-pretty's human-readable ones on a terminal; a pino transport (any sink) when configured.
 * Library callers pass their own logger or take this default, which also writes to stderr.
 *
 * Secrets and raw data never reach a log line: the keys in {@link REDACT_PATHS} are censored at
 * the top level and one level down, whoever wrote the line. Inside an operation every line carries
 * its correlation ID (see {@link operationLogger}).
 */
import type { EventEmitter } from 'node:events';
import { type DestinationStream, type LevelWithSilent, type Logger, pino } from 'pino';
import pretty from 'pino-pretty';
import { ConfigError } from '../core/errors.js';
import { printable } from '../core/printable.js';

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
    const { stream, ready } = startTransport(transport);
    const logger = pino(options, stream);
    transports.set(logger, ready);
    return logger;
  }
  const terminal = !destination && process.stderr.isTTY === true;
  if (mode === 'on' || (mode === 'auto' && terminal)) {
    return pino(options, pretty({ destination: destination ?? 2, sync: true, colorize: terminal }));
  }
  return pino(options, destination ?? pino.destination({ fd: 2, sync: true }));
}

/** How a logger's transport started: settled when its worker is ready or has failed. */
interface TransportStart {
  readonly started: Promise<void>;
  /** Set by {@link loggerReady}: its caller reports a failed start, the logger does not. */
  watched: boolean;
}

const transports = new WeakMap<Logger, TransportStart>();

/** The first line of an error's message (a worker's "Cannot find module" adds its require stack). */
const firstLine = (error: unknown) =>
  (error instanceof Error ? error.message : String(error)).split('\n')[0]!.trim();

/**
 * A pino transport's stream, in a worker thread. A target that cannot be resolved is a ConfigError
 * here; one that fails in the worker (a missing file, a destination that cannot be opened, a
 * crash later) emits 'error' asynchronously: that rejects `started` and, when nobody watches the
 * start (or it already happened), is reported on stderr as one line. Never an unhandled event.
 */
function startTransport(transport: NonNullable<LoggerOptions['transport']>): {
  stream: DestinationStream;
  ready: TransportStart;
} {
  let stream: DestinationStream & EventEmitter;
  try {
    stream = pino.transport({ target: transport.target, options: transport.options ?? {} });
  } catch (cause) {
    throw new ConfigError(
      `logging.transport.target: cannot load "${transport.target}": ${firstLine(cause)}`,
      {
        cause,
      },
    );
  }
  let ready = false;
  let failed = false;
  const start: TransportStart = {
    watched: false,
    started: new Promise<void>((resolve, reject) => {
      stream.once('ready', () => {
        ready = true;
        resolve();
      });
      // A failed stream answers every later write with another 'error': the first one tells.
      stream.on('error', (cause: unknown) => {
        if (failed) return;
        failed = true;
        const error = new ConfigError(
          `logging.transport: the transport "${transport.target}" failed: ${firstLine(cause)}`,
          { cause },
        );
        reject(error);
        if (ready || !start.watched) {
          process.stderr.write(
            `neurocluster: warning: ${printable(`${error.code}: ${error.message}`)}; its log lines are lost\n`,
          );
        }
      });
    }),
  };
  start.started.catch(() => {});
  return { stream, ready: start };
}

/**
 * Resolves when the logger's transport has started (at once for a logger without one); rejects
 * with a ConfigError when it cannot start. The CLI awaits it before a command does any work.
 */
export function loggerReady(logger: Logger): Promise<void> {
  const start = transports.get(logger);
  if (!start) return Promise.resolve();
  start.watched = true;
  return start.started;
}

/**
 * The logger of one operation: every line carries its correlation ID, and the redaction applies
 * even to a logger the library user passed in.
 */
export function operationLogger(logger: Logger, correlationId: string): Logger {
  return logger.child({ correlationId }, { redact: { paths: REDACT_PATHS, censor: CENSOR } });
}
