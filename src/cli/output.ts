/** What the CLI prints: the one-line error, the summary table, CSV cells, the progress bar. */
import { styleText } from 'node:util';
import { isNeuroclusterError, type NeuroclusterError, toNeuroclusterError } from '../core/errors.js';
import { printable } from '../core/printable.js';
import type { PassProgress } from '../fit/result.js';

/**
 * `neurocluster: NEUROCLUSTER_ERR_<CODE>: <what was wrong> (<file>:<row>:<column>)`, on one line:
 * controls, bidirectional controls and separators in the message or the location (a file name,
 * a cell) are shown as escapes ({@link printable}).
 */
export function formatError(error: NeuroclusterError): string {
  const loc = error.location;
  let where = '';
  if (loc && (loc.file !== undefined || loc.row !== undefined || loc.column !== undefined)) {
    const parts = [loc.file ?? '<input>'];
    if (loc.row !== undefined || loc.column !== undefined) parts.push(String(loc.row ?? ''));
    if (loc.column !== undefined) parts.push(String(loc.column));
    where = ` (${parts.join(':')})`;
  }
  return `neurocluster: ${error.code}: ${printable(`${error.message}${where}`)}`;
}

/** Prints `neurocluster: warning: <message>` on stderr, escaped as the error line is. */
export function warn(message: string): void {
  process.stderr.write(`neurocluster: warning: ${printable(message)}\n`);
}

/** Prints the error line (and the stack under --verbose); returns the exit status. */
export function reportError(error: unknown, verbose: boolean): number {
  const e = toNeuroclusterError(error);
  process.stderr.write(`${formatError(e)}\n`);
  if (verbose) {
    const stack =
      isNeuroclusterError(error) && error.cause instanceof Error
        ? error.cause.stack
        : (error as Error)?.stack;
    if (stack) process.stderr.write(`${stack.split('\n').map(printable).join('\n')}\n`);
  }
  return e.exitCode;
}

export { csvCell, labelsCsv } from '../data/labels-file.js';

function fmt(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined) return 'n/a';
  return Math.abs(v) >= 1e5 ? v.toExponential(digits - 1) : v.toFixed(digits);
}

/**
 * A two-column table for a terminal. What it shows may come from input (a file or dataset name, a
 * column): every part is escaped like the error line, so none of it can drive the terminal.
 */
export function table(title: string, rows: readonly [string, string][]): string {
  const cells = rows.map(([k, v]) => [printable(k), printable(v)] as const);
  const w = Math.max(...cells.map(([k]) => k.length));
  const head = styleText('bold', printable(title), { stream: process.stdout });
  return `${head}\n${cells.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n')}\n`;
}

export { fmt as formatNumber };

/** A progress bar on stderr, drawn only when stderr is a terminal. */
export class ProgressBar {
  private readonly enabled = process.stderr.isTTY === true;
  private last = 0;

  update(fraction: number, label: string): void {
    if (!this.enabled) return;
    const t = Date.now();
    if (t - this.last < 100 && fraction < 1) return;
    this.last = t;
    const width = 30;
    const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
    process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${label}`.padEnd(70));
  }

  done(): void {
    if (this.enabled) process.stderr.write(`\r${' '.repeat(70)}\r`);
  }
}

/** How far a streamed fit's pass is, for the bar: its share of the rows when the total is known. */
export function passFraction(p: PassProgress): number {
  return p.totalRows ? Math.min(1, p.rows / p.totalRows) : 0;
}

/** A streamed fit's pass in words: which pass, rows done, rows a second, and the time left. */
export function passLabel(p: PassProgress): string {
  const name = p.pass === 'lloyd' ? `Lloyd pass ${p.iteration}` : p.pass;
  const rate = `${Math.round(p.rowsPerSecond).toLocaleString('en-US')} rows/s`;
  const eta = p.etaSeconds === undefined ? '' : `, ${Math.ceil(p.etaSeconds)} s left`;
  return `${name}: ${p.rows.toLocaleString('en-US')} rows, ${rate}${eta}`;
}
