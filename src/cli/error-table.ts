/**
 * The table of error codes in docs/cli.md, written from {@link ERROR_CODES} so the two cannot
 * disagree: `npm run docs:errors` rewrites the part of docs/cli.md between the markers, and a test
 * fails when the document's table is not what this module writes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ERROR_CODES } from '../core/error-codes.js';

export const ERROR_TABLE_BEGIN =
  '<!-- error-codes:begin (npm run docs:errors writes this table from ERROR_CODES) -->';
export const ERROR_TABLE_END = '<!-- error-codes:end -->';

/** A table cell: a `|` would end the cell, and the text is one line. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

/** The Markdown table: code, exit status, category, what to do (every recovery action, in order). */
export function errorCodeTable(codes: typeof ERROR_CODES = ERROR_CODES): string {
  const rows = Object.entries(codes).map(
    ([code, info]) =>
      `| \`${code}\` | ${info.exitCode} | ${info.category} | ${cell(info.recovery.join(' '))} |`,
  );
  return ['| code | exit | category | what to do |', '|---|---|---|---|', ...rows].join('\n');
}

/** `readme` with the text between the markers replaced by {@link errorCodeTable}. */
export function withErrorCodeTable(readme: string): string {
  const begin = readme.indexOf(ERROR_TABLE_BEGIN);
  const end = readme.indexOf(ERROR_TABLE_END, begin);
  if (begin < 0 || end < 0) {
    throw new Error(`the document has no ${ERROR_TABLE_BEGIN} ... ${ERROR_TABLE_END} markers`);
  }
  const head = readme.slice(0, begin + ERROR_TABLE_BEGIN.length);
  return `${head}\n${errorCodeTable()}\n${readme.slice(end)}`;
}

/** Rewrites the table in the document at `path` (docs/cli.md); true when it changed. */
export function updateErrorCodeTable(path: string): boolean {
  const before = readFileSync(path, 'utf8');
  const after = withErrorCodeTable(before);
  if (after !== before) writeFileSync(path, after);
  return after !== before;
}
