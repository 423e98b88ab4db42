/**
 * Encryption at rest: round trips (empty, one chunk, many chunks, streamed files), every kind of
 * tampering detected (a byte of the body, of the header, of the key wrap; chunks dropped, moved,
 * appended; truncation), rotation that re-wraps without touching bodies, and the keyring file.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isNeuroclusterError } from '../../src/core/errors.js';
import {
  decryptBuffer,
  decryptFile,
  encryptBuffer,
  encryptFile,
  isEncrypted,
  rewrapFile,
  wrappedWith,
} from '../../src/security/envelope.js';
import { Keyring } from '../../src/security/keyring.js';
import { tempDir } from '../helpers.js';

function ring(): Keyring {
  return Keyring.open({ env: { NEUROCLUSTER_KEYRING: join(tempDir(), 'keyring.json') }, warn: () => {} });
}

function integrity(work: () => unknown): string {
  try {
    work();
  } catch (e) {
    if (isNeuroclusterError(e) && e.code === 'NEUROCLUSTER_ERR_INTEGRITY') return e.message;
    throw e;
  }
  throw new Error('expected NEUROCLUSTER_ERR_INTEGRITY');
}

describe('envelope encryption', () => {
  it('round-trips empty, small and many-chunk bodies', () => {
    const keys = ring();
    for (const size of [0, 1, 100, 4096, 4097, 50_000]) {
      const plain = randomBytes(size);
      const sealed = encryptBuffer(plain, keys, 4096);
      expect(isEncrypted(sealed)).toBe(true);
      expect(sealed.includes(plain.subarray(0, 64)) && size >= 64).toBe(false);
      expect(decryptBuffer(sealed, keys).equals(plain)).toBe(true);
    }
  });

  it('detects a flipped byte anywhere: body, header, key wrap, tags', () => {
    const keys = ring();
    const sealed = encryptBuffer(randomBytes(10_000), keys, 4096);
    // Every 97th byte position, flipped in turn (the magic included: it is refused as not ours).
    for (let at = 0; at < sealed.length; at += 97) {
      const bad = Buffer.from(sealed);
      bad[at]! ^= 0x01;
      expect(() => decryptBuffer(bad, keys), `byte ${at}`).toThrow();
    }
    const headerByte = Buffer.from(sealed);
    headerByte[14]! ^= 0x20; // inside the header JSON
    integrity(() => decryptBuffer(headerByte, keys));
  });

  it('detects chunks dropped, moved, appended, and a truncated file', () => {
    const keys = ring();
    const sealed = encryptBuffer(randomBytes(3 * 4096), keys, 4096);
    const chunkLen = 4 + 4096 + 16;
    const body = sealed.length - 3 * chunkLen;
    const pre = sealed.subarray(0, body);
    const c = [0, 1, 2].map((i) => sealed.subarray(body + i * chunkLen, body + (i + 1) * chunkLen));
    expect(integrity(() => decryptBuffer(Buffer.concat([pre, c[0]!, c[1]!]), keys))).toMatch(/chunk 1/);
    expect(integrity(() => decryptBuffer(Buffer.concat([pre, c[1]!, c[0]!, c[2]!]), keys))).toMatch(
      /chunk 0/,
    );
    integrity(() => decryptBuffer(Buffer.concat([sealed, c[2]!]), keys));
    integrity(() => decryptBuffer(sealed.subarray(0, sealed.length - 5), keys));
    integrity(() => decryptBuffer(sealed.subarray(0, 20), keys));
  });

  it('rotates: new files use the new key, old files re-wrap without re-encrypting their bodies, old keys still read', async () => {
    const dir = tempDir();
    const keys = Keyring.open({ env: { NEUROCLUSTER_KEYRING: join(dir, 'keyring.json') }, warn: () => {} });
    const plain = randomBytes(200_000);
    const src = join(dir, 'plain.bin');
    const enc = join(dir, 'data.enc');
    writeFileSync(src, plain);
    await encryptFile(src, enc, keys, 65_536);
    const before = readFileSync(enc);
    const oldKey = wrappedWith(before);
    const newKey = keys.rotate();
    expect(newKey).not.toBe(oldKey);
    // Old files still decrypt with the old key, until it is retired.
    expect(decryptBuffer(before, keys).equals(plain)).toBe(true);
    expect(await rewrapFile(enc, keys)).toEqual({ from: oldKey, to: newKey });
    const after = readFileSync(enc);
    expect(wrappedWith(after)).toBe(newKey);
    // The body (the last 200 KB and tags) is byte for byte what it was.
    expect(after.subarray(after.length - 150_000).equals(before.subarray(before.length - 150_000))).toBe(
      true,
    );
    keys.retire(oldKey);
    expect(decryptBuffer(after, keys).equals(plain)).toBe(true);
    expect(() => decryptBuffer(before, keys)).toThrow(/retired/);
    expect(() => keys.retire(newKey)).toThrow(/current/);
  });

  it('streams large files both ways, and a damaged one leaves no output behind', async () => {
    const dir = tempDir();
    const keys = ring();
    const plain = randomBytes(5 * 1024 * 1024 + 123);
    writeFileSync(join(dir, 'big.bin'), plain);
    await encryptFile(join(dir, 'big.bin'), join(dir, 'big.enc'), keys);
    await decryptFile(join(dir, 'big.enc'), join(dir, 'big.out'), keys);
    expect(readFileSync(join(dir, 'big.out')).equals(plain)).toBe(true);
    const sealed = readFileSync(join(dir, 'big.enc'));
    writeFileSync(join(dir, 'cut.enc'), sealed.subarray(0, sealed.length - 1000));
    await expect(decryptFile(join(dir, 'cut.enc'), join(dir, 'cut.out'), keys)).rejects.toMatchObject({
      code: 'NEUROCLUSTER_ERR_INTEGRITY',
    });
    expect(existsSync(join(dir, 'cut.out'))).toBe(false);
  });

  it('leaves a file that a writer replaced during its re-wrap as the writer left it', async () => {
    const keys = ring();
    const dir = tempDir();
    const path = join(dir, 'model.bin');
    writeFileSync(path, encryptBuffer(Buffer.from('the model as it was'), keys));
    keys.rotate();
    const saveAgain = async () => {
      writeFileSync(`${path}.new`, encryptBuffer(Buffer.from('the model saved again'), keys));
      renameSync(`${path}.new`, path);
    };
    await expect(rewrapFile(path, keys, saveAgain)).rejects.toMatchObject({
      code: 'NEUROCLUSTER_ERR_SECURITY',
      message: expect.stringContaining('changed while it was being re-wrapped'),
    });
    expect(decryptBuffer(readFileSync(path), keys).toString()).toBe('the model saved again');
    expect(readdirSync(dir)).toEqual(['model.bin']);
  });

  it('keeps the keyring at mode 0600, warns once when it first encrypts, and refuses a foreign one', () => {
    const dir = tempDir();
    const file = join(dir, 'keys', 'keyring.json');
    const warnings: string[] = [];
    const first = Keyring.open({ env: { NEUROCLUSTER_KEYRING: file }, warn: (m) => warnings.push(m) });
    const second = Keyring.open({ env: { NEUROCLUSTER_KEYRING: file }, warn: (m) => warnings.push(m) });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(first.list()).toEqual([expect.objectContaining({ current: true })]);
    // Made (as the audit log's signature makes it) but nothing encrypted yet: no warning.
    expect(warnings).toEqual([]);
    encryptBuffer(Buffer.from('a'), second);
    encryptBuffer(Buffer.from('b'), first);
    encryptBuffer(Buffer.from('c'), second);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/new keyring at .*back it up/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // A keyring written before the warning was deferred (no `announced`) warned when it was made.
    const legacy = join(dir, 'legacy.json');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    delete doc.announced;
    writeFileSync(legacy, JSON.stringify(doc), { mode: 0o600 });
    const old = Keyring.open({ env: { NEUROCLUSTER_KEYRING: legacy }, warn: (m) => warnings.push(m) });
    old.rotate();
    encryptBuffer(Buffer.from('d'), old);
    expect(warnings).toHaveLength(1);
    writeFileSync(file, '{"format":"something-else"}');
    expect(() => Keyring.open({ env: { NEUROCLUSTER_KEYRING: file } })).toThrow(/not a neurocluster keyring/);
  });

  it('keeps the keys of two holders of one keyring file that both rotate, and reads keys the other added', () => {
    const file = join(tempDir(), 'keyring.json');
    const a = Keyring.open({ env: { NEUROCLUSTER_KEYRING: file }, warn: () => {} });
    const b = Keyring.open({ env: { NEUROCLUSTER_KEYRING: file }, warn: () => {} });
    const first = a.current().id;
    const fromA = a.rotate();
    const fromB = b.rotate();
    const onDisk = Keyring.open({ env: { NEUROCLUSTER_KEYRING: file } });
    expect(onDisk.list().map((k) => k.id)).toEqual([first, fromA, fromB]);
    expect(onDisk.current().id).toBe(fromB);
    // a read the file before b's key existed: a file wrapped with it still opens through a.
    const sealed = encryptBuffer(Buffer.from('written after b rotated'), b);
    expect(decryptBuffer(sealed, a).toString()).toBe('written after b rotated');
    // Retiring works on the file as it is, and refuses a key twice.
    a.retire(fromA);
    expect(() => b.retire(fromA)).toThrow(/was retired on/);
    expect(existsSync(`${file}.lock`)).toBe(false);
  });

  it('reads a keyring from the environment, read-only', () => {
    const keys = ring();
    const doc = readFileSync(keys.file!, 'utf8');
    const fromEnv = Keyring.open({ env: { NEUROCLUSTER_KEYRING_JSON: doc } });
    expect(decryptBuffer(encryptBuffer(Buffer.from('secret'), keys), fromEnv).toString()).toBe('secret');
    expect(() => fromEnv.rotate()).toThrow(/NEUROCLUSTER_KEYRING_JSON/);
  });
  it('derives a key for a purpose the same way every time (HKDF-SHA256), and refuses one of a retired key', async () => {
    const keys = ring();
    const { hkdfSync } = await import('node:crypto');
    const first = keys.current().id;
    const expected = Buffer.from(
      hkdfSync('sha256', keys.key(first), Buffer.alloc(0), 'neurocluster:audit', 32),
    );
    const derived = keys.derived(first, 'audit');
    expect(derived.equals(expected)).toBe(true);
    // Another purpose is another key; what a caller does with its copy is not the next caller's.
    expect(keys.derived(first, 'model-file').equals(expected)).toBe(false);
    derived.fill(0);
    expect(keys.derived(first, 'audit').equals(expected)).toBe(true);
    // Derived before it was retired, it is refused after, but for checking old signatures.
    keys.rotate();
    keys.retire(first);
    expect(() => keys.derived(first, 'audit')).toThrow(/retired/);
    expect(keys.derived(first, 'audit', true).equals(expected)).toBe(true);
  });
  it('wraps a tenant’s files with its own key, re-wraps them with its newest, and cannot read them once its keys are destroyed', async () => {
    const dir = tempDir();
    const keys = ring();
    const serviceKey = keys.current().id;
    const a = keys.rotateTenant('team-a');
    expect(keys.tenantKeyId('team-a')).toBe(a);
    expect(keys.tenantKeyId('team-b')).toBeUndefined();
    const plain = randomBytes(10_000);
    const theirs = encryptBuffer(plain, keys.forTenant('team-a'));
    expect(wrappedWith(theirs)).toBe(a);
    // A tenant without a key of its own (default) uses the current key; signatures stay with it.
    expect(wrappedWith(encryptBuffer(plain, keys.forTenant('default')))).toBe(serviceKey);
    expect(keys.forTenant('team-a').current().id).toBe(serviceKey);
    // Any key decrypts through any view.
    expect(decryptBuffer(theirs, keys).equals(plain)).toBe(true);

    // A rotation of the service key leaves the tenant's file with its tenant's key.
    const file = join(dir, 'result.enc');
    writeFileSync(file, theirs);
    keys.rotate();
    expect(await rewrapFile(file, keys)).toEqual({ from: a, to: a });
    // Its own rotation re-wraps it; the old key is no longer its current one.
    const a2 = keys.rotateTenant('team-a');
    expect(await rewrapFile(file, keys)).toEqual({ from: a, to: a2 });
    expect(() => keys.retire(a2)).toThrow(/tenant team-a's current key: rotate it first/);
    expect(keys.list().filter((k) => k.tenant === 'team-a')).toEqual([
      expect.objectContaining({ id: a, current: false }),
      expect.objectContaining({ id: a2, current: true }),
    ]);

    // Destroyed: gone from the file (another process reading it sees none), copies unreadable.
    const copy = readFileSync(file);
    expect(keys.destroyTenant('team-a').sort()).toEqual([a, a2].sort());
    const fresh = Keyring.open({ env: { NEUROCLUSTER_KEYRING: keys.file! }, warn: () => {} });
    expect(fresh.list().some((k) => k.tenant === 'team-a')).toBe(false);
    expect(readFileSync(keys.file!, 'utf8')).not.toContain(a2);
    expect(() => decryptBuffer(copy, fresh)).toThrow(/is not in the keyring/);
    expect(() => decryptBuffer(copy, keys)).toThrow(/is not in the keyring/);
  });

  it('shares what it read with its tenants’ views: once announced, a view wraps without locking the keyring again', () => {
    const warnings: string[] = [];
    const keys = Keyring.open({
      env: { NEUROCLUSTER_KEYRING: join(tempDir(), 'keyring.json') },
      warn: (m) => warnings.push(m),
    });
    // The first encryption through a view, as the service's first upload is.
    encryptBuffer(Buffer.from('x'), keys.forTenant('default'));
    expect(warnings).toHaveLength(1);
    // Another process holding the keyring's lock does not hold up a view made after (each request
    // of the service makes one): what its keyring learnt, the view knows.
    writeFileSync(`${keys.file}.lock`, '');
    const started = Date.now();
    for (const tenant of ['a', 'b', 'c']) encryptBuffer(Buffer.from('x'), keys.forTenant(tenant));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(warnings).toHaveLength(1);
  });
});
