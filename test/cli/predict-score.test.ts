/**
 * `predict` and `score` on the real compiled command: labels from a saved model, scores of given labels.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MODEL_VERSION } from '../../src/security/model-file.js';
import { ERROR_LINE, relErr, sklearn } from '../helpers.js';
import { cliScratch, EMPLOYEES, IRIS } from './scratch.js';

const { dir, cli, file } = cliScratch();

describe('neurocluster predict', () => {
  const model = join(dir, 'iris.model.json');

  it('labels new rows with a saved model exactly as cluster labelled them', () => {
    const fit = cli([
      'cluster',
      IRIS,
      '--k',
      '3',
      '--label-column',
      'species',
      '--save-model',
      model,
      '--json',
    ]);
    const labelsOut = join(dir, 'predicted.csv');
    const r = cli([
      'predict',
      IRIS,
      '--model',
      model,
      '--label-column',
      'species',
      '--labels-out',
      labelsOut,
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toHaveLength(2);
    expect(JSON.parse(r.stdout)).toEqual({
      labels: JSON.parse(fit.stdout).labels,
      rows: 150,
      k: 3,
      labelsFile: labelsOut,
    });
    expect(readFileSync(labelsOut, 'utf8').split('\n')).toHaveLength(152);
  });

  it.each([
    [
      'a truncated model',
      (t: string) => t.slice(0, 100),
      /NEUROCLUSTER_ERR_MODEL_FILE: model file is truncated/,
    ],
    [
      'a model from a newer version',
      (t: string) => t.replace(`"version":${MODEL_VERSION}`, `"version":${MODEL_VERSION + 1}`),
      /NEUROCLUSTER_ERR_MODEL_VERSION: /,
    ],
  ])('refuses %s with exit 2', (_t, damage, expected) => {
    // A plain model file, to damage its JSON (encrypted ones are checked below).
    cli(['cluster', IRIS, '--k', '3', '--label-column', 'species', '--save-model', model], {
      NEUROCLUSTER_SECURITY__ENCRYPT_MODELS: 'false',
    });
    const damaged = file('damaged.model.json', damage(readFileSync(model, 'utf8')));
    const r = cli(['predict', IRIS, '--model', damaged, '--json']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(ERROR_LINE);
    expect(r.stderr).toMatch(expected);
  });

  it('refuses an encrypted model with one byte changed, as tampering (exit 1)', () => {
    const sealed = join(dir, 'sealed.model.json');
    cli(['cluster', IRIS, '--k', '3', '--label-column', 'species', '--save-model', sealed]);
    const bytes = readFileSync(sealed);
    bytes[bytes.length - 100]! ^= 0x40;
    const r = cli(['predict', IRIS, '--model', file('tampered.model.json', bytes), '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^neurocluster: NEUROCLUSTER_ERR_INTEGRITY: encrypted file: chunk \d+ does not authenticate/m,
    );
  });

  it('keys samples by the same id column as cluster did, and warns when it is missing', () => {
    const empModel = join(dir, 'emp-hybrid.model.json');
    const fit = cli([
      'cluster',
      EMPLOYEES,
      '--k',
      '4',
      '--method',
      'hybrid',
      '--id-column',
      'employee_id',
      '--save-model',
      empModel,
      '--json',
    ]);
    const same = cli(['predict', EMPLOYEES, '--model', empModel, '--id-column', 'employee_id', '--json']);
    expect(JSON.parse(same.stdout).labels).toEqual(JSON.parse(fit.stdout).labels);
    expect(same.stderr).toBe('');
    const without = cli(['predict', EMPLOYEES, '--model', empModel, '--json']);
    expect(without.code).toBe(0);
    expect(without.stderr).toMatch(/keyed its samples by an id column/);
  });

  it('refuses data of the wrong width with exit 2', () => {
    cli(['cluster', IRIS, '--k', '3', '--label-column', 'species', '--save-model', model]);
    const r = cli(['predict', file('narrow.csv', 'a,b,c\n1,2,3\n'), '--model', model]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^neurocluster: NEUROCLUSTER_ERR_DATA_SHAPE: data has 3 feature columns; the model was fitted on 4/,
    );
  });
});

describe('neurocluster score', () => {
  it('scores given labels on the features as read, equal to scikit-learn', () => {
    const labels = file('species.csv', `species\n${sklearn.labellings.species!.join('\n')}\n`);
    const r = cli(['score', IRIS, '--labels', labels, '--label-column', 'species', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    const expected = sklearn.internal.find((c) => c.labels === 'species' && c.space === 'raw')!;
    expect(relErr(out.silhouette, expected.silhouette)).toBeLessThan(1e-6);
    expect(relErr(out.calinskiHarabasz, expected.calinskiHarabasz)).toBeLessThan(1e-6);
    expect(relErr(out.daviesBouldin, expected.daviesBouldin)).toBeLessThan(1e-6);
    expect(out.external.ari).toBe(1);
  });

  it('accepts one label per line without a header, and the labels-out of cluster', () => {
    const bare = file('bare.txt', `${sklearn.labellings.kmeans3!.join('\n')}\n`);
    expect(cli(['score', IRIS, '--labels', bare, '--label-column', 'species', '--json']).code).toBe(0);
    const labelsOut = join(dir, 'iris.labels.csv');
    cli(['cluster', IRIS, '--k', '3', '--label-column', 'species', '--labels-out', labelsOut]);
    const r = cli([
      'score',
      IRIS,
      '--labels',
      labelsOut,
      '--label-column',
      'species',
      '--sample-size',
      '100',
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ n: 150, k: 3, sampleSize: 100 });
  });

  it('refuses a labels file of the wrong length', () => {
    const short = file('short.txt', '0\n1\n');
    const r = cli(['score', IRIS, '--labels', short, '--label-column', 'species']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/NEUROCLUSTER_ERR_DATA_SHAPE: labels file has 2 labels for 150 data rows/);
  });
});
