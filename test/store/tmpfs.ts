/**
 * A real full disk for tests: a small tmpfs, where this process may mount one (root on Linux).
 * `mountTmpfs.available` says whether it can; tests that need one are skipped otherwise (and the
 * same faults are then tested by injection). Every mount is unmounted by its test file.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function run(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

function probe(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  const dir = mkdtempSync(join(tmpdir(), 'neurocluster-tmpfs-probe-'));
  try {
    if (!run('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir])) return false;
    return run('umount', [dir]);
  } finally {
    rmdirSync(dir);
  }
}

/** Mounts a tmpfs of `size` (mount's syntax: 512k, 2m) at `dir`, made if missing. */
export function mountTmpfs(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  if (!run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]))
    throw new Error(`cannot mount a tmpfs at ${dir}`);
}
mountTmpfs.available = probe();
mountTmpfs.unmount = (dir: string): void => {
  // Lazily: a child process killed in a test may still hold a file open for a moment.
  run('umount', ['-l', dir]);
  rmSync(dir, { recursive: true, force: true });
};

/**
 * Fills the file system of `dir` to its last byte with one file (block by block, then byte by
 * byte); `release()` deletes it. Files can still be created (tmpfs counts inodes apart): empty.
 */
export function fillDisk(dir: string): { release(): void } {
  const path = join(dir, '.fill');
  const fd = openSync(path, 'w');
  try {
    for (const size of [1 << 16, 4096, 1]) {
      const block = Buffer.alloc(size);
      for (;;) {
        try {
          if (writeSync(fd, block) < size) break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw error;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return { release: () => rmSync(path, { force: true }) };
}
