import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

/** Debian's chromium ships SwiftShader, a CPU Vulkan driver: Dawn finds an adapter through it. */
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
const env: Record<string, string> = {};
if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) env.VK_ICD_FILENAMES = SWIFTSHADER;
// Dawn prints "XDG_RUNTIME_DIR is invalid" on a headless machine; the CLI gives its process a
// runtime directory, the library never writes the environment, so the tests give theirs one.
if (!process.env.XDG_RUNTIME_DIR) {
  env.XDG_RUNTIME_DIR = mkdtempSync(join(tmpdir(), 'neurocluster-test-xdg-'));
  chmodSync(env.XDG_RUNTIME_DIR, 0o700);
}
// What the engine keeps between runs (breaker states, ...) goes to a fresh home, not the user's.
const home = mkdtempSync(join(tmpdir(), 'neurocluster-test-home-'));
env.NEUROCLUSTER_HOME = home;
// ...and leaves nothing behind once the run is over.
process.on('exit', () => {
  rmSync(home, { recursive: true, force: true });
  if (env.XDG_RUNTIME_DIR) rmSync(env.XDG_RUNTIME_DIR, { recursive: true, force: true });
});

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    pool: 'forks',
    // One fork per core (vitest's default leaves one core free: on a 2-core runner, one fork).
    // Most tests wait on a child process or on SwiftShader's threads, so a full house pays.
    maxWorkers: availableParallelism(),
    env,
  },
});
