/**
 * Privacy, the audit log, the keyring, encrypted files, data roots and model backups on the real
 * compiled command.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isEncrypted } from '../../src/security/envelope.js';
import { Keyring } from '../../src/security/keyring.js';
import { CLI, ROOT } from '../helpers.js';
import { auditRecords, cliScratch, IRIS } from './scratch.js';

const { dir, cli, file } = cliScratch();

describe('neurocluster cluster --epsilon and privacy status', () => {
  const home = { NEUROCLUSTER_HOME: join(dir, 'privacy-home') };
  const clusterDp = (epsilon: string) =>
    cli(
      [
        'cluster',
        IRIS,
        '--k',
        '3',
        '--method',
        'kmeans',
        '--label-column',
        'species',
        '--epsilon',
        epsilon,
        '--bounds',
        '0:10',
        '--dataset',
        'iris-cli',
        '--json',
      ],
      { ...home, NEUROCLUSTER_PRIVACY__BUDGET__EPSILON: '3' },
    );

  it('charges the dataset, keeps the budget across processes, and refuses an overspend with exit 1', () => {
    const first = clusterDp('2');
    expect(first.code).toBe(0);
    const out = JSON.parse(first.stdout);
    expect(out.privacy).toMatchObject({
      dataset: 'iris-cli',
      epsilon: 2,
      spent: 2,
      remaining: 1,
      mechanism: 'laplace',
    });
    expect(out.anonymity.minClusterSize).toBe(5);
    const status = cli(['privacy', 'status', '--dataset', 'iris-cli', '--json'], home);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      dataset: 'iris-cli',
      epsilon: 3,
      spent: 2,
      remaining: 1,
    });
    const over = clusterDp('1.5');
    expect(over.code).toBe(1);
    expect(over.stdout).toBe('');
    expect(over.stderr).toMatch(
      /^neurocluster: NEUROCLUSTER_ERR_PRIVACY_BUDGET: dataset iris-cli: epsilon 1\.5/m,
    );
    const all = JSON.parse(cli(['privacy', 'status', '--json'], home).stdout);
    expect(all.datasets).toEqual([expect.objectContaining({ dataset: 'iris-cli', spent: 2, refusals: 1 })]);
  });
});

describe('the audit log and the keyring, from the command line', () => {
  const home = join(dir, 'audit-home');
  const env = { NEUROCLUSTER_HOME: home };

  it('records data reads, model writes and key rotations; audit verify exits 0, then 1 naming the edited record', () => {
    const model = join(dir, 'audited.model.json');
    expect(
      cli(
        [
          'cluster',
          IRIS,
          '--k',
          '3',
          '--method',
          'kmeans',
          '--label-column',
          'species',
          '--save-model',
          model,
          '--json',
        ],
        env,
      ).code,
    ).toBe(0);
    expect(cli(['cluster', join(dir, 'missing.csv'), '--k', '3', '--json'], env).code).toBe(2);
    const rotate = cli(['keys', 'rotate', '--dir', dir, '--json'], env);
    expect(rotate.code).toBe(0);
    const { from, to, rewrapped } = JSON.parse(rotate.stdout);
    expect(from).not.toBe(to);
    // The model saved above (encrypted by default) was re-wrapped, and still predicts.
    expect(rewrapped).toContain(model);
    expect(cli(['predict', IRIS, '--model', model, '--label-column', 'species', '--json'], env).code).toBe(0);
    const file = join(home, 'audit', 'audit.jsonl');
    const records = auditRecords(home);
    expect(records.map((r) => [r.action, r.outcome])).toEqual([
      ['data.read', 'success'],
      ['model.write', 'success'],
      ['data.read', 'failure'],
      ['keys.rotate', 'success'],
      ['model.read', 'success'],
      ['data.read', 'success'],
    ]);
    expect(records[2].details.code).toBe('NEUROCLUSTER_ERR_DATA_READ');
    const ok = cli(['audit', 'verify', '--json'], env);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, records: 6 });
    const text = readFileSync(file, 'utf8').replace(`"resource":"${model}"`, '"resource":"/elsewhere"');
    writeFileSync(file, text);
    const broken = cli(['audit', 'verify'], env);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(
      /audit log broken at .*audit\.jsonl:2 \(record 2\): its HMAC does not match/,
    );
  });
});

describe('keys retire and score, audited', () => {
  it('retires a key that is not current, refuses the current one, and audits score reads', () => {
    const env = { NEUROCLUSTER_HOME: join(dir, 'retire-home') };
    expect(cli(['keys', 'rotate', '--json'], env).code).toBe(0);
    const { keys } = JSON.parse(cli(['keys', 'list', '--json'], env).stdout);
    const old = keys.find((k: { current: boolean }) => !k.current).id;
    const current = keys.find((k: { current: boolean }) => k.current).id;
    expect(cli(['keys', 'retire', old, '--json'], env).code).toBe(0);
    const refused = cli(['keys', 'retire', current], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/NEUROCLUSTER_ERR_SECURITY: key .* is current: rotate first/);
    const labels = file(
      'score-labels.csv',
      `label\n${'0\n'.repeat(50)}${'1\n'.repeat(50)}${'2\n'.repeat(50)}`,
    );
    expect(cli(['score', IRIS, '--labels', labels, '--label-column', 'species', '--json'], env).code).toBe(0);
    const actions = auditRecords(join(dir, 'retire-home')).map((r) => [r.action, r.outcome]);
    expect(actions).toEqual([
      ['keys.rotate', 'success'],
      ['keys.retire', 'success'],
      ['keys.retire', 'denied'],
      ['data.read', 'success'],
    ]);
  });
});

describe('encrypted results and files, from the command line', () => {
  const home = join(dir, 'results-home');
  const env = { NEUROCLUSTER_HOME: home };
  const out = join(dir, 'encrypted-results');
  mkdirSync(out, { recursive: true });
  const at = (name: string) => join(realpathSync(out), name);

  it('writes result, labels and plot encrypted and owner-only; decrypt, score and rotate read them', () => {
    const args = ['cluster', IRIS, '--k', '3', '--method', 'kmeans', '--label-column', 'species'];
    const plain = cli([...args, '--json'], env);
    expect(plain.code).toBe(0);
    const r = cli(
      [
        ...args,
        '--encrypt-results',
        '--out',
        at('result.json'),
        '--labels-out',
        at('labels.csv'),
        '--plot',
        at('plot.svg'),
        '--save-model',
        at('model.json'),
        '--json',
      ],
      env,
    );
    expect(r.code).toBe(0);
    for (const name of ['result.json', 'labels.csv', 'plot.svg', 'model.json']) {
      expect(isEncrypted(readFileSync(at(name)))).toBe(true);
      expect(statSync(at(name)).mode & 0o077).toBe(0);
    }
    // decrypt gives back exactly what the run printed; score reads the encrypted labels.
    const decrypted = cli(['decrypt', at('result.json')], env);
    expect(decrypted.code).toBe(0);
    expect(JSON.parse(decrypted.stdout).labels).toEqual(JSON.parse(plain.stdout).labels);
    expect(cli(['decrypt', at('labels.csv'), '--out', at('labels.plain.csv')], env).code).toBe(0);
    expect(readFileSync(at('labels.plain.csv'), 'utf8')).toMatch(/^label\n[012]\n/);
    const score = cli(
      ['score', IRIS, '--labels', at('labels.csv'), '--label-column', 'species', '--json'],
      env,
    );
    expect(score.code).toBe(0);
    // Every one of them is recorded: rotation re-wraps them without being told where they are.
    const listed = JSON.parse(cli(['keys', 'list', '--json'], env).stdout).keys;
    expect(listed).toEqual([expect.objectContaining({ current: true, files: 4 })]);
    const rotate = JSON.parse(cli(['keys', 'rotate', '--json'], env).stdout);
    expect(rotate.rewrapped.sort()).toEqual(
      ['labels.csv', 'model.json', 'plot.svg', 'result.json'].map(at).sort(),
    );
    expect(cli(['keys', 'retire', rotate.from, '--json'], env).code).toBe(0);
    expect(JSON.parse(cli(['decrypt', at('result.json')], env).stdout).k).toBe(3);
    const records = auditRecords(home);
    const writes = records.filter((x) => x.action === 'result.write');
    expect(writes.map((x) => [x.resource, x.details.encrypted])).toEqual([
      [at('result.json'), true],
      [at('labels.csv'), true],
      [at('plot.svg'), true],
    ]);
    expect(records.filter((x) => x.action === 'file.decrypt').map((x) => x.outcome)).toEqual([
      'success',
      'success',
      'success',
    ]);
  });

  it('clusters an encrypted data file as the plain one; refuses to retire a key a file needs unless forced', () => {
    const enc = at('iris.csv.enc');
    expect(cli(['encrypt', IRIS, '--out', enc], env).code).toBe(0);
    expect(isEncrypted(readFileSync(enc))).toBe(true);
    const args = ['--k', '3', '--method', 'kmeans', '--label-column', 'species', '--json'];
    const fromPlain = JSON.parse(cli(['cluster', IRIS, ...args], env).stdout);
    const fromEncrypted = JSON.parse(cli(['cluster', enc, ...args], env).stdout);
    expect(fromEncrypted.labels).toEqual(fromPlain.labels);
    // A new current key made behind the engine's back (no re-wrap): the file still needs the old one.
    const keyring = Keyring.open({ env, warn: () => {} });
    const old = keyring.current().id;
    keyring.rotate();
    const refused = cli(['keys', 'retire', old], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`key ${old} still wraps`);
    expect(refused.stderr).toContain(enc);
    expect(cli(['keys', 'retire', old, '--force'], env).code).toBe(0);
    const lost = cli(['decrypt', enc], env);
    expect(lost.code).toBe(1);
    expect(lost.stdout).toBe('');
    expect(lost.stderr).toMatch(/NEUROCLUSTER_ERR_SECURITY: .*retired/);
  });

  it('decrypt refuses a plain file (exit 2) and a changed byte (exit 1), printing nothing; encrypt keeps to the data roots', () => {
    expect(cli(['decrypt', IRIS], env).code).toBe(2);
    expect(cli(['decrypt', at('result.json'), '--json'], env).stderr).toMatch(/--json .*give --out/);
    const outside = cli(['encrypt', IRIS, '--out', at('outside.enc')], {
      ...env,
      NEUROCLUSTER_SECURITY__DATA_ROOTS: JSON.stringify([out]),
    });
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/NEUROCLUSTER_ERR_SECURITY_PATH: .*iris\.csv is outside the data roots/);
    expect(existsSync(at('outside.enc'))).toBe(false);
    const enc = at('tampered.enc');
    expect(cli(['encrypt', IRIS, '--out', enc], env).code).toBe(0);
    const bytes = readFileSync(enc);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 40) ^ 1, bytes.length - 40);
    writeFileSync(enc, bytes);
    const r = cli(['decrypt', enc], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/NEUROCLUSTER_ERR_INTEGRITY: encrypted file: chunk \d+ does not authenticate/);
  });
});

describe('the keyring shared by processes running at once', () => {
  /** The CLI as a child process that runs alongside others. */
  function cliAsync(args: string[], env: Record<string, string>) {
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
      const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => {
        stdout += d;
      });
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.on('close', (code) => done({ code, stdout, stderr }));
    });
  }

  it('four rotations at once on a fresh home: one keyring, every new key kept, the audit chain intact', async () => {
    const env = { NEUROCLUSTER_HOME: join(dir, 'concurrent-home') };
    const runs = await Promise.all([1, 2, 3, 4].map(() => cliAsync(['keys', 'rotate', '--json'], env)));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const rotations = runs.map((r) => JSON.parse(r.stdout) as { from: string; to: string });
    // Only one process gave the new keyring's backup warning; all of them started from its key or a later one.
    expect(runs.filter((r) => r.stderr.includes('new keyring at'))).toHaveLength(1);
    const { keys } = JSON.parse(cli(['keys', 'list', '--json'], env).stdout) as { keys: { id: string }[] };
    expect(keys).toHaveLength(5);
    const ids = keys.map((k) => k.id);
    for (const { from, to } of rotations) expect(ids).toEqual(expect.arrayContaining([from, to]));
    const verify = cli(['audit', 'verify', '--json'], env);
    expect(verify.code, verify.stdout).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, records: 4 });
  });
});

describe('data roots, from the command line', () => {
  it('refuses a file outside security.dataRoots with exit 2, and audits the denial and the anomaly', () => {
    const home = join(dir, 'roots-home');
    const env = {
      NEUROCLUSTER_HOME: home,
      NEUROCLUSTER_SECURITY__DATA_ROOTS: JSON.stringify([join(dir, 'nowhere')]),
    };
    const r = cli(['cluster', IRIS, '--k', '3', '--json'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/NEUROCLUSTER_ERR_SECURITY_PATH: .*iris\.csv is outside the data roots/);
    const records = auditRecords(home);
    expect(records.at(-2)).toMatchObject({ action: 'data.read', outcome: 'denied', risk: 40 });
    // The anomaly rule outside-roots saw it.
    expect(records.at(-1)).toMatchObject({ action: 'security.anomaly', resource: 'outside-roots', risk: 70 });
  });
});

describe('model backup, restore and export, from the command line', () => {
  it('backs a model up, restores it checked, exports it for age, and audits each', () => {
    const home = join(dir, 'backup-home');
    const env = { NEUROCLUSTER_HOME: home };
    const model = join(dir, 'to-back-up.model.json');
    expect(
      cli(['cluster', IRIS, '--k', '3', '--label-column', 'species', '--save-model', model], env).code,
    ).toBe(0);
    const backupDir = join(dir, 'backups');
    mkdirSync(backupDir, { recursive: true });
    const b = cli(['model', 'backup', backupDir, '--model', model, '--json'], env);
    expect(b.code).toBe(0);
    const { backup } = JSON.parse(b.stdout);
    const restored = join(dir, 'restored-cli.model.json');
    const r = cli(['model', 'restore', backup, '--to', restored, '--json'], env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).manifest.source).toBe(model);
    expect(cli(['predict', IRIS, '--model', restored, '--label-column', 'species', '--json'], env).code).toBe(
      0,
    );
    const bad = cli(['model', 'export', model, '--recipient', 'nope', '--out', join(dir, 'x.age')], env);
    expect(bad.code).toBe(2);
    const actions = auditRecords(home).map((x) => [x.action, x.outcome]);
    expect(actions).toEqual(
      expect.arrayContaining([
        ['model.backup', 'success'],
        ['model.restore', 'success'],
        ['model.export', 'failure'],
      ]),
    );
  });
});
