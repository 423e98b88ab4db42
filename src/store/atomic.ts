/** Output files are written whole or not at all: a failure leaves no partial file behind. */
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isNeuroclusterError, OutputError } from '../resilience/errors.js';

/** A hidden temporary sibling of `path`, unique to this write. */
function temporaryOf(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
}

const outputError = (path: string, cause: unknown) =>
  new OutputError(`cannot write ${path}: ${(cause as Error).message}`, { cause, location: { file: path } });

/** Writes to a temporary sibling (0644, or `mode`, less the umask), then renames it over the target. */
export async function writeFileAtomic(
  path: string,
  content: string | Uint8Array,
  options: { mode?: number } = {},
): Promise<void> {
  const tmp = temporaryOf(path);
  try {
    await writeFile(tmp, content, { mode: options.mode ?? 0o644 });
    await rename(tmp, path);
  } catch (cause) {
    await rm(tmp, { force: true });
    throw outputError(path, cause);
  }
}

/**
 * The streaming form: `write` fills an owner-only temporary sibling, which is synced and renamed
 * over `path` once it is done, so `path` appears whole or not at all. A failure to write is an
 * output error naming `path`; the engine's own errors from `write` (a chunk that does not
 * authenticate) pass through as they are.
 */
export async function writeStreamAtomic(
  path: string,
  write: (file: FileHandle) => Promise<void>,
): Promise<void> {
  const tmp = temporaryOf(path);
  let file: FileHandle;
  try {
    file = await open(tmp, 'w', 0o600);
  } catch (cause) {
    throw outputError(path, cause);
  }
  try {
    await write(file);
    await file.sync();
    await file.close();
    await rename(tmp, path);
  } catch (error) {
    await file.close().catch(() => {});
    await rm(tmp, { force: true });
    throw isNeuroclusterError(error) ? error : outputError(path, error);
  }
}
