/**
 * The package as a user gets it: packed, installed in a fresh project, the README's library example
 * type-checked there with `strict` and `skipLibCheck: false` (every public type must resolve in a
 * consumer), then run. The default install is the light one: Dawn (`webgpu`, an optional peer
 * dependency) is not in it, the CPU backends run, and asking for WebGPU says how to add it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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
    // bench --compare's reference travels with the package.
    expect(files).toContain('package/bench/reference/reference.py');
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
    // The light install: no Dawn, and WebGPU asked for by name says how to add it.
    expect(existsSync(join(dir, 'node_modules/webgpu'))).toBe(false);
    writeFileSync(
      join(dir, 'gpu.mjs'),
      `import { NeuromorphicClusterer } from 'neurocluster';
try {
  await new NeuromorphicClusterer({ nClusters: 2, seed: 42, backend: 'webgpu' }).fit([[1, 2], [2, 1], [8, 9], [9, 8]]);
  console.log('ran');
} catch (e) {
  console.log(e.code, e.message);
}`,
    );
    expect(run(process.execPath, ['gpu.mjs'], dir)).toMatch(
      /^NEUROCLUSTER_ERR_BACKEND_UNAVAILABLE .*npm install webgpu/,
    );
  });
});
