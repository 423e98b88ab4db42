/**
 * The files the CLI writes for its user (the result JSON, the labels CSV, the plot, the model):
 * results plain, or encrypted at rest with the keyring when `security.encryptResults` is on (and
 * then recorded for `keys rotate`, and read back by `neurocluster decrypt`, `score --labels` and
 * the data loaders), never over the engine's own files, and none in place before its audit record.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { engineFilesOf, neuroclusterHome } from '../config/home.js';
import type { Config } from '../config/schema.js';
import { assertNotEngineFile, StagedWrites, writeFileAtomic } from '../core/atomic.js';
import { OutputError } from '../core/errors.js';
import { processProbes } from '../observability/resources.js';
import type { AuditEvent } from '../security/audit-record.js';
import { writeEncryptedFile } from '../security/encrypted-files.js';
import { Keyring } from '../security/keyring.js';
import { audit, errorDetails, outcomeOf } from './audit.js';

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
      else await writeFileAtomic(path, text, { engine: engineFilesOf() });
      return { encrypted };
    },
  };
}

/** Free space a private run needs in the home before it charges the budget: room for its records. */
export const PRIVATE_RUN_HEADROOM = 1 << 20;

/**
 * Refuses, before any work is done (and any privacy budget charged), an output that would replace
 * one of the engine's own files (NEUROCLUSTER_ERR_SECURITY_PATH, audited as denied) or whose
 * directory is not a writable directory (NEUROCLUSTER_ERR_IO). The writers check the first again
 * when they write. A private run (`privacy.epsilon`) is refused (NEUROCLUSTER_ERR_IO) on a home
 * with less than {@link PRIVATE_RUN_HEADROOM} free: its audit records and outputs would likely
 * not be written after the charge.
 */
export function checkOutputPaths(
  config: Config,
  targets: { readonly results?: readonly (string | undefined)[]; readonly model?: string },
): void {
  const all: [Output['action'], string | undefined][] = [
    ...(targets.results ?? []).map((p): [Output['action'], string | undefined] => ['result.write', p]),
    ['model.write', targets.model],
  ];
  for (const [action, path] of all) {
    if (!path) continue;
    try {
      assertNotEngineFile(path, engineFilesOf());
    } catch (error) {
      audit(config, [{ action, resource: path, outcome: outcomeOf(error), details: errorDetails(error) }]);
      throw error;
    }
    const dir = dirname(resolve(path));
    try {
      if (!statSync(dir).isDirectory()) throw new Error(`${dir} is not a directory`);
      accessSync(dir, constants.W_OK);
    } catch (cause) {
      throw new OutputError(`cannot write ${path}: ${(cause as Error).message}`, {
        cause,
        location: { file: path },
      });
    }
  }
  if (config.privacy.epsilon !== undefined) {
    const home = neuroclusterHome();
    const free = processProbes().disk(home)?.free;
    if (free !== undefined && free < PRIVATE_RUN_HEADROOM) {
      throw new OutputError(
        `the disk of ${home} has ${Math.floor(free / 1024)} KiB free: a private run needs ${PRIVATE_RUN_HEADROOM >> 10} KiB there for its records before it charges the privacy budget`,
        { location: { file: home } },
      );
    }
  }
}

/**
 * An output the command's work already wrote to its temporary inside `stage` (a fit that writes
 * its labels file a chunk at a time): committed with the others, after the audit records.
 */
export interface PrestagedOutput {
  readonly stage: StagedWrites;
  readonly action: string;
  readonly resource: string;
}

/**
 * Writes the outputs and audits `done` (the read, the spend: they happened) with a record per
 * output. Nothing appears unaudited: each output is written whole to its temporary first
 * (StagedWrites), the records are appended, and only then are the temporaries renamed into place.
 * A write that fails discards every temporary and is audited as failed; a log that cannot be
 * written discards them too, so the targets stay as they were.
 */
export async function writeOutputs(
  config: Config,
  done: readonly AuditEvent[],
  outputs: readonly Output[],
  prestaged: readonly PrestagedOutput[] = [],
): Promise<void> {
  const events = [
    ...done,
    ...prestaged.map(({ action, resource }) => ({
      action,
      resource,
      outcome: 'success' as const,
      details: { encrypted: false },
    })),
  ];
  const staged: StagedWrites[] = prestaged.map((p) => p.stage);
  const discard = () => Promise.all(staged.map((s) => s.discard()));
  for (const { action, resource, write } of outputs) {
    const stage = new StagedWrites();
    staged.push(stage);
    let details: Record<string, unknown> | undefined;
    try {
      details = await stage.run(write);
    } catch (error) {
      await discard();
      audit(config, [...done, { action, resource, outcome: 'failure', details: errorDetails(error) }]);
      throw error;
    }
    events.push({ action, resource, outcome: 'success', ...(details ? { details } : {}) });
  }
  try {
    audit(config, events);
  } catch (error) {
    await discard();
    throw error;
  }
  const written = [...prestaged, ...outputs];
  for (const [i, stage] of staged.entries()) {
    try {
      await stage.commit();
    } catch (error) {
      // Audited as written a moment ago; not there after all (the rest are not renamed either).
      await discard();
      const { action, resource } = written[i]!;
      audit(config, [{ action, resource, outcome: 'failure', details: errorDetails(error) }]);
      throw error;
    }
  }
}
