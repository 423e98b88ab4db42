/**
 * NEUROCLUSTER_HOME (default ~/.neurocluster): everything the engine keeps between runs lives here.
 * This version keeps its `config.yaml|yml|json` (read when no --config is given) and `state/`
 * (circuit breakers, performance baselines); later issues add `models/`, the audit log and the
 * privacy ledger.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** The home directory from the environment, or the default. */
export function neuroclusterHome(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.NEUROCLUSTER_HOME;
  return fromEnv && fromEnv.trim() !== '' ? resolve(fromEnv) : join(homedir(), '.neurocluster');
}

/** The home's own configuration file, if one exists. */
export function homeConfigFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const home = neuroclusterHome(env);
  return ['config.yaml', 'config.yml', 'config.json'].map((f) => join(home, f)).find((p) => existsSync(p));
}
