/**
 * Spill files: what a streamed fit must keep between its passes (the features K-means iterates
 * over, the ids and labels of the rows) written to files under the system's temporary directory,
 * in a directory only the owner can open, and read back in chunks. The directory is removed when
 * the fit ends, fails or is aborted ({@link SpillDir.remove}, called from a `finally`).
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { throwIfAborted } from '../core/cancel.js';
import { OutputError } from '../core/errors.js';
import type { Handle } from '../core/open.js';

/**
 * A directory of spill files, owner-only (0700), its files 0600. It is made with its first file,
 * so a fit that keeps nothing here (its passes run on other workers) leaves no trace even when
 * its process is killed.
 */
export class SpillDir {
  private readonly files: SpillFile[] = [];
  private path: Promise<string> | undefined;
  private removed = false;

  /** The directory, made on first use. */
  private where(): Promise<string> {
    // mkdtemp makes the directory 0700: no other user can list or open what is spilled.
    this.path ??= mkdtemp(join(tmpdir(), 'neurocluster-spill-')).catch((cause: Error) => {
      throw new OutputError(`cannot make a spill directory under ${tmpdir()}: ${cause.message}`, {
        cause,
      });
    });
    return this.path;
  }

  /** A new spill file of fixed-width rows of `bytesPerRow` bytes. */
  async file(name: string, bytesPerRow: number): Promise<SpillFile> {
    if (this.removed) throw new OutputError(`the spill directory is removed: no file ${name} in it`);
    const path = join(await this.where(), name);
    const handle = await open(path, 'wx+', 0o600);
    const file = new SpillFile(path, handle, bytesPerRow);
    this.files.push(file);
    return file;
  }

  /** Closes and removes every file and the directory; safe to call more than once. */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    await Promise.allSettled(this.files.map((f) => f.close()));
    const path = await this.path?.catch(() => undefined);
    if (path) await rm(path, { recursive: true, force: true });
  }
}

/** Rows of a fixed number of bytes, appended in order and read back in chunks of rows. */
export class SpillFile {
  rows = 0;
  private closed = false;

  constructor(
    readonly path: string,
    private readonly handle: Handle,
    readonly bytesPerRow: number,
  ) {}

  /** Appends whole rows. */
  async append(bytes: Uint8Array): Promise<void> {
    if (bytes.length % this.bytesPerRow !== 0) throw new RangeError('a spill write of a partial row');
    try {
      let written = 0;
      while (written < bytes.length) {
        const { bytesWritten } = await this.handle.write(
          bytes,
          written,
          bytes.length - written,
          this.rows * this.bytesPerRow + written,
        );
        written += bytesWritten;
      }
    } catch (cause) {
      throw new OutputError(`cannot write the spill file ${this.path}: ${(cause as Error).message}`, {
        cause,
      });
    }
    this.rows += bytes.length / this.bytesPerRow;
  }

  /** Every row from the start, `rows` at a time; each chunk's bytes are valid until the next is read. */
  async *chunks(rows: number, signal?: AbortSignal): AsyncGenerator<{ start: number; bytes: Uint8Array }> {
    const buffer = new Uint8Array(Math.max(1, Math.min(rows, this.rows)) * this.bytesPerRow);
    for (let start = 0; start < this.rows; start += rows) {
      throwIfAborted(signal);
      const want = Math.min(rows, this.rows - start) * this.bytesPerRow;
      const { bytesRead } = await this.handle.read(buffer, 0, want, start * this.bytesPerRow);
      if (bytesRead !== want) throw new OutputError(`the spill file ${this.path} was cut short`);
      yield { start, bytes: buffer.subarray(0, want) };
    }
  }

  /** Rows [start, start + count), read into a buffer of their own. */
  async read(start: number, count: number): Promise<Uint8Array> {
    if (start + count > this.rows)
      throw new RangeError(`rows ${start}..${start + count} of a spill of ${this.rows}`);
    const buffer = new Uint8Array(count * this.bytesPerRow);
    const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, start * this.bytesPerRow);
    if (bytesRead !== buffer.length) throw new OutputError(`the spill file ${this.path} was cut short`);
    return buffer;
  }

  /** Closes and removes the file (its directory's {@link SpillDir.remove} removes the rest). */
  async remove(): Promise<void> {
    await this.close();
    await rm(this.path, { force: true });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/** A float32 view of spilled bytes (they are written 4-byte aligned, from a Float32Array). */
export function asFloat32(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** An int32 view of spilled bytes. */
export function asInt32(bytes: Uint8Array): Int32Array {
  return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** The bytes of a typed array, for {@link SpillFile.append}. */
export function bytesOf(values: Float32Array | Int32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
