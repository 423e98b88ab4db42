/**
 * Secure loading: which files the engine may read, and how large they may be.
 *
 * Data roots are opt-in. With no `security.dataRoots` the CLI reads any file the invoking user can
 * read (the operator named it). Once roots are configured, a path whose real location (every
 * symbolic link resolved, the file's own included) is outside all of them is refused with
 * NEUROCLUSTER_ERR_SECURITY_PATH. Size, row and column limits are generous by default (never fewer
 * than 10 million rows) and checked before parsing (bytes) and after (rows, columns).
 * `SecureDataProcessor.secureLoadData` also checks an expected schema and records who loaded what
 * in the audit log.
 *
 * A file is opened once ({@link openWithinLimits}) and what was opened is checked and read: a
 * link or a directory swapped between the check of the name and the read cannot substitute a file
 * from outside the roots, and a FIFO or a device is refused rather than waited on.
 */
import { realpathSync } from 'node:fs';
import { readlink, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { Config, DataConfig } from '../config/schema.js';
import { DataError, isNeuroclusterError, SecurityError } from '../core/errors.js';
import { type Handle, openToRead } from '../core/open.js';
import { type ChunkedFile, chunkedFile } from '../data/chunked.js';
import type { Dataset } from '../data/dataset.js';
import { loadDataset } from '../data/load.js';
import type { DataWarnings, TableOptions } from '../data/table.js';
import { type AuditLog, auditUnavailable } from './audit.js';
import { isEncrypted, readFileDecrypted } from './envelope.js';
import { Keyring } from './keyring.js';

export interface LoadLimits {
  /** Directories data may be read from; none: any readable file. */
  readonly dataRoots: readonly string[];
  readonly maxFileBytes: number;
  readonly maxRows: number;
  readonly maxColumns: number;
}

/** The real path of a file (symbolic links resolved); a missing file keeps its absolute path. */
function realOf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

function inside(child: string, root: string): boolean {
  const rel = relative(root, child);
  // Outside is `..` itself or a path through it (a file named `..data` inside is inside).
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** Refuses a path outside the data roots (when any are configured); returns its real path. */
export function checkDataPath(path: string, roots: readonly string[]): string {
  const real = realOf(path);
  if (roots.length === 0) return real;
  const realRoots = roots.map(realOf);
  if (realRoots.some((root) => inside(real, root))) return real;
  const via = real === resolve(path) ? '' : ` (it resolves to ${real})`;
  throw new SecurityError(`${path}${via} is outside the data roots (${roots.join(', ')})`, {
    path: true,
    location: { file: path },
  });
}

/** Where a file may be read from, and how large it may be. */
export type ReadLimits = Pick<LoadLimits, 'dataRoots' | 'maxFileBytes'>;

/**
 * Where the open descriptor's file is: the kernel's name for it (/proc/self/fd on Linux), or,
 * without /proc, `real` when the file now there is the one opened (same device and inode).
 */
async function openedPath(handle: Handle, real: string): Promise<string | undefined> {
  try {
    return await readlink(`/proc/self/fd/${handle.fd}`);
  } catch {
    const [now, opened] = await Promise.all([stat(real).catch(() => undefined), handle.stat()]);
    return now && now.dev === opened.dev && now.ino === opened.ino ? real : undefined;
  }
}

/**
 * Opens a file once for reading, within the limits: its name is checked against the data roots,
 * its real path opened without following a final link, the descriptor's own location checked
 * against the roots again, and its size (from that descriptor) against `maxFileBytes`. Only a
 * regular file opens. The caller reads this descriptor (never the name again) and closes it.
 */
export async function openWithinLimits(path: string, limits: ReadLimits): Promise<Handle> {
  const roots = limits.dataRoots;
  const real = checkDataPath(path, roots);
  const handle = roots.length > 0 ? await openToRead(real, { noFollow: true }) : await openToRead(path);
  try {
    if (roots.length > 0) {
      const opened = await openedPath(handle, real);
      const realRoots = roots.map(realOf);
      if (opened === undefined || !realRoots.some((root) => inside(opened, root))) {
        throw new SecurityError(
          `${path} changed while it was opened${opened ? ` (it now resolves to ${opened})` : ''}: it is outside the data roots (${roots.join(', ')})`,
          { path: true, location: { file: path } },
        );
      }
    }
    const { size } = await handle.stat();
    if (size > limits.maxFileBytes) {
      throw new DataError(
        'NEUROCLUSTER_ERR_DATA_SHAPE',
        `the file is ${size} bytes, over security.maxFileBytes (${limits.maxFileBytes})`,
        { location: { file: path } },
      );
    }
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * The bytes of a file read within the limits ({@link openWithinLimits}), decrypted when it is an
 * encrypted file.
 */
export async function readWithinLimits(
  path: string,
  limits: ReadLimits,
  keyring: () => Keyring = () => Keyring.open(),
): Promise<Buffer> {
  const handle = await openWithinLimits(path, limits);
  try {
    return await readFileDecrypted(handle, keyring);
  } finally {
    await handle.close();
  }
}

/**
 * A data file opened within the limits ({@link openWithinLimits}) to be read in chunks
 * (src/data/chunked.ts), or undefined when it is read whole: a JSON array or an encrypted file.
 */
export async function openChunked(path: string, limits: ReadLimits): Promise<ChunkedFile | undefined> {
  return chunkedFile(await openWithinLimits(path, limits), path, isEncrypted);
}

/** Checks the path and the file size, loads (from the one descriptor checked), then checks rows and columns. */
export async function loadWithinLimits(
  path: string,
  options: DataConfig,
  limits: LoadLimits,
  warnings?: DataWarnings,
  keyring: () => Keyring = () => Keyring.open(),
): Promise<Dataset> {
  const handle = await openWithinLimits(path, limits);
  let dataset: Dataset;
  try {
    // An encrypted file (`neurocluster encrypt`, or results written encrypted) is read decrypted.
    dataset = await loadDataset(path, options, warnings, () => readFileDecrypted(handle, keyring));
  } finally {
    await handle.close();
  }
  if (dataset.n > limits.maxRows || dataset.width > limits.maxColumns) {
    throw new DataError(
      'NEUROCLUSTER_ERR_DATA_SHAPE',
      `${dataset.n} rows x ${dataset.width} columns is over the limits (security.maxRows ${limits.maxRows}, security.maxColumns ${limits.maxColumns})`,
      { location: { file: path } },
    );
  }
  return dataset;
}

/** The load limits of a configuration. */
export function loadLimits(config: Config): LoadLimits {
  return config.security;
}

export interface SecureLoadOptions {
  /** Who loads: the audit record's actor. */
  readonly userId: string;
  /** Columns the file must have (after the label and id columns are set aside). */
  readonly expectColumns?: readonly string[];
}

/** Loads data for a user: data roots, limits, an expected schema, and an audit record either way. */
export class SecureDataProcessor {
  constructor(
    private readonly config: Config,
    private readonly audit?: AuditLog,
  ) {}

  async secureLoadData(path: string, options: SecureLoadOptions): Promise<Dataset> {
    const record = (outcome: 'success' | 'failure' | 'denied', details: Record<string, unknown>) => {
      try {
        this.audit?.append({ action: 'data.read', resource: path, outcome, actor: options.userId, details });
      } catch (cause) {
        throw auditUnavailable(cause);
      }
    };
    let dataset: Dataset;
    try {
      dataset = await loadWithinLimits(path, this.config.data, loadLimits(this.config));
      const missing = (options.expectColumns ?? []).filter((c) => !dataset.columns.includes(c));
      if (missing.length > 0) {
        throw new DataError(
          'NEUROCLUSTER_ERR_DATA_FORMAT',
          `missing expected column(s): ${missing.join(', ')}`,
          {
            location: { file: path },
          },
        );
      }
    } catch (error) {
      const denied = isNeuroclusterError(error) && error.category === 'security';
      record(denied ? 'denied' : 'failure', isNeuroclusterError(error) ? { code: error.code } : {});
      throw error;
    }
    record('success', { rows: dataset.n, columns: dataset.width });
    return dataset;
  }
}

/**
 * The library's `loadDataset`: a data file read and validated as the CLI reads it (opened once, a
 * regular file only), decrypted when it is an encrypted file.
 */
export function loadDatasetFile(
  path: string,
  options: TableOptions,
  warnings?: DataWarnings,
): Promise<Dataset> {
  return loadDataset(path, options, warnings, () => readFileDecrypted(path));
}
