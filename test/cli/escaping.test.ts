/**
 * What the CLI echoes on stderr (error lines and warnings) cannot drive the terminal: file names
 * and cells with ESC, newlines, C1 controls, bidirectional controls or line separators come out
 * as visible escapes, on the one line they belong to. Run on the real compiled command.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatError } from '../../src/cli/output.js';
import { DataError } from '../../src/core/errors.js';
import { printable } from '../../src/core/printable.js';
import { runCli, tempDir } from '../helpers.js';

const dir = tempDir();
const HOME = join(dir, 'home');

function cli(args: string[], env: Record<string, string> = {}) {
  return runCli(args, { home: HOME, env, cwd: dir });
}

/** Anything a terminal would act on or reorder, as opposed to print. */
const RAW = /[\p{Cc}\p{Bidi_Control}\p{Zl}\p{Zp}\p{Cs}]/u;

/** stderr without its line ends: what is left must hold no raw control. */
function lines(stderr: string): string[] {
  expect(stderr.endsWith('\n')).toBe(true);
  const all = stderr.slice(0, -1).split('\n');
  for (const line of all) expect(line).not.toMatch(RAW);
  return all;
}

// A name that clears the screen, forges a second error line and reverses what follows it.
const HOSTILE = 'in\x1b[2J\nneurocluster: NEUROCLUSTER_ERR_FAKE: forged\u202e\u2028x';
const HOSTILE_SHOWN = 'in\\x1b[2J\\nneurocluster: NEUROCLUSTER_ERR_FAKE: forged\\u202e\\u2028x';

describe('echoed text is escaped', () => {
  it('printable() escapes controls, bidi controls, separators and lone surrogates, and nothing else', () => {
    expect(printable('a\x00\t\r\n\x1b\x7f\u0085\u009b')).toBe('a\\x00\\t\\r\\n\\x1b\\x7f\\x85\\x9b');
    expect(printable('\u202a\u202e\u2066\u2069\u200e\u200f\u061c\u2028\u2029')).toBe(
      '\\u202a\\u202e\\u2066\\u2069\\u200e\\u200f\\u061c\\u2028\\u2029',
    );
    expect(printable('x\ud800y\udfffz')).toBe('x\\ud800y\\udfffz');
    const fine = 'Zürich, 東京, ü, emoji \u{1F600}, tab-free \\x1b text, "quotes"';
    expect(printable(fine)).toBe(fine);
  });

  it('formatError escapes the message and the location, and stays one line', () => {
    const e = new DataError('NEUROCLUSTER_ERR_DATA_VALUE', 'bad \x1b[31m\ud800 cell', {
      location: { file: 'a\nb\u202e.csv', row: 3, column: 'c\x9bd' },
    });
    expect(formatError(e)).toBe(
      'neurocluster: NEUROCLUSTER_ERR_DATA_VALUE: bad \\x1b[31m\\ud800 cell (a\\nb\\u202e.csv:3:c\\x9bd)',
    );
  });

  it('a file whose name holds ESC, a newline and U+202E gives one escaped error line', () => {
    const input = join(dir, `${HOSTILE}.csv`);
    writeFileSync(input, 'a,b\n1,2\n3,x\n5,6\n');
    // A first run creates the home (and says so), so the next is judged on its own.
    cli(['cluster', join(dir, 'missing.csv'), '--k', '2']);
    const r = cli(['cluster', input, '--k', '2']);
    expect(r.code).toBe(2);
    const [line, ...more] = lines(r.stderr);
    expect(more).toEqual([]);
    expect(line).toMatch(/^neurocluster: NEUROCLUSTER_ERR_DATA_VALUE: /);
    expect(line).toContain(`(${join(dir, HOSTILE_SHOWN)}.csv:3:b)`);

    const missing = cli(['cluster', join(dir, `${HOSTILE}-missing.csv`), '--k', '2']);
    expect(missing.code).toBe(2);
    expect(lines(missing.stderr)).toHaveLength(1);
    expect(missing.stderr).toContain(HOSTILE_SHOWN);
  });

  it('a cell and a column name with ESC, newline, C1 and bidi controls are escaped', () => {
    const input = join(dir, 'cells.csv');
    writeFileSync(
      input,
      `a,"b\u202e\x1b]0;title\x07"\n1,2\n3,"x\x1b[2J\nneurocluster: forged\u009b\u2029"\n5,6\n`,
    );
    const r = cli(['cluster', input, '--k', '2']);
    expect(r.code).toBe(2);
    const all = lines(r.stderr);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatch(/^neurocluster: NEUROCLUSTER_ERR_DATA_VALUE: /);
    expect(all[0]).toContain('x\\u001b[2J\\nneurocluster: forged\\x9b');
    expect(all[0]).toContain('b\\u202e\\u001b]0;title\\u0007');
  });

  it('warnings on stderr are escaped too (a new keyring, a failed --metrics-out)', () => {
    const home = join(dir, `home${HOSTILE}`);
    mkdirSync(home);
    const r = cli(
      [
        '--metrics-out',
        join(dir, 'no-such-dir', `${HOSTILE}.prom`),
        'cluster',
        join(dir, 'missing.csv'),
        '--k',
        '2',
      ],
      { NEUROCLUSTER_HOME: home },
    );
    expect(r.code).toBe(2);
    const all = lines(r.stderr);
    const warnings = all.filter((l) => l.startsWith('neurocluster: warning: '));
    expect(
      warnings.some((l) => l.includes(`could not write ${join(dir, 'no-such-dir', HOSTILE_SHOWN)}`)),
    ).toBe(true);
    expect(all.filter((l) => l.startsWith('neurocluster: NEUROCLUSTER_ERR_'))).toHaveLength(1);
    // The audit log signed that run with a new keyring, but nothing was encrypted: no backup warning yet.
    expect(r.stderr).not.toContain('keyring');
    const plain = join(dir, 'secret.txt');
    writeFileSync(plain, 'x\n');
    const enc = cli(['encrypt', plain, '--out', `${plain}.enc`], { NEUROCLUSTER_HOME: home });
    expect(enc.code, enc.stderr).toBe(0);
    expect(lines(enc.stderr)).toEqual([
      expect.stringContaining(`new keyring at ${join(dir, `home${HOSTILE_SHOWN}`)}`),
    ]);
  });

  it('summary tables on stdout are escaped too (a dataset name, a file name)', () => {
    const data = join(dir, 'table.csv');
    writeFileSync(data, 'a,b\n1,2\n2,1\n8,9\n9,8\n');
    const fit = cli([
      'cluster',
      data,
      '--k',
      '2',
      '--method',
      'kmeans',
      '--epsilon',
      '1',
      '--bounds',
      '0:10',
      '--dataset',
      HOSTILE,
    ]);
    expect(fit.code).toBe(0);
    const status = cli(['privacy', 'status', '--dataset', HOSTILE]);
    expect(status.code).toBe(0);
    expect(lines(status.stdout)[0]).toBe(`dataset ${HOSTILE_SHOWN}`);
  });
});
