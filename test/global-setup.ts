/**
 * Builds the package once before the tests, so the CLI tests run the real compiled command
 * (`node dist/src/cli/main.js`) and never a stale one.
 */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
}
