/**
 * Encryption at rest: an envelope scheme on node:crypto AES-256-GCM. Each file has a data key of
 * its own, which encrypts the body in chunks; the data key is wrapped by the keyring's current
 * key-encryption key (KEK), named by its ID. Rotation re-wraps the data key under the new KEK and
 * copies the body's bytes unchanged.
 *
 * Layout:
 *
 *   "NCENC\0\0\1" | u32 n | header (n bytes of JSON: version, file id, chunk size)
 *                 | u32 m | wrap (m bytes of JSON: KEK id, IV, wrapped data key, tag)
 *                 | chunks: u32 length | ciphertext | 16-byte tag, ...
 *
 * Every chunk is authenticated with the header, its index and whether it is the last one as
 * additional data, under a nonce made of its index (each file's data key is used for one file
 * only): changing the header, reordering, dropping, appending or truncating chunks, or changing
 * any byte is detected. The wrap is authenticated by its own GCM tag, with the file id and the
 * KEK id as additional data. Every failure is NEUROCLUSTER_ERR_INTEGRITY, naming what failed.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { engineFilesOf } from '../config/home.js';
import { writeStreamAtomic } from '../core/atomic.js';
import { SecurityError } from '../core/errors.js';
import { type Handle, openToRead, readOnce } from '../core/open.js';
import { Keyring } from './keyring.js';

const MAGIC = Buffer.from('NCENC\0\0\x01', 'latin1');
const TAG = 16;
export const DEFAULT_CHUNK = 64 * 1024;

interface Header {
  readonly v: 1;
  readonly alg: 'AES-256-GCM';
  readonly file: string;
  readonly chunk: number;
}

interface Wrap {
  readonly kek: string;
  readonly iv: string;
  readonly key: string;
  readonly tag: string;
}

const broken = (what: string, cause?: unknown) =>
  new SecurityError(`encrypted file: ${what}`, { integrity: true, ...(cause ? { cause } : {}) });

/** True when the bytes start like an encrypted file. */
export function isEncrypted(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && Buffer.from(bytes.subarray(0, MAGIC.length)).equals(MAGIC);
}

function frame(json: object): Buffer {
  const body = Buffer.from(JSON.stringify(json));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

function nonce(index: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(BigInt(index), 4);
  return n;
}

function chunkAad(header: Buffer, index: number, last: boolean): Buffer {
  const tail = Buffer.alloc(9);
  tail.writeBigUInt64BE(BigInt(index));
  tail[8] = last ? 1 : 0;
  return Buffer.concat([header, tail]);
}

function wrapKey(dataKey: Buffer, fileId: string, kek: { id: string; key: Buffer }): Wrap {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek.key, iv);
  c.setAAD(Buffer.from(`neurocluster-wrap\0${fileId}\0${kek.id}`));
  const key = Buffer.concat([c.update(dataKey), c.final()]);
  return {
    kek: kek.id,
    iv: iv.toString('base64'),
    key: key.toString('base64'),
    tag: c.getAuthTag().toString('base64'),
  };
}

function unwrapKey(wrap: Wrap, fileId: string, keyring: Keyring): Buffer {
  const kek = keyring.key(wrap.kek);
  try {
    const d = createDecipheriv('aes-256-gcm', kek, Buffer.from(wrap.iv, 'base64'));
    d.setAAD(Buffer.from(`neurocluster-wrap\0${fileId}\0${wrap.kek}`));
    d.setAuthTag(Buffer.from(wrap.tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(wrap.key, 'base64')), d.final()]);
  } catch (cause) {
    throw broken(
      `the data key does not unwrap with key ${wrap.kek} (the wrap or the file id was changed)`,
      cause,
    );
  }
}

/** Reads the framed parts at the start of an encrypted file. */
function readPreamble(bytes: Buffer): { header: Header; headerBytes: Buffer; wrap: Wrap; bodyAt: number } {
  if (!isEncrypted(bytes)) throw broken('not a neurocluster encrypted file (bad magic)');
  let at = MAGIC.length;
  const take = (what: string) => {
    if (at + 4 > bytes.length) throw broken(`truncated in the ${what}`);
    const n = bytes.readUInt32BE(at);
    if (n > 1 << 16 || at + 4 + n > bytes.length) throw broken(`the ${what} length is out of range`);
    const part = bytes.subarray(at + 4, at + 4 + n);
    at += 4 + n;
    return part;
  };
  const headerBytes = take('header');
  const wrapBytes = take('key wrap');
  let header: Header;
  let wrap: Wrap;
  try {
    header = JSON.parse(headerBytes.toString('utf8')) as Header;
    wrap = JSON.parse(wrapBytes.toString('utf8')) as Wrap;
  } catch (cause) {
    throw broken('its header is not readable', cause);
  }
  if (header.v !== 1 || header.alg !== 'AES-256-GCM' || !(header.chunk > 0 && header.chunk <= 1 << 24)) {
    throw broken('unknown version, algorithm or chunk size in its header');
  }
  return { header, headerBytes: Buffer.from(headerBytes), wrap, bodyAt: at };
}

/** Encrypts `plain` under the keyring's current key. */
export function encryptBuffer(plain: Uint8Array, keyring: Keyring, chunk = DEFAULT_CHUNK): Buffer {
  const parts: Buffer[] = [];
  const writer = encryptor(keyring, chunk);
  parts.push(writer.preamble);
  const total = Math.max(1, Math.ceil(plain.length / chunk));
  for (let i = 0; i < total; i++) {
    parts.push(writer.chunk(plain.subarray(i * chunk, (i + 1) * chunk), i === total - 1));
  }
  return Buffer.concat(parts);
}

/** Decrypts a whole encrypted buffer; any change to it is NEUROCLUSTER_ERR_INTEGRITY. */
export function decryptBuffer(bytes: Uint8Array, keyring: Keyring): Buffer {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { header, headerBytes, wrap, bodyAt } = readPreamble(buf);
  const dataKey = unwrapKey(wrap, header.file, keyring);
  const out: Buffer[] = [];
  let at = bodyAt;
  let index = 0;
  for (;;) {
    if (at + 4 > buf.length) throw broken(`truncated after chunk ${index}`);
    const n = buf.readUInt32BE(at);
    if (n > header.chunk || at + 4 + n + TAG > buf.length) throw broken(`chunk ${index} has a bad length`);
    const cipher = buf.subarray(at + 4, at + 4 + n);
    const tag = buf.subarray(at + 4 + n, at + 4 + n + TAG);
    at += 4 + n + TAG;
    const last = at === buf.length;
    out.push(openChunk(dataKey, headerBytes, index, last, cipher, tag));
    if (last) return Buffer.concat(out);
    index++;
  }
}

function openChunk(
  key: Buffer,
  header: Buffer,
  index: number,
  last: boolean,
  cipher: Buffer,
  tag: Buffer,
): Buffer {
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce(index));
    d.setAAD(chunkAad(header, index, last));
    d.setAuthTag(tag);
    return Buffer.concat([d.update(cipher), d.final()]);
  } catch (cause) {
    throw broken(
      `chunk ${index} does not authenticate (changed, moved, or the file was cut short or extended)`,
      cause,
    );
  }
}

/** A fresh data key and the writer of one file's preamble and chunks. */
function encryptor(keyring: Keyring, chunk: number) {
  const dataKey = randomBytes(32);
  const header: Header = { v: 1, alg: 'AES-256-GCM', file: randomBytes(16).toString('hex'), chunk };
  const headerFrame = frame(header);
  const headerBytes = headerFrame.subarray(4);
  const preamble = Buffer.concat([
    MAGIC,
    headerFrame,
    frame(wrapKey(dataKey, header.file, keyring.forEncryption())),
  ]);
  let index = 0;
  return {
    preamble,
    chunk(plain: Uint8Array, last: boolean): Buffer {
      const c = createCipheriv('aes-256-gcm', dataKey, nonce(index));
      c.setAAD(chunkAad(headerBytes, index, last));
      const body = Buffer.concat([c.update(plain), c.final()]);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(body.length);
      index++;
      return Buffer.concat([len, body, c.getAuthTag()]);
    },
  };
}

/**
 * Encrypts the file `from` into `to`, streaming chunk by chunk; `to` appears whole or not at all.
 * `from` is a path, or a descriptor the caller opened and checked (and closes itself).
 */
export async function encryptFile(
  from: string | Handle,
  to: string,
  keyring: Keyring,
  chunk = DEFAULT_CHUNK,
): Promise<void> {
  const src = typeof from === 'string' ? await openToRead(from) : from;
  try {
    await writeStreamAtomic(to, engineFilesOf(), async (dst) => {
      const writer = encryptor(keyring, chunk);
      await dst.write(writer.preamble);
      const size = (await src.stat()).size;
      const total = Math.max(1, Math.ceil(size / chunk));
      const buf = Buffer.alloc(chunk);
      for (let i = 0; i < total; i++) {
        const { bytesRead } = await src.read(buf, 0, chunk, i * chunk);
        await dst.write(writer.chunk(buf.subarray(0, bytesRead), i === total - 1));
      }
    });
  } finally {
    if (typeof from === 'string') await src.close();
  }
}

/**
 * Decrypts the file `from` into `to`, streaming chunk by chunk (memory stays at one chunk); `to`
 * appears only once every chunk has authenticated, the last one included.
 */
export async function decryptFile(from: string, to: string, keyring: Keyring): Promise<void> {
  const src = await openToRead(from);
  try {
    const { head, size } = await headOf(src);
    const { header, headerBytes, wrap, bodyAt } = readPreamble(head);
    const dataKey = unwrapKey(wrap, header.file, keyring);
    await writeStreamAtomic(to, engineFilesOf(), async (dst) => {
      const len = Buffer.alloc(4);
      const buf = Buffer.alloc(header.chunk + TAG);
      let at = bodyAt;
      for (let index = 0; ; index++) {
        if (at + 4 > size) throw broken(`truncated after chunk ${index}`);
        await src.read(len, 0, 4, at);
        const n = len.readUInt32BE(0);
        if (n > header.chunk || at + 4 + n + TAG > size) throw broken(`chunk ${index} has a bad length`);
        await src.read(buf, 0, n + TAG, at + 4);
        at += 4 + n + TAG;
        const last = at === size;
        await dst.write(
          openChunk(dataKey, headerBytes, index, last, buf.subarray(0, n), buf.subarray(n, n + TAG)),
        );
        if (last) break;
      }
    });
  } finally {
    await src.close();
  }
}

/**
 * Re-wraps a file's data key under the keyring's current key (a tenant's file: under its tenant's
 * current key), copying the body unchanged; the file is replaced atomically. Returns the KEK ids
 * before and after.
 */
export async function rewrapFile(
  path: string,
  keyring: Keyring,
  /** Runs after the copy, before the check that the file is unchanged (tests make a writer race here). */
  afterCopy?: () => Promise<void>,
): Promise<{ from: string; to: string }> {
  const src = await openToRead(path);
  try {
    const opened = await src.stat();
    const { head, size } = await headOf(src);
    const { from, to, preamble, bodyAt } = rewrappedPreamble(head, keyring);
    if (!preamble) return { from, to };
    await writeStreamAtomic(path, engineFilesOf(), async (dst) => {
      await dst.write(preamble);
      const buf = Buffer.alloc(1 << 20);
      for (let at = bodyAt; at < size; ) {
        const { bytesRead } = await src.read(buf, 0, buf.length, at);
        if (bytesRead === 0) break;
        await dst.write(buf.subarray(0, bytesRead));
        at += bytesRead;
      }
      await afterCopy?.();
      // A writer that replaced or changed the file meanwhile (a model saved again) wins: its bytes
      // stay, rather than this copy of the old ones; the file keeps its key until the next rotation.
      const now = await stat(path).catch(() => undefined);
      if (!now || now.ino !== opened.ino || now.mtimeMs !== opened.mtimeMs || now.size !== opened.size) {
        throw new SecurityError(`${path} changed while it was being re-wrapped: left as it is`);
      }
    });
    return { from, to };
  } finally {
    await src.close();
  }
}

/**
 * The preamble of an encrypted file or buffer (`head`: its first bytes) with its data key wrapped
 * under the current successor of the key that wraps it now; none when that is the key already.
 */
function rewrappedPreamble(
  head: Buffer,
  keyring: Keyring,
): { from: string; to: string; preamble?: Buffer; bodyAt: number } {
  const { header, headerBytes, wrap, bodyAt } = readPreamble(head);
  const current = keyring.successorOf(wrap.kek);
  if (wrap.kek === current.id) return { from: wrap.kek, to: wrap.kek, bodyAt };
  const dataKey = unwrapKey(wrap, header.file, keyring);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(headerBytes.length);
  const preamble = Buffer.concat([MAGIC, len, headerBytes, frame(wrapKey(dataKey, header.file, current))]);
  return { from: wrap.kek, to: current.id, preamble, bodyAt };
}

/**
 * An encrypted buffer re-wrapped as {@link rewrapFile} re-wraps a file (the body copied unchanged):
 * the same bytes when its key is current already.
 */
export function rewrapBuffer(
  bytes: Uint8Array,
  keyring: Keyring,
): { bytes: Buffer; from: string; to: string } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { from, to, preamble, bodyAt } = rewrappedPreamble(buf, keyring);
  return { bytes: preamble ? Buffer.concat([preamble, buf.subarray(bodyAt)]) : buf, from, to };
}

/** The KEK id a file is wrapped with (for listings). */
export function wrappedWith(bytes: Uint8Array): string {
  return readPreamble(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).wrap.kek;
}

/** The KEK id the file at `path` is wrapped with, from its preamble alone. */
export async function fileWrappedWith(path: string): Promise<string> {
  return readPreamble((await headOfFile(path)).head).wrap.kek;
}

/**
 * A file's bytes, decrypted when it is an encrypted file (with the keyring, opened only then), as
 * they are otherwise: the readers of data, labels and model files take either.
 */
export async function readFileDecrypted(
  file: string | Handle,
  keyring: () => Keyring = () => Keyring.open(),
): Promise<Buffer> {
  // A descriptor given is one already opened and checked (src/security/secure-load.ts): read that one.
  const bytes = typeof file === 'string' ? await readOnce(file) : await file.readFile();
  return isEncrypted(bytes) ? decryptBuffer(bytes, keyring()) : bytes;
}

/** The first bytes of an open file, enough for the preamble (two frames of at most 64 KiB). */
async function headOf(handle: Handle): Promise<{ head: Buffer; size: number }> {
  const size = (await handle.stat()).size;
  const head = Buffer.alloc(Math.min(size, 1 << 17));
  await handle.read(head, 0, head.length, 0);
  return { head, size };
}

async function headOfFile(path: string): Promise<{ head: Buffer; size: number }> {
  const handle = await openToRead(path);
  try {
    return await headOf(handle);
  } finally {
    await handle.close();
  }
}
