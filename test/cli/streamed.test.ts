/** `cluster` and `predict` on a file fitted in chunks: the labels file, the JSON without labels, exit codes. */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers.js';
import { auditRecords, cliScratch, IRIS } from './scratch.js';

const { dir, cli, file } = cliScratch();
const streaming = file(
  'stream.yaml',
  'stream:\n  mode: on\n  chunkRows: 40\noutput:\n  inlineLabelsMax: 100\n',
);

describe('a streamed CLI run', () => {
  it('writes the labels file and a JSON result that says where they are', () => {
    const labels = join(dir, 'labels.csv');
    const model = join(dir, 'iris.model');
    const result = join(dir, 'streamed-result.json');
    const r = cli([
      'cluster',
      IRIS,
      '--k',
      '3',
      '--method',
      'kmeans',
      '--config',
      streaming,
      '--labels-out',
      labels,
      '--save-model',
      model,
      '--out',
      result,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).not.toHaveProperty('labels');
    expect(out).toMatchObject({
      rows: 150,
      labelsFile: labels,
      streamed: { sampleRows: 150, chunkRows: 40 },
    });
    const written = readFileSync(labels, 'utf8').trim().split('\n');
    expect(written[0]).toBe('label');
    expect(written).toHaveLength(151);
    // As readable as the other results: the result file's mode.
    expect(statSync(labels).mode & 0o777).toBe(statSync(result).mode & 0o777);
    const inMemory = JSON.parse(cli(['cluster', IRIS, '--k', '3', '--method', 'kmeans', '--json']).stdout);
    expect(written.slice(1).map(Number)).toEqual(inMemory.labels);
    const writes = auditRecords(join(dir, 'home')).filter((a) => a.action === 'result.write');
    expect(writes.filter((a) => a.resource === labels)).toMatchObject([{ outcome: 'success' }]);

    const predicted = join(dir, 'predicted.csv');
    const p = cli([
      'predict',
      IRIS,
      '--model',
      model,
      '--config',
      streaming,
      '--labels-out',
      predicted,
      '--json',
    ]);
    expect(p.code, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout)).toMatchObject({ rows: 150, labelsFile: predicted, k: 3 });
    expect(readFileSync(predicted, 'utf8')).toBe(readFileSync(labels, 'utf8'));

    // The running configuration decides how predict reads and returns, not the training run's.
    const plain = join(dir, 'plain.model');
    expect(
      cli(['cluster', IRIS, '-k', '3', '--method', 'kmeans', '--save-model', plain, '--json']).code,
    ).toBe(0);
    const capped = cli(['predict', IRIS, '--model', plain, '--config', streaming, '--json']);
    expect(capped.code).toBe(2);
    expect(capped.stderr).toMatch(/inlineLabelsMax \(100\)/);
  });

  it('is a usage error (exit 2) past output.inlineLabelsMax without --labels-out, and writes nothing', () => {
    const out = join(dir, 'result.json');
    const r = cli([
      'cluster',
      IRIS,
      '--k',
      '3',
      '--method',
      'kmeans',
      '--config',
      streaming,
      '--out',
      out,
      '--json',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/NEUROCLUSTER_ERR_USAGE: 150 rows is more than output.inlineLabelsMax \(100\)/);
    expect(existsSync(out)).toBe(false);
  });

  it('renames its labels file into place only once the audit record is written', () => {
    const home = join(dir, 'unauditable-home');
    // An audit log that cannot be appended to (a directory where the file goes).
    mkdirSync(join(home, 'audit', 'audit.jsonl'), { recursive: true });
    const out = join(dir, 'unaudited', 'labels.csv');
    mkdirSync(dirname(out));
    const r = runCli(
      [
        'cluster',
        IRIS,
        '-k',
        '3',
        '--method',
        'kmeans',
        '--config',
        streaming,
        '--labels-out',
        out,
        '--json',
      ],
      { home },
    );
    expect(r.code).not.toBe(0);
    expect(readdirSync(dirname(out))).toEqual([]);
  });
});
