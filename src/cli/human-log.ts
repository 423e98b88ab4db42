/**
 * The CLI's log lines for people: each record as one line on stderr, `neurocluster: warning:
 * <message>` (as the CLI's own warnings are), escaped as the error line is; at debug and trace the
 * record's fields follow as JSON. `--log-format json` (or a `logging.transport`) keeps pino's JSON.
 */
import { printable } from '../core/printable.js';

const LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warning',
  50: 'error',
  60: 'fatal',
};

/** Fields of every record that are not its content. */
const ENVELOPE = new Set(['level', 'time', 'name', 'msg', 'pid', 'hostname']);

/** One pino record (a JSON line) as the human line. */
export function humanLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return `neurocluster: ${printable(json.trim())}\n`;
  }
  const level = typeof record.level === 'number' ? record.level : 30;
  const word = LEVELS[level] ?? String(level);
  const err = record.err as { message?: unknown } | undefined;
  let message = typeof record.msg === 'string' ? record.msg : '';
  if (typeof err?.message === 'string' && !message.includes(err.message)) {
    message = message ? `${message}: ${err.message}` : err.message;
  }
  let line = `neurocluster: ${word}: ${message}`;
  if (level <= 20) {
    const fields = Object.fromEntries(Object.entries(record).filter(([k]) => !ENVELOPE.has(k)));
    if (Object.keys(fields).length > 0) line += ` ${JSON.stringify(fields)}`;
  }
  return `${printable(line)}\n`;
}

/** A pino destination that writes each record as its human line to `out` (stderr by default). */
export function humanLogDestination(out: { write(text: string): unknown } = process.stderr) {
  return {
    write(json: string): void {
      for (const record of json.split('\n')) if (record.trim() !== '') out.write(humanLine(record));
    },
  };
}
