/** Output files are written whole or not at all: a failure leaves no partial file behind. */
import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { OutputError } from '../resilience/errors.js';

/** Writes to a temporary sibling (0644, or `mode`, less the umask), then renames it over the target. */
export async function writeFileAtomic(
  path: string,
  content: string | Uint8Array,
  options: { mode?: number } = {},
): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, content, { mode: options.mode ?? 0o644 });
    await rename(tmp, path);
  } catch (cause) {
    await rm(tmp, { force: true });
    throw new OutputError(`cannot write ${path}: ${(cause as Error).message}`, {
      cause,
      location: { file: path },
    });
  }
}
