/**
 * Generates the WGSL module and builds the package once before the tests, so the tests see the
 * current kernels/webgpu/*.wgsl and the CLI tests run the real compiled command
 * (`node dist/src/cli/main.js`), never a stale one.
 */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['kernels/build.mjs'], { stdio: 'inherit' });
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
}
