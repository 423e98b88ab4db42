/**
 * NEUROCLUSTER_HOME (default ~/.neurocluster): everything the engine keeps between runs lives here:
 * `config.yaml|json` (read when no --config is given), `state/`, `models/`, and later the audit log
 * and the privacy ledger.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** The home directory from the environment, or the default. */
export function neuroclusterHome(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.NEUROCLUSTER_HOME;
  return fromEnv && fromEnv.trim() !== '' ? resolve(fromEnv) : join(homedir(), '.neurocluster');
}

/** A subdirectory of the home, created (owner-only) on first use. */
export async function homeDir(
  sub: 'state' | 'models',
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const dir = join(neuroclusterHome(env), sub);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** The home's own configuration file, if one exists. */
export function homeConfigFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const home = neuroclusterHome(env);
  return ['config.yaml', 'config.yml', 'config.json'].map((f) => join(home, f)).find((p) => existsSync(p));
}
