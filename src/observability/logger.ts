/**
 * Logging through pino. The CLI writes to stderr (stdout belongs to results); library callers pass
 * their own logger or take this default, which also writes to stderr.
 */
import { type DestinationStream, type LevelWithSilent, type Logger, pino } from 'pino';

export type { Logger };

export interface LoggerOptions {
  readonly level?: LevelWithSilent;
  /** Where lines go; defaults to stderr. */
  readonly destination?: DestinationStream;
}

/** A JSON logger on stderr (or the given destination). */
export function createLogger({ level = 'warn', destination }: LoggerOptions = {}): Logger {
  return pino(
    { name: 'neurocluster', level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
    destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
