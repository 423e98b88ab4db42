/**
 * The package as a user gets it: packed, installed in a fresh project, the README's library example
 * type-checked there with `strict` and `skipLibCheck: false` (every public type must resolve in a
 * consumer), then run.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers.js';

function run(command: string, args: string[], cwd: string) {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

describe('the packed package', () => {
  it('type-checks strictly and runs the README example in a fresh project', { timeout: 300_000 }, () => {
    const dir = tempDir();
    const tarball = run(
      'npm',
      ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir],
      ROOT,
    ).trim();
    const files = run('tar', ['tzf', join(dir, tarball)], dir).split('\n');
    expect(files).toContain('package/LICENSE');
    expect(files).toContain('package/dist/src/index.d.ts');
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const example = /From a program:\s*```ts\n([\s\S]*?)```/.exec(readme)![1]!;
    // The example names no file the package does not ship.
    expect(example).not.toMatch(/examples\//);
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    writeFileSync(join(dir, 'main.ts'), example);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          skipLibCheck: false,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          types: ['node'],
          outDir: 'out',
        },
        files: ['main.ts'],
      }),
    );
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        `./${tarball}`,
        `typescript@${pkg.devDependencies.typescript}`,
      ],
      dir,
    );
    run(join(dir, 'node_modules/.bin/tsc'), ['-p', '.'], dir);
    const out = run(process.execPath, ['out/main.js'], dir);
    expect(out).toMatch(/Int32Array\(6\)/);
  });
});
