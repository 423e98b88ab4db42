/**
 * Generates the WGSL and WASM modules and builds the package before the tests, so the tests see
 * the current kernels/ and the CLI tests run the real compiled command (`node dist/src/cli/main.js`),
 * never a stale one.
 *
 * `npm test` has done both just before (`npm run kernels`, then one `tsc -p tsconfig.json` that
 * type-checks everything and emits dist/, a superset of `npm run build`'s) and says so with
 * TESTS_PREBUILT=1, so each is done once per `npm test`. A plain `npx vitest run <file>` builds here.
 */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  if (process.env.TESTS_PREBUILT === '1') return;
  execFileSync(process.execPath, ['kernels/build.mjs'], { stdio: 'inherit' });
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
}
