/**
 * Model backups and exports.
 *
 * - A backup (`<name>.<time>.ncbackup`) holds a manifest (what was backed up, when, the SHA-256 of
 *   the model document) and the model document, encrypted with the keyring (envelope.ts), so a
 *   backup is as protected as the model and any change to it is detected.
 * - Restoring decrypts, checks the manifest's hash and the model's own checksum, and only then
 *   writes the model file (atomically, encrypted as `security.encryptModels` says).
 * - An export is the model document encrypted to an `age` recipient (age-encryption, the reference
 *   TypeScript implementation of age v1), readable with `age -d -i key.txt` by whoever holds the
 *   matching identity, without neurocluster or its keyring.
 */
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { SecurityError, UsageError } from '../core/errors.js';
import { readOnce } from '../core/open.js';
import { writeEncryptedFile } from './encrypted-files.js';
import { decryptBuffer } from './envelope.js';
import type { Keyring } from './keyring.js';
import {
  checksumOf,
  MODEL_FORMAT,
  MODEL_VERSION,
  parseModelText,
  readModelFile,
  writeModelFile,
} from './model-file.js';

interface BackupDocument {
  readonly format: 'neurocluster-backup';
  readonly version: 1;
  readonly manifest: { readonly source: string; readonly createdAt: string; readonly sha256: string };
  readonly model: unknown;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The model document of a model file (decrypted and verified). */
async function modelDocument(path: string, keyring: Keyring): Promise<string> {
  const body = await readModelFile(path, () => keyring);
  // The document exactly as writeModelFile writes it, plain.
  return JSON.stringify({ format: MODEL_FORMAT, version: MODEL_VERSION, checksum: checksumOf(body), body });
}

/** Backs the model file up into `dir`; returns the backup's path. */
export async function backupModel(
  model: string,
  dir: string,
  keyring: Keyring,
  now = new Date(),
): Promise<string> {
  const doc = await modelDocument(model, keyring);
  const backup: BackupDocument = {
    format: 'neurocluster-backup',
    version: 1,
    manifest: { source: model, createdAt: now.toISOString(), sha256: sha256(doc) },
    model: JSON.parse(doc),
  };
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const path = join(dir, `${basename(model)}.${stamp}.ncbackup`);
  await writeEncryptedFile(path, JSON.stringify(backup), keyring);
  return path;
}

/**
 * Restores a backup to `to` after checking it whole: the encryption (any changed byte), the
 * manifest's hash of the model document, and the model's own checksum. Returns the manifest.
 */
export async function restoreModel(
  backupFile: string,
  to: string,
  keyring: Keyring,
  encrypt: boolean,
): Promise<BackupDocument['manifest']> {
  // Opened once, non-blocking: a FIFO or a device is refused, never waited on.
  const bytes = await readOnce(backupFile);
  const plain = decryptBuffer(bytes, keyring).toString('utf8');
  let backup: BackupDocument;
  try {
    backup = JSON.parse(plain) as BackupDocument;
  } catch (cause) {
    throw new SecurityError(`${backupFile} is not a neurocluster backup`, { integrity: true, cause });
  }
  if (backup.format !== 'neurocluster-backup' || backup.version !== 1) {
    throw new UsageError(`${backupFile} is not a neurocluster backup (version 1)`);
  }
  const doc = JSON.stringify(backup.model);
  if (sha256(doc) !== backup.manifest.sha256) {
    throw new SecurityError(`${backupFile}: the model does not match the manifest's hash`, {
      integrity: true,
    });
  }
  // The model's own checks (format, version, checksum, consistency), in memory.
  const body = parseModelText(doc, backupFile);
  // Encrypted or not, the restored file is authenticated by the keyring, as a fitted model's is.
  await writeModelFile(to, body, keyring, { encrypt });
  return backup.manifest;
}

/**
 * Imports a model exported for age (`exportModelForAge`, or `age -r` over a model document) with
 * the matching identity (an `AGE-SECRET-KEY-1...` line, as age-keygen writes it): decrypted, its
 * format, version, checksum and consistency checked, then written to `to` authenticated by this
 * keyring (encrypted as `security.encryptModels` says). Returns the model's method.
 */
export async function importModelFromAge(
  file: string,
  identityFile: string,
  to: string,
  keyring: Keyring,
  encrypt: boolean,
): Promise<void> {
  const identity = (await readOnce(identityFile))
    .toString('utf8')
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith('AGE-SECRET-KEY-1'));
  if (!identity) throw new UsageError(`${identityFile} holds no age identity (an AGE-SECRET-KEY-1... line)`);
  // Loaded here: age (and its curves) costs every other command 70 ms of start-up.
  const { Decrypter } = await import('age-encryption');
  const d = new Decrypter();
  d.addIdentity(identity);
  let doc: string;
  try {
    doc = await d.decrypt(await readOnce(file), 'text');
  } catch (cause) {
    throw new SecurityError(`${file} does not decrypt with the identity in ${identityFile}`, {
      integrity: true,
      cause,
    });
  }
  const body = parseModelText(doc, file);
  await writeModelFile(to, body, keyring, { encrypt });
}

/** The model document encrypted to an age recipient (`age1...`), in age's binary format. */
export async function exportModelForAge(
  model: string,
  recipient: string,
  keyring: Keyring,
): Promise<Uint8Array> {
  if (!/^age1[0-9a-z]+$/.test(recipient)) {
    throw new UsageError(`"${recipient}" is not an age recipient (age1...; make one with age-keygen)`);
  }
  const { Encrypter } = await import('age-encryption');
  const e = new Encrypter();
  e.addRecipient(recipient);
  return e.encrypt(await modelDocument(model, keyring));
}
