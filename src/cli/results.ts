/**
 * The files the CLI writes for its user (the result JSON, the labels CSV, the plot, the model):
 * results plain, or encrypted at rest with the keyring when `security.encryptResults` is on (and
 * then recorded for `keys rotate`, and read back by `neurocluster decrypt`, `score --labels` and
 * the data loaders), and every write audited with what came before it.
 */
import type { Config } from '../config/schema.js';
import type { AuditEvent } from '../security/audit.js';
import { writeEncryptedFile } from '../security/encrypted-files.js';
import { Keyring } from '../security/keyring.js';
import { writeFileAtomic } from '../store/atomic.js';
import { audit, errorDetails } from './audit.js';

/** One output of a command: the file, what writing it is (for the audit), and the write itself. */
export interface Output {
  readonly action: 'result.write' | 'model.write';
  readonly resource: string;
  /** Writes the file; returns the details of its audit record. */
  readonly write: () => Promise<Record<string, unknown> | undefined>;
}

/** A result file's output: written as the configuration says, its record saying whether encrypted. */
export function resultFile(path: string, content: () => Promise<string> | string, config: Config): Output {
  return {
    action: 'result.write',
    resource: path,
    write: async () => {
      const encrypted = config.security.encryptResults;
      const text = await content();
      if (encrypted) await writeEncryptedFile(path, text, Keyring.open());
      else await writeFileAtomic(path, text);
      return { encrypted };
    },
  };
}

/**
 * Writes the outputs in order, each atomically, and audits `done` (the read, the spend: they
 * happened) with a record per output written, and the failed one when a write fails.
 */
export async function writeOutputs(
  config: Config,
  done: readonly AuditEvent[],
  outputs: readonly Output[],
): Promise<void> {
  const events = [...done];
  for (const { action, resource, write } of outputs) {
    let details: Record<string, unknown> | undefined;
    try {
      details = await write();
    } catch (error) {
      audit(config, [...events, { action, resource, outcome: 'failure', details: errorDetails(error) }]);
      throw error;
    }
    events.push({ action, resource, outcome: 'success', ...(details ? { details } : {}) });
  }
  audit(config, events);
}
