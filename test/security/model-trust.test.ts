/**
 * What a model file may and may not decide (issue 18, items 1, 3 and 16):
 * - the security section of the running configuration applies to a loaded model, never the one
 *   stored in the file;
 * - a plain model must be authenticated (a keyed checksum, HMAC-SHA256 from the keyring) or be
 *   explicitly allowed: a plain file with a recomputed SHA-256 put where an encrypted model stood
 *   is refused;
 * - an absurd version number is a version error, not a damaged file.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NeuromorphicClusterer } from '../../src/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { decryptBuffer, isEncrypted } from '../../src/security/envelope.js';
import { Keyring } from '../../src/security/keyring.js';
import { checksumOf, MODEL_FORMAT, MODEL_VERSION } from '../../src/security/model-file.js';
import { failure, ROOT, tempDir } from '../helpers.js';

const quiet = createLogger({ level: 'silent' });
const IRIS = `${ROOT}/examples/iris.csv`;
const dir = tempDir();

async function saved(name: string, encryptModels: boolean, security: Record<string, unknown> = {}) {
  const clusterer = new NeuromorphicClusterer({
    method: 'kmeans',
    nClusters: 3,
    seed: 3,
    logger: quiet,
    config: { data: { labelColumn: 'species' }, security: { encryptModels, ...security } },
  });
  const { labels } = await clusterer.fit(IRIS);
  const path = join(dir, name);
  await clusterer.save(path);
  return { path, labels: Array.from(labels) };
}

/** A plain model document around `body` with a correct (unkeyed) SHA-256, as anyone can write. */
function forged(body: { centroids: number[]; d: number }, extra: Record<string, unknown> = {}): string {
  // Swap the first two centroids: every row of those clusters changes label.
  const c = [...body.centroids];
  const first = c.splice(0, body.d);
  c.splice(body.d, 0, ...first);
  const swapped = { ...body, centroids: c };
  return `${JSON.stringify({ format: MODEL_FORMAT, version: MODEL_VERSION, checksum: checksumOf(swapped), ...extra, body: swapped })}\n`;
}

describe('an unauthenticated plain model', () => {
  it('put where an encrypted model stood (swapped centroids, correct SHA-256) is refused', async () => {
    const { path } = await saved('sealed.model.json', true);
    const bytes = readFileSync(path);
    expect(isEncrypted(bytes)).toBe(true);
    const doc = JSON.parse(decryptBuffer(bytes, Keyring.open()).toString('utf8'));
    writeFileSync(path, forged(doc.body));
    const e = await failure(NeuromorphicClusterer.load(path, { logger: quiet }));
    expect(e.code).toBe('NEUROCLUSTER_ERR_INTEGRITY');
    expect(e.message).toMatch(/not authenticated/);
    expect(e.message).toMatch(/allowUnauthenticatedModels/);
  });

  it('is read only with the explicit opt-in (security.allowUnauthenticatedModels)', async () => {
    const { path, labels } = await saved('legacy.model.json', false);
    const doc = JSON.parse(readFileSync(path, 'utf8'));
    // A file as neurocluster wrote them before keyed checksums: no mac.
    const { mac: _mac, ...legacy } = doc;
    writeFileSync(path, `${JSON.stringify(legacy)}\n`);
    expect((await failure(NeuromorphicClusterer.load(path, { logger: quiet }))).code).toBe(
      'NEUROCLUSTER_ERR_INTEGRITY',
    );
    const loaded = await NeuromorphicClusterer.load(path, {
      logger: quiet,
      security: { allowUnauthenticatedModels: true },
    });
    expect(Array.from(await loaded.predict(IRIS))).toEqual(labels);
  });
});

describe('a plain model written with a keyring', () => {
  it('carries a keyed checksum, and reads back with the default configuration', async () => {
    const { path, labels } = await saved('keyed.model.json', false);
    const doc = JSON.parse(readFileSync(path, 'utf8'));
    expect(doc.mac).toMatch(/^hmac-sha256:[A-Za-z0-9_-]+:[0-9a-f]{64}$/);
    const loaded = await NeuromorphicClusterer.load(path, { logger: quiet });
    expect(Array.from(await loaded.predict(IRIS))).toEqual(labels);
  });

  it('refuses a recomputed SHA-256 under the old keyed checksum, and a keyed checksum of another key', async () => {
    const { path } = await saved('edited.model.json', false);
    const doc = JSON.parse(readFileSync(path, 'utf8'));
    writeFileSync(path, forged(doc.body, { mac: doc.mac }));
    const e = await failure(NeuromorphicClusterer.load(path, { logger: quiet }));
    expect(e.code).toBe('NEUROCLUSTER_ERR_INTEGRITY');
    expect(e.message).toMatch(/keyed checksum/);
    // Even the opt-in does not accept a keyed checksum that does not match.
    expect(
      (
        await failure(
          NeuromorphicClusterer.load(path, { logger: quiet, security: { allowUnauthenticatedModels: true } }),
        )
      ).code,
    ).toBe('NEUROCLUSTER_ERR_INTEGRITY');
    writeFileSync(path, `${JSON.stringify({ ...doc, mac: doc.mac.replace(/:[^:]+:/, ':k-unknown:') })}\n`);
    expect((await failure(NeuromorphicClusterer.load(path, { logger: quiet }))).category).toBe('security');
  });
});

describe('the security section of a loaded model', () => {
  it('is the running configuration, never the one stored in the file', async () => {
    const root = join(dir, 'root');
    mkdirSync(root, { recursive: true });
    // Fitted with no data roots and a plain-model opt-in, both stored in the file.
    const { path } = await saved('wide.model.json', true, { allowUnauthenticatedModels: true });
    const stored = JSON.parse(decryptBuffer(readFileSync(path), Keyring.open()).toString('utf8'));
    expect(stored.body.parameters.security).toMatchObject({
      dataRoots: [],
      allowUnauthenticatedModels: true,
    });
    const loaded = await NeuromorphicClusterer.load(path, { logger: quiet, security: { dataRoots: [root] } });
    expect(loaded.config.security.dataRoots).toEqual([root]);
    expect(loaded.config.security.allowUnauthenticatedModels).toBe(false);
    expect((await failure(loaded.predict(IRIS))).code).toBe('NEUROCLUSTER_ERR_SECURITY_PATH');
    // Nor does a model with roots of its own narrow or widen them: the defaults apply.
    const { path: narrow } = await saved('narrow.model.json', true, { dataRoots: [join(ROOT, 'examples')] });
    const plain = await NeuromorphicClusterer.load(narrow, { logger: quiet });
    expect(plain.config.security.dataRoots).toEqual([]);
  });
});

describe('model file versions', () => {
  it.each([
    ['1e20', 'NEUROCLUSTER_ERR_MODEL_VERSION'],
    ['1e400', 'NEUROCLUSTER_ERR_MODEL_VERSION'],
    ['3', 'NEUROCLUSTER_ERR_MODEL_VERSION'],
    ['0', 'NEUROCLUSTER_ERR_MODEL_VERSION'],
    ['-1', 'NEUROCLUSTER_ERR_MODEL_VERSION'],
    ['1.5', 'NEUROCLUSTER_ERR_MODEL_VERSION'],
    ['"1"', 'NEUROCLUSTER_ERR_MODEL_VERSION'],
    ['null', 'NEUROCLUSTER_ERR_MODEL_VERSION'],
  ])('"version": %s is %s', async (version, code) => {
    const { path } = await saved(`v${version.replace(/\W/g, '_')}.model.json`, false);
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.replace(`"version":${MODEL_VERSION},`, `"version":${version},`));
    const e = await failure(NeuromorphicClusterer.load(path, { logger: quiet }));
    expect(e.code).toBe(code);
    expect(e.exitCode).toBe(2);
  });

  it('a file of version 1 (written before consensus models) still reads', async () => {
    const { path, labels } = await saved('v1.model.json', false);
    const { mac: _mac, ...doc } = JSON.parse(readFileSync(path, 'utf8'));
    // As an engine of version 1 wrote it (its keyed checksum covers the version: left out here).
    writeFileSync(path, `${JSON.stringify({ ...doc, version: 1 })}\n`);
    const loaded = await NeuromorphicClusterer.load(path, {
      logger: quiet,
      security: { allowUnauthenticatedModels: true },
    });
    expect(Array.from(await loaded.predict(IRIS))).toEqual(labels);
  });

  it('a file with no version at all is not a model file', async () => {
    const { path } = await saved('noversion.model.json', false);
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.replace(`"version":${MODEL_VERSION},`, ''));
    expect((await failure(NeuromorphicClusterer.load(path, { logger: quiet }))).code).toBe(
      'NEUROCLUSTER_ERR_MODEL_FILE',
    );
  });
});
