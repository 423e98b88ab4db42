/**
 * Model backups and the age export: a backup restores to a model that predicts exactly as the
 * original; a changed backup is refused whole; the export decrypts with age (the library, and the
 * `age` command of Debian's package where it is installed: CI requires it with REQUIRE_AGE=1).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Decrypter, generateIdentity, identityToRecipient } from 'age-encryption';
import { describe, expect, it } from 'vitest';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { createLogger } from '../../src/observability/logger.js';
import { backupModel, exportModelForAge, restoreModel } from '../../src/security/backup.js';
import { isEncrypted } from '../../src/security/envelope.js';
import { Keyring } from '../../src/security/keyring.js';
import { MODEL_VERSION } from '../../src/security/model-file.js';
import { failure, ROOT, tempDir } from '../helpers.js';

const IRIS = join(ROOT, 'examples/iris.csv');
const quiet = createLogger({ level: 'silent' });
const hasAge = spawnSync('age', ['--version']).status === 0;

async function saved(dir: string) {
  const c = new NeuromorphicClusterer({
    method: 'esn',
    nClusters: 3,
    seed: 4,
    logger: quiet,
    config: { data: { labelColumn: 'species' } },
  });
  const result = await c.fit(IRIS);
  const model = join(dir, 'iris.model.json');
  await c.save(model);
  return { model, labels: Array.from(result.labels) };
}

describe('model backups', () => {
  it('restore, checked whole, to a model that predicts as the original', async () => {
    const dir = tempDir();
    const keyring = Keyring.open();
    const { model, labels } = await saved(dir);
    const backup = await backupModel(model, dir, keyring, new Date('2026-11-27T12:00:00Z'));
    expect(backup).toMatch(/iris\.model\.json\.2026-11-27T12-00-00-000Z\.ncbackup$/);
    expect(isEncrypted(readFileSync(backup))).toBe(true);
    const to = join(dir, 'restored.model.json');
    const manifest = await restoreModel(backup, to, keyring, true);
    expect(manifest).toMatchObject({ source: model, createdAt: '2026-11-27T12:00:00.000Z' });
    expect(manifest.sha256).toMatch(/^[0-9a-f]{64}$/);
    const restored = await NeuromorphicClusterer.load(to, { logger: quiet });
    expect(Array.from(await restored.predict(IRIS))).toEqual(labels);
  });

  it('restore to a plain model, keyed by the keyring, that predicts as the original', async () => {
    const dir = tempDir();
    const keyring = Keyring.open();
    const { model, labels } = await saved(dir);
    const backup = await backupModel(model, dir, keyring);
    const to = join(dir, 'restored-plain.model.json');
    await restoreModel(backup, to, keyring, false);
    expect(isEncrypted(readFileSync(to))).toBe(false);
    expect(JSON.parse(readFileSync(to, 'utf8')).mac).toMatch(/\S/);
    const restored = await NeuromorphicClusterer.load(to, { logger: quiet });
    expect(Array.from(await restored.predict(IRIS))).toEqual(labels);
  });

  it('refuse a backup with one byte changed, writing nothing', async () => {
    const dir = tempDir();
    const keyring = Keyring.open();
    const { model } = await saved(dir);
    const backup = await backupModel(model, dir, keyring);
    const bytes = readFileSync(backup);
    bytes[bytes.length - 20]! ^= 1;
    writeFileSync(backup, bytes);
    const to = join(dir, 'never.model.json');
    expect((await failure(restoreModel(backup, to, keyring, true))).code).toBe('NEUROCLUSTER_ERR_INTEGRITY');
    expect(() => readFileSync(to)).toThrow();
  });
});

describe('the age export', () => {
  it('decrypts with the matching age identity to the model document', async () => {
    const dir = tempDir();
    const { model } = await saved(dir);
    const identity = await generateIdentity();
    const sealed = await exportModelForAge(model, await identityToRecipient(identity), Keyring.open());
    const d = new Decrypter();
    d.addIdentity(identity);
    const doc = JSON.parse(await d.decrypt(sealed, 'text'));
    expect(doc).toMatchObject({ format: 'neurocluster-model', version: MODEL_VERSION });
    expect((await failure(exportModelForAge(model, 'not-a-recipient', Keyring.open()))).code).toBe(
      'NEUROCLUSTER_ERR_INVALID_ARGUMENT',
    );
  });

  it.skipIf(!hasAge && process.env.REQUIRE_AGE !== '1')('is read by the age command-line tool', async () => {
    expect(hasAge, 'REQUIRE_AGE=1 but the age command is not installed').toBe(true);
    const dir = tempDir();
    const { model } = await saved(dir);
    const keygen = spawnSync('age-keygen', ['-o', join(dir, 'key.txt')], { encoding: 'utf8' });
    expect(keygen.status).toBe(0);
    const recipient = /age1[0-9a-z]+/.exec(readFileSync(join(dir, 'key.txt'), 'utf8'))![0];
    const out = join(dir, 'model.age');
    writeFileSync(out, await exportModelForAge(model, recipient, Keyring.open()));
    const age = spawnSync('age', ['-d', '-i', join(dir, 'key.txt'), out], { encoding: 'utf8' });
    expect(age.stderr).toBe('');
    expect(JSON.parse(age.stdout).format).toBe('neurocluster-model');
  });
});
