/**
 * The record of encrypted files: every file the engine encrypts is recorded (by its real path)
 * before it is written, owner-only; rotation re-wraps recorded files wherever they are, forgets
 * those gone or no longer encrypted, names those another keyring wrote; a key a recorded file
 * still needs is not retired; readers take encrypted and plain files alike. Records kept in the
 * store (a service job's rows until it runs) are re-wrapped and guard their key the same way.
 */
import {
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  assertKeyUnused,
  EncryptedFileRegistry,
  encryptFileTracked,
  rewrapAll,
  writeEncryptedBytes,
  writeEncryptedFile,
} from '../../src/security/encrypted-files.js';
import {
  decryptBuffer,
  encryptBuffer,
  fileWrappedWith,
  readFileDecrypted,
  wrappedWith,
} from '../../src/security/envelope.js';
import { Keyring } from '../../src/security/keyring.js';
import { openStore } from '../../src/store/db.js';
import { tempDir } from '../helpers.js';

function setting() {
  const dir = realpathSync(tempDir());
  const keyring = Keyring.open({ env: { NEUROCLUSTER_KEYRING: join(dir, 'keyring.json') }, warn: () => {} });
  const registry = new EncryptedFileRegistry(openStore(join(dir, 'store.db')));
  return { dir, keyring, registry };
}

describe('the record of encrypted files', () => {
  it('records a file by its real path before writing it, owner-only, readable again', async () => {
    const { dir, keyring, registry } = setting();
    mkdirSync(join(dir, 'real'));
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
    const size = await writeEncryptedFile(join(dir, 'link', 'result.json'), '{"k":3}\n', keyring, registry);
    const path = join(dir, 'real', 'result.json');
    expect(statSync(path).size).toBe(size);
    expect(statSync(path).mode & 0o077).toBe(0);
    expect(registry.list()).toEqual([
      { path, keyId: keyring.current().id, writtenAt: expect.stringMatching(/^\d{4}-/) },
    ]);
    expect(decryptBuffer(readFileSync(path), keyring).toString()).toBe('{"k":3}\n');
    // Readers take either kind.
    expect((await readFileDecrypted(path, () => keyring)).toString()).toBe('{"k":3}\n');
    writeFileSync(join(dir, 'plain.txt'), 'plain');
    expect((await readFileDecrypted(join(dir, 'plain.txt'), () => keyring)).toString()).toBe('plain');
  });

  it('rotation re-wraps recorded files wherever they are, forgets the gone and the plain, names the foreign', async () => {
    const { dir, keyring, registry } = setting();
    const kept = join(dir, 'a', 'model.json');
    const gone = join(dir, 'b', 'gone.json');
    const overwritten = join(dir, 'c', 'now-plain.csv');
    for (const p of [kept, gone, overwritten]) {
      mkdirSync(join(p, '..'), { recursive: true });
      await writeEncryptedFile(p, `body of ${p}`, keyring, registry);
    }
    rmSync(gone);
    writeFileSync(overwritten, 'label\n0\n');
    // A file from another keyring, found by a directory search (not recorded).
    const other = Keyring.open({ env: { NEUROCLUSTER_KEYRING: join(dir, 'other.json') }, warn: () => {} });
    const foreign = join(dir, 'foreign.bin');
    await writeEncryptedFile(
      foreign,
      'not ours',
      other,
      new EncryptedFileRegistry(openStore(join(dir, 'o.db'))),
    );
    // A file encrypted before the record existed, found by a directory search.
    const older = join(dir, 'older.bin');
    writeFileSync(older, readFileSync(kept));

    const from = keyring.current().id;
    const to = keyring.rotate();
    const report = await rewrapAll(keyring, [foreign, older], registry);
    expect(report.rewrapped.sort()).toEqual([kept, older].sort());
    expect(report.forgotten.sort()).toEqual([gone, overwritten].sort());
    expect(report.skipped).toEqual([{ file: foreign, reason: expect.stringMatching(/key/) }]);
    expect(await fileWrappedWith(kept)).toBe(to);
    expect(registry.list().map((f) => [f.path, f.keyId])).toEqual(
      [
        [kept, to],
        [older, to],
      ].sort(),
    );
    // The body is unchanged and still reads; the old key is no longer needed.
    expect(decryptBuffer(readFileSync(kept), keyring).toString()).toBe(`body of ${kept}`);
    await expect(assertKeyUnused(from, registry)).resolves.toBeUndefined();
  });

  it('a failed write is a read or output error naming the file, and leaves nothing recorded', async () => {
    const { dir, keyring, registry } = setting();
    await expect(
      encryptFileTracked(join(dir, 'missing.csv'), join(dir, 'x.enc'), keyring, registry),
    ).rejects.toMatchObject({
      code: 'NEUROCLUSTER_ERR_DATA_READ',
      location: { file: join(dir, 'missing.csv') },
    });
    await expect(encryptFileTracked(dir, join(dir, 'x.enc'), keyring, registry)).rejects.toMatchObject({
      code: 'NEUROCLUSTER_ERR_DATA_READ',
      message: expect.stringContaining('not a regular file'),
    });
    writeFileSync(join(dir, 'data.csv'), 'x\n1\n');
    const nowhere = join(dir, 'no-such-dir', 'x.enc');
    await expect(encryptFileTracked(join(dir, 'data.csv'), nowhere, keyring, registry)).rejects.toMatchObject(
      {
        code: 'NEUROCLUSTER_ERR_IO',
        location: { file: nowhere },
      },
    );
    await expect(writeEncryptedFile(nowhere, 'x', keyring, registry)).rejects.toMatchObject({
      code: 'NEUROCLUSTER_ERR_IO',
    });
    expect(registry.list()).toEqual([]);
  });

  it('keeps a file whose directory is out of reach (an unmounted drive) in the record, guarding its key', async () => {
    const { dir, keyring, registry } = setting();
    const drive = join(dir, 'drive');
    const path = join(drive, 'results', 'result.json');
    mkdirSync(join(drive, 'results'), { recursive: true });
    await writeEncryptedFile(path, '{"k":3}', keyring, registry);
    renameSync(drive, join(dir, 'drive-unmounted'));
    const old = keyring.current().id;
    keyring.rotate();
    const away = await rewrapAll(keyring, [], registry);
    expect(away).toMatchObject({ rewrapped: [], forgotten: [], unreachable: [path] });
    await expect(assertKeyUnused(old, registry)).rejects.toThrow(`${path} (out of reach now)`);
    // Back again: the next rotation reaches it.
    renameSync(join(dir, 'drive-unmounted'), drive);
    expect((await rewrapAll(keyring, [], registry)).rewrapped).toEqual([path]);
    await expect(assertKeyUnused(old, registry)).resolves.toBeUndefined();
  });

  it('refuses to retire a key a recorded file still needs, naming the file', async () => {
    const { dir, keyring, registry } = setting();
    const path = join(dir, 'labels.csv.enc');
    writeFileSync(join(dir, 'labels.csv'), 'label\n1\n');
    await encryptFileTracked(join(dir, 'labels.csv'), path, keyring, registry);
    const old = keyring.current().id;
    keyring.rotate();
    await expect(assertKeyUnused(old, registry)).rejects.toMatchObject({
      code: 'NEUROCLUSTER_ERR_INVALID_ARGUMENT',
      message: expect.stringContaining(`key ${old} still wraps 1 file(s) or record(s) (${path})`),
    });
    await rewrapAll(keyring, [], registry);
    await expect(assertKeyUnused(old, registry)).resolves.toBeUndefined();
  });

  it('re-wraps records kept in the store with their bodies unchanged, and refuses to retire a key one still needs', async () => {
    const { keyring, registry } = setting();
    const sealed = encryptBuffer(Buffer.from('[[1,2],[3,4]]'), keyring);
    registry.keep('job-input:a', sealed);
    const old = keyring.current().id;
    expect(registry.records()).toEqual([{ id: 'job-input:a', keyId: old }]);
    const to = keyring.rotate();
    await expect(assertKeyUnused(old, registry)).rejects.toThrow(
      `key ${old} still wraps 1 file(s) or record(s) (record job-input:a (kept in the store))`,
    );
    const report = await rewrapAll(keyring, [], registry);
    expect(report.records).toEqual(['job-input:a']);
    const kept = registry.record('job-input:a')!;
    expect(wrappedWith(kept)).toBe(to);
    expect(registry.records()).toEqual([{ id: 'job-input:a', keyId: to }]);
    // Only the key's wrap changed: the chunks are the same bytes, and they read as before.
    expect(kept.subarray(-30).equals(sealed.subarray(-30))).toBe(true);
    expect(decryptBuffer(kept, keyring).toString()).toBe('[[1,2],[3,4]]');
    await expect(assertKeyUnused(old, registry)).resolves.toBeUndefined();
    // A second rotation with nothing new to wrap leaves it as it is.
    expect((await rewrapAll(keyring, [], registry)).records).toEqual([]);
    registry.drop('job-input:a');
    expect(registry.record('job-input:a')).toBeUndefined();
  });

  it('writes a kept record as a file in a directory it makes, recorded with the key that wraps it', async () => {
    const { dir, keyring, registry } = setting();
    // Sealed before a rotation (a job accepted, then the keys rotated before it ran).
    const sealed = encryptBuffer(Buffer.from('x\n1\n'), keyring);
    keyring.rotate();
    const path = join(dir, 'jobs', 'j1', 'input.json');
    await writeEncryptedBytes(path, sealed, registry);
    expect(statSync(join(dir, 'jobs', 'j1')).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path).equals(sealed)).toBe(true);
    expect(registry.list().map((f) => [f.path, f.keyId])).toEqual([[path, wrappedWith(sealed)]]);
    expect(wrappedWith(sealed)).not.toBe(keyring.current().id);
  });
});
