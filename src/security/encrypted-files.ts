/**
 * The encrypted files the engine wrote, wherever they live: each one's path is recorded in the
 * store (`encrypted_files`) before its bytes are written, so `keys rotate` re-wraps all of them
 * (not only those under the directories it is told to search), and `keys retire` refuses a key
 * that a file still needs instead of making that file unreadable. Small encrypted records kept in
 * the store itself (`encrypted_records`: a service's job input until it runs) are re-wrapped and
 * counted the same way.
 */
import { mkdir, open, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { engineFilesOf } from '../config/home.js';
import { writeFileAtomic } from '../core/atomic.js';
import { isNeuroclusterError, UsageError } from '../core/errors.js';
import type { Handle } from '../core/open.js';
import { type Db, openStore, statement } from '../store/db.js';
import {
  encryptBuffer,
  encryptFile,
  fileWrappedWith,
  isEncrypted,
  rewrapBuffer,
  rewrapFile,
  wrappedWith,
} from './envelope.js';
import type { Keyring } from './keyring.js';

export interface TrackedFile {
  readonly path: string;
  /** The key it was wrapped with when last written or re-wrapped here. */
  readonly keyId: string;
  readonly writtenAt: string;
}

/** The store's list of encrypted files. */
export class EncryptedFileRegistry {
  constructor(private readonly db: Db = openStore()) {}

  track(path: string, keyId: string, at: Date = new Date()): void {
    statement(
      this.db,
      `INSERT INTO encrypted_files (path, key_id, written_at) VALUES (?, ?, ?)
         ON CONFLICT(path) DO UPDATE SET key_id = excluded.key_id, written_at = excluded.written_at`,
    ).run(path, keyId, at.toISOString());
  }

  forget(path: string): void {
    statement(this.db, 'DELETE FROM encrypted_files WHERE path = ?').run(path);
  }

  list(): TrackedFile[] {
    return statement(
      this.db,
      'SELECT path, key_id AS keyId, written_at AS writtenAt FROM encrypted_files ORDER BY path',
    ).all() as TrackedFile[];
  }

  /**
   * Keeps encrypted `bytes` in the store under `id` (replacing what was kept there), recorded with
   * the key that wraps them. Within the caller's transaction when there is one.
   */
  keep(id: string, bytes: Uint8Array, at: Date = new Date()): void {
    statement(
      this.db,
      `INSERT INTO encrypted_records (id, key_id, data, written_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET key_id = excluded.key_id, data = excluded.data, written_at = excluded.written_at`,
    ).run(id, wrappedWith(bytes), bytes, at.toISOString());
  }

  /** The encrypted bytes kept under `id`, if any. */
  record(id: string): Buffer | undefined {
    return (
      statement(this.db, 'SELECT data FROM encrypted_records WHERE id = ?').get(id) as
        | { data: Buffer }
        | undefined
    )?.data;
  }

  /** Drops what was kept under `id` (nothing when nothing was). */
  drop(id: string): void {
    statement(this.db, 'DELETE FROM encrypted_records WHERE id = ?').run(id);
  }

  /** The records kept, without their bytes. */
  records(): { id: string; keyId: string }[] {
    return statement(this.db, 'SELECT id, key_id AS keyId FROM encrypted_records ORDER BY id').all() as {
      id: string;
      keyId: string;
    }[];
  }

  /**
   * Re-wraps the record `id` under its key's current successor, in one transaction (a writer
   * between the read and the write cannot be overwritten); the key ids before and after, none when
   * it is gone.
   */
  rewrap(id: string, keyring: Keyring): { from: string; to: string } | undefined {
    return this.db.transaction(() => {
      const kept = this.record(id);
      if (!kept) return undefined;
      const { bytes, from, to } = rewrapBuffer(kept, keyring);
      if (from !== to) this.keep(id, bytes);
      return { from, to };
    })();
  }
}

/** An absolute path with its directory's symbolic links resolved (the file may not exist yet). */
export async function canonicalPath(path: string): Promise<string> {
  const full = resolve(path);
  try {
    return join(await realpath(dirname(full)), basename(full));
  } catch {
    return full;
  }
}

/**
 * Writes `plain` encrypted under the keyring's current key, atomically and readable by its owner
 * only, and records it for rotation first (so no encrypted file goes unrecorded). Returns its size.
 */
export async function writeEncryptedFile(
  path: string,
  plain: string | Uint8Array,
  keyring: Keyring,
  registry: EncryptedFileRegistry = new EncryptedFileRegistry(),
): Promise<number> {
  const bytes = encryptBuffer(typeof plain === 'string' ? Buffer.from(plain) : plain, keyring);
  await writeTracked(path, bytes, registry);
  return bytes.length;
}

/**
 * Writes bytes encrypted already (a record kept in the store) as the file `path`, its directory
 * made owner-only when missing, atomically, recorded for rotation first with the key that wraps
 * them.
 */
export async function writeEncryptedBytes(
  path: string,
  bytes: Uint8Array,
  registry: EncryptedFileRegistry = new EncryptedFileRegistry(),
): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeTracked(path, bytes, registry);
}

/** Encrypted `bytes` written to `path` atomically, owner-only, recorded first with the key that wraps them. */
async function writeTracked(path: string, bytes: Uint8Array, registry: EncryptedFileRegistry): Promise<void> {
  await tracked(path, wrappedWith(bytes), registry, () =>
    writeFileAtomic(path, bytes, { engine: engineFilesOf(), mode: 0o600 }),
  );
}

/**
 * Records `path` before `write` makes it, so an encrypted file never goes unrecorded, even when the
 * process dies mid-way; a write that fails and leaves no encrypted file there is forgotten again.
 */
async function tracked(
  path: string,
  keyId: string,
  registry: EncryptedFileRegistry,
  write: () => Promise<void>,
): Promise<void> {
  const canonical = await canonicalPath(path);
  registry.track(canonical, keyId);
  try {
    await write();
  } catch (error) {
    if (!(await isEncryptedFile(canonical))) registry.forget(canonical);
    throw error;
  }
}

/** Encrypts the file `from` into `to` (streaming, owner-only), recorded for rotation first. */
export async function encryptFileTracked(
  from: string | Handle,
  to: string,
  keyring: Keyring,
  registry: EncryptedFileRegistry = new EncryptedFileRegistry(),
): Promise<void> {
  await tracked(to, keyring.encryptionKey().id, registry, () => encryptFile(from, to, keyring));
}

/** Whether the file at `path` exists and starts like an encrypted file (eight bytes are read). */
export async function isEncryptedFile(path: string): Promise<boolean> {
  // Judged by stat before opening: opening a FIFO to read would wait for a writer.
  if (!(await stat(path).catch(() => undefined))?.isFile()) return false;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch {
    return false;
  }
  try {
    const head = Buffer.alloc(8);
    await handle.read(head, 0, 8, 0);
    return isEncrypted(head);
  } finally {
    await handle.close();
  }
}

export interface RewrapReport {
  /** Files now wrapped with the current key that were not before. */
  readonly rewrapped: string[];
  /** Files this keyring cannot open (another keyring's, or damaged): left as they are. */
  readonly skipped: { file: string; reason: string }[];
  /** Recorded files that were deleted or overwritten in plain: dropped from the record. */
  readonly forgotten: string[];
  /**
   * Recorded files whose directory is not there now (an unmounted drive, a moved folder): kept in
   * the record with their key, which `keys retire` then refuses, until they are back.
   */
  readonly unreachable: string[];
  /** Records kept in the store now wrapped with the current key that were not before. */
  readonly records: string[];
}

/** Where a recorded file stands: encrypted, plain, deleted (its directory is there) or out of reach. */
async function presence(path: string): Promise<'encrypted' | 'plain' | 'deleted' | 'unreachable'> {
  if (await isEncryptedFile(path)) return 'encrypted';
  if (await stat(path).catch(() => undefined)) return 'plain';
  return (await stat(dirname(path)).catch(() => undefined))?.isDirectory() ? 'deleted' : 'unreachable';
}

/**
 * Re-wraps every recorded encrypted file and every `extra` one under the keyring's current key
 * (the bodies are copied unchanged), and records the extra ones from then on.
 */
export async function rewrapAll(
  keyring: Keyring,
  extra: readonly string[] = [],
  registry: EncryptedFileRegistry = new EncryptedFileRegistry(),
): Promise<RewrapReport> {
  const report: RewrapReport = { rewrapped: [], skipped: [], forgotten: [], unreachable: [], records: [] };
  const recorded = new Set(registry.list().map((f) => f.path));
  const files = new Set(recorded);
  for (const file of extra) files.add(await canonicalPath(file));
  for (const file of files) {
    const state = await presence(file);
    if (state === 'unreachable' && recorded.has(file)) report.unreachable.push(file);
    if (state !== 'encrypted') {
      if ((state === 'plain' || state === 'deleted') && recorded.has(file)) {
        registry.forget(file);
        report.forgotten.push(file);
      }
      continue;
    }
    try {
      const { from, to } = await rewrapFile(file, keyring);
      if (from !== to) report.rewrapped.push(file);
      registry.track(file, to);
    } catch (error) {
      if (!isNeuroclusterError(error) || error.category !== 'security') throw error;
      report.skipped.push({ file, reason: error.message });
    }
  }
  for (const { id } of registry.records()) {
    try {
      const done = registry.rewrap(id, keyring);
      if (done && done.from !== done.to) report.records.push(id);
    } catch (error) {
      if (!isNeuroclusterError(error) || error.category !== 'security') throw error;
      report.skipped.push({ file: `record ${id}`, reason: error.message });
    }
  }
  return report;
}

/**
 * Refuses to retire `keyId` while a recorded file is still wrapped with it (its preamble says so),
 * or was recorded with it and is out of reach now, or a record kept in the store is wrapped with
 * it: retiring it would make that file or record unreadable.
 * `keys rotate` first re-wraps them.
 */
export async function assertKeyUnused(
  keyId: string,
  registry: EncryptedFileRegistry = new EncryptedFileRegistry(),
): Promise<void> {
  const needing: string[] = [];
  for (const { path, keyId: recordedWith } of registry.list()) {
    const state = await presence(path);
    if (state === 'unreachable' && recordedWith === keyId) needing.push(`${path} (out of reach now)`);
    if (state !== 'encrypted') continue;
    try {
      if ((await fileWrappedWith(path)) === keyId) needing.push(path);
    } catch {
      // a damaged file needs no key
    }
  }
  for (const record of registry.records())
    if (record.keyId === keyId) needing.push(`record ${record.id} (kept in the store)`);
  if (needing.length > 0) {
    const shown = needing.slice(0, 3).join(', ');
    throw new UsageError(
      `key ${keyId} still wraps ${needing.length} file(s) or record(s) (${shown}${needing.length > 3 ? ', ...' : ''}): ` +
        'run `neurocluster keys rotate` first to re-wrap them, or pass --force to retire it and lose them',
    );
  }
}
