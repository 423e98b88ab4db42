/**
 * The files the CLI writes for its user (the result JSON, the labels CSV, the plot): plain, or
 * encrypted at rest with the keyring when `security.encryptResults` is on (and then recorded for
 * `keys rotate`, and read back by `neurocluster decrypt`, `score --labels` and the data loaders).
 */
import type { Config } from '../config/schema.js';
import type { AuditEvent } from '../security/audit.js';
import { writeEncryptedFile } from '../security/encrypted-files.js';
import { Keyring } from '../security/keyring.js';
import { writeFileAtomic } from '../store/atomic.js';

/** Writes one result file as the configuration says; returns its audit record. */
export async function writeResultFile(path: string, content: string, config: Config): Promise<AuditEvent> {
  const encrypted = config.security.encryptResults;
  if (encrypted) await writeEncryptedFile(path, content, Keyring.open());
  else await writeFileAtomic(path, content);
  return { action: 'result.write', resource: path, outcome: 'success', details: { encrypted } };
}
