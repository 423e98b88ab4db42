/**
 * Opening a file to read, once: the readers of data, labels, models and encrypted files all open
 * through here, then check and read the one descriptor, never the name again.
 */
import { constants, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { DataError } from './errors.js';

export type Handle = Awaited<ReturnType<typeof open>>;

/** What a file that is not a regular one is, for the error that refuses it. */
function kindOf(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  if (stat.isSocket()) return 'a socket';
  return 'not a plain file';
}

/**
 * Opens a file to read, once: the caller checks and reads this descriptor, never the name again.
 * Non-blocking, so a FIFO with no writer (or a device) is refused rather than waited on; with
 * `noFollow`, a final symbolic link is refused (ELOOP) instead of followed. Anything but a regular
 * file is NEUROCLUSTER_ERR_DATA_READ, naming what it is.
 */
export async function openToRead(path: string, options: { noFollow?: boolean } = {}): Promise<Handle> {
  const readError = (why: string, cause?: unknown) =>
    new DataError('NEUROCLUSTER_ERR_DATA_READ', `cannot read ${path}: ${why}`, {
      ...(cause ? { cause } : {}),
      location: { file: path },
    });
  // O_NOFOLLOW does not exist on Windows (there: 0, and links are followed).
  const flags =
    constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (options.noFollow ? (constants.O_NOFOLLOW ?? 0) : 0);
  let handle: Handle;
  try {
    handle = await open(path, flags);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw readError(
      code === 'ENOENT'
        ? 'no such file'
        : code === 'ELOOP' && options.noFollow
          ? 'it is a symbolic link (it was replaced by one after its path was checked?)'
          : (cause as Error).message,
      cause,
    );
  }
  const stat = await handle.stat();
  if (!stat.isFile()) {
    await handle.close();
    throw readError(`not a regular file (${kindOf(stat)})`);
  }
  return handle;
}

/** A file's whole bytes, through {@link openToRead}: opened once, a regular file only, then closed. */
export async function readOnce(path: string): Promise<Buffer> {
  const handle = await openToRead(path);
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}
