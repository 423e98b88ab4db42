import { describe, expect, it } from 'vitest';
import { humanLine, humanLogDestination } from '../../src/cli/human-log.js';
import { cliScratch } from './scratch.js';

const { cli, file } = cliScratch();

describe('the CLI log lines', () => {
  it('are one escaped line a record, fields only at debug and trace', () => {
    const warn = JSON.stringify({
      level: 40,
      time: 't',
      name: 'neurocluster',
      msg: 'careful\u001b[2J',
      column: 'x',
    });
    expect(humanLine(warn)).toBe('neurocluster: warning: careful\\x1b[2J\n');
    const debug = JSON.stringify({ level: 20, time: 't', msg: 'fit done', k: 3 });
    expect(humanLine(debug)).toBe('neurocluster: debug: fit done {"k":3}\n');
    const error = JSON.stringify({ level: 50, msg: 'write failed', err: { message: 'ENOSPC' } });
    expect(humanLine(error)).toBe('neurocluster: error: write failed: ENOSPC\n');
    expect(humanLine('not json')).toBe('neurocluster: not json\n');
    const out: string[] = [];
    humanLogDestination({ write: (t: string) => out.push(t) }).write(`${warn}\n${debug}\n`);
    expect(out).toHaveLength(2);
  });

  it('are human on a pipe by default, and pino JSON with --log-format json', () => {
    const data = file('words.csv', 'x,word\n1,a\n2,b\n8,c\n9,d\n');
    const human = cli(['cluster', data, '-k', '2', '--method', 'kmeans', '--json']);
    expect(human.code).toBe(0);
    expect(human.stderr).toContain('neurocluster: warning: non-numeric columns ignored: word\n');
    expect(human.stderr).not.toContain('{"level"');
    const json = cli(['cluster', data, '-k', '2', '--method', 'kmeans', '--json', '--log-format', 'json']);
    const lines = json.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(lines.find((l) => l.msg === 'non-numeric columns ignored: word')).toMatchObject({ level: 40 });
  });
});
