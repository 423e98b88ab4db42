/**
 * Reading a file once (issue 18, items 2 and 10): the data loader opens the file once, checks what
 * it opened (a regular file, whose real location is inside the data roots, of an allowed size) and
 * reads that descriptor. A symbolic link or a directory flipped between the check and the read
 * never lets a byte from outside the roots through, and a FIFO, a device or a directory is a read
 * error at once, never a read that blocks.
 */
import { spawn, spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { isNeuroclusterError } from '../../src/core/errors.js';
import { loadWithinLimits } from '../../src/security/secure-load.js';
import { failure, tempDir } from '../helpers.js';

const data = { ...resolveConfig().data };
const limits = (dataRoots: string[]) => ({ dataRoots, maxFileBytes: 1 << 20, maxRows: 1e7, maxColumns: 100 });

/** Node code for a child process that flips `what` (a link, or a directory) until it is killed. */
const FLIPPER = `
const fs = require('node:fs');
const [mode, at, inside, outside, insideFile] = process.argv.slice(1);
const tmp = at + '.tmp';
process.stdout.write('flipping');
for (let i = 0; ; i++) {
  if (mode === 'link') {
    // The name is a link, atomically replaced by one to the other target.
    try { fs.unlinkSync(tmp); } catch {}
    fs.symlinkSync(i % 2 ? outside : inside, tmp);
    fs.renameSync(tmp, at);
  } else {
    // A directory component: a real directory inside the root, then a link to one outside.
    try { fs.unlinkSync(at); } catch {}
    fs.rmSync(at, { recursive: true, force: true });
    if (i % 2) fs.symlinkSync(outside, at);
    else { fs.mkdirSync(at); fs.linkSync(insideFile, at + '/data.csv'); }
  }
}`;

describe('a file flipped between the check and the read', () => {
  it.each([
    ['its own symbolic link', 'link'],
    ['a directory on its path', 'dir'],
  ])(
    'never yields content from outside the data roots (%s)',
    async (_what, mode) => {
      const dir = tempDir();
      const root = join(dir, 'root');
      const outside = join(dir, 'outside');
      mkdirSync(root);
      mkdirSync(outside);
      const inside = join(root, 'in.csv');
      writeFileSync(inside, 'a\n1\n2\n');
      writeFileSync(join(outside, 'data.csv'), 'secret\n999\n998\n');
      const at = join(root, mode === 'link' ? 'flip.csv' : 'sub');
      const target = mode === 'link' ? at : join(at, 'data.csv');
      // Start in a readable state, so the first tries do not all fail for a missing file.
      if (mode === 'link') symlinkSync(inside, at);
      else {
        mkdirSync(at);
        linkSync(inside, join(at, 'data.csv'));
      }
      const flipper = spawn(
        process.execPath,
        [
          '-e',
          FLIPPER,
          mode,
          at,
          mode === 'link' ? inside : root,
          mode === 'link' ? join(outside, 'data.csv') : outside,
          inside,
        ],
        { stdio: ['ignore', 'pipe', 'ignore'] },
      );
      await new Promise((started) => flipper.stdout.once('data', started));
      const seen = { inside: 0, refused: 0 };
      try {
        // Before the fix, about 1 try in 100 read the outside file: 2,000 tries, or 4 seconds.
        const started = Date.now();
        for (let i = 0; i < 2000 && Date.now() - started < 4000; i++) {
          try {
            const ds = await loadWithinLimits(target, data, limits([root]));
            expect(ds.columns, `try ${i} read the file outside the roots`).toEqual(['a']);
            seen.inside++;
          } catch (error) {
            if (!isNeuroclusterError(error)) throw error;
            // Refused (outside the roots, changed while opened) or caught mid-flip (no such file).
            expect(['NEUROCLUSTER_ERR_SECURITY_PATH', 'NEUROCLUSTER_ERR_DATA_READ']).toContain(error.code);
            expect(error.message).not.toMatch(/999|secret\n/);
            seen.refused++;
          }
        }
      } finally {
        flipper.kill('SIGKILL');
      }
      // Both states were met: the test raced for real.
      expect(seen.inside).toBeGreaterThan(0);
      expect(seen.refused).toBeGreaterThan(0);
    },
    30_000,
  );

  it('still reads through links that resolve inside the roots, and refuses those that do not', async () => {
    const dir = tempDir();
    const root = join(dir, 'root');
    mkdirSync(root);
    writeFileSync(join(root, 'in.csv'), 'a\n1\n2\n');
    writeFileSync(join(dir, 'out.csv'), 'a\n1\n2\n');
    symlinkSync(join(root, 'in.csv'), join(dir, 'link-in.csv'));
    symlinkSync(join(dir, 'out.csv'), join(root, 'link-out.csv'));
    expect((await loadWithinLimits(join(dir, 'link-in.csv'), data, limits([root]))).n).toBe(2);
    expect((await failure(loadWithinLimits(join(root, 'link-out.csv'), data, limits([root])))).code).toBe(
      'NEUROCLUSTER_ERR_SECURITY_PATH',
    );
  });
});

describe('files that are not regular files', () => {
  it('are NEUROCLUSTER_ERR_DATA_READ at once: a FIFO with no writer, a device, a directory', async () => {
    const dir = tempDir();
    const fifo = join(dir, 'pipe.csv');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const [path, kind] of [
      [fifo, /FIFO/],
      ['/dev/null', /device/],
      [dir, /directory/],
    ] as const) {
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`reading ${path} blocked`)), 5000).unref(),
      );
      const e = await failure(Promise.race([loadWithinLimits(path, data, limits([])), timeout]));
      expect(e.code, path).toBe('NEUROCLUSTER_ERR_DATA_READ');
      expect(e.message, path).toMatch(kind);
    }
  });
});
