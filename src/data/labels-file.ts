/**
 * The labels file (`--labels-out`): `label` per row, or `id,label` when ids are known. Written
 * whole from labels in memory ({@link labelsCsv}), or a chunk at a time by a streamed fit
 * ({@link writeLabelsFile}): either way through a temporary sibling renamed into place, so the file
 * appears whole or not at all.
 */
import type { FileHandle } from 'node:fs/promises';
import { engineFilesOf } from '../config/home.js';
import { writeStreamAtomic } from '../core/atomic.js';

/** A cell that is entirely a finite decimal number (no spaces, tabs, hex or Infinity). */
const PLAIN_NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * A CSV cell, safe for spreadsheets: quoted when needed, and a cell that starts with = + - @ tab
 * or CR and does not parse entirely as a finite number gets a leading ' so it is not run as a
 * formula (`-1.5e3` stays a number; `-1+2`, `=SUM(A1)`, `@cmd`, a tab before a number do not).
 */
export function csvCell(value: string): string {
  let v = value;
  if (/^[=+\-@\t\r]/.test(v) && !PLAIN_NUMBER.test(v)) v = `'${v}`;
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** The lines of some rows of a labels file (no header), each ending in a newline. */
function labelLines(labels: ArrayLike<number>, ids: readonly string[] | undefined): string {
  let out = '';
  for (let i = 0; i < labels.length; i++) {
    out += ids ? `${csvCell(ids[i]!)},${labels[i]}\n` : `${labels[i]}\n`;
  }
  return out;
}

/** The whole labels file of labels in memory. */
export function labelsCsv(labels: Int32Array, ids?: readonly string[]): string {
  return `${ids ? 'id,label' : 'label'}\n${labelLines(labels, ids)}`;
}

/** Appends a chunk of rows to a labels file being written. */
export type LabelsSink = (labels: ArrayLike<number>, ids: readonly string[] | undefined) => Promise<void>;

/**
 * Writes a labels file a chunk at a time: `fill` is handed a sink and appends every chunk to it.
 * The file appears at `path` only when `fill` returns; an error leaves nothing there.
 */
export async function writeLabelsFile(
  path: string,
  withIds: boolean,
  fill: (sink: LabelsSink) => Promise<void>,
): Promise<void> {
  // Readable as the other result files are (writeFileAtomic's mode, under the umask).
  const mode = 0o644;
  await writeStreamAtomic(
    path,
    engineFilesOf(),
    async (file: FileHandle) => {
      await file.write(withIds ? 'id,label\n' : 'label\n');
      await fill(async (labels, ids) => {
        await file.write(labelLines(labels, withIds ? ids : undefined));
      });
    },
    mode,
  );
}
