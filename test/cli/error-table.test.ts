/**
 * The documented error codes are the code's: the table between the markers in docs/cli.md is
 * exactly what `npm run docs:errors` writes from ERROR_CODES (every code, its exit status, category
 * and recovery), and every sentence of the README and docs/ that gives a code's exit status gives
 * the one in ERROR_CODES.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ERROR_TABLE_BEGIN,
  ERROR_TABLE_END,
  errorCodeTable,
  withErrorCodeTable,
} from '../../src/cli/error-table.js';
import { ERROR_CODES, type ErrorCode } from '../../src/core/error-codes.js';
import { ROOT } from '../helpers.js';

/** The page that holds the table of error codes (`npm run docs:errors` rewrites it). */
const CLI_DOC = readFileSync(join(ROOT, 'docs', 'cli.md'), 'utf8');
/** The README and every page of docs/, for the sentences that give exit statuses. */
const DOCS = [
  readFileSync(join(ROOT, 'README.md'), 'utf8'),
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => readFileSync(join(ROOT, 'docs', name), 'utf8')),
].join('\n');

/** The table in docs/cli.md, between the markers. */
function cliDocTable(): string {
  const begin = CLI_DOC.indexOf(ERROR_TABLE_BEGIN);
  const end = CLI_DOC.indexOf(ERROR_TABLE_END);
  expect(begin, 'docs/cli.md has the table markers').toBeGreaterThanOrEqual(0);
  expect(end).toBeGreaterThan(begin);
  return CLI_DOC.slice(begin + ERROR_TABLE_BEGIN.length, end).trim();
}

describe('the documented error codes', () => {
  it('the table is the one written from ERROR_CODES (run `npm run docs:errors` after changing a code)', () => {
    expect(cliDocTable()).toBe(errorCodeTable());
  });

  it('lists every code once, with its exit status and category', () => {
    const rows = cliDocTable()
      .split('\n')
      .slice(2)
      .map((row) => row.split(' | '));
    expect(rows.map((r) => r[0]!.replace(/^\| `|`$/g, ''))).toEqual(Object.keys(ERROR_CODES));
    for (const [code, exit, category] of rows) {
      const info = ERROR_CODES[code!.replace(/^\| `|`$/g, '') as ErrorCode];
      expect([exit, category]).toEqual([String(info.exitCode), info.category]);
    }
  });

  it('a table that disagrees with the code is rewritten; a document without markers is refused', () => {
    const stale = CLI_DOC.replace(
      /(\| `NEUROCLUSTER_ERR_INTEGRITY` \| )\d/,
      (_m, head: string) => `${head}${3 - ERROR_CODES.NEUROCLUSTER_ERR_INTEGRITY.exitCode}`,
    );
    expect(stale).not.toBe(CLI_DOC);
    expect(withErrorCodeTable(stale)).toBe(CLI_DOC);
    expect(() => withErrorCodeTable('# no table here\n')).toThrow(/markers/);
  });

  it('every sentence naming a code and an exit status gives the exit status of ERROR_CODES', () => {
    // "`NEUROCLUSTER_ERR_X` (exit N" and "`NEUROCLUSTER_ERR_X`, exit N", outside the table.
    const prose = DOCS.replace(cliDocTable(), '');
    const claims = [...prose.matchAll(/`(NEUROCLUSTER_ERR_[A-Z_]+)`(?: \(|, )exit (\d)/g)];
    expect(claims.length).toBeGreaterThan(3);
    for (const [text, code, exit] of claims) {
      expect(ERROR_CODES[code as ErrorCode], text).toBeDefined();
      expect(String(ERROR_CODES[code as ErrorCode].exitCode), text).toBe(exit);
    }
  });
});
