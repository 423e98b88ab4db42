/**
 * NEUROCLUSTER_HOME (default ~/.neurocluster): everything the engine keeps between runs lives here.
 * This version keeps its `config.yaml|yml|json` (read when no --config is given) and `state/`
 * (circuit breakers, performance baselines); later issues add `models/`, the audit log and the
 * privacy ledger.
 *
 * Also the other settings of the process that are not configuration keys (where the keyring is,
 * whether metrics are made at all): the environment is read here and in levels.ts, nowhere else.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

const SWITCHES: Readonly<Record<string, boolean>> = {
  on: true,
  true: true,
  yes: true,
  '1': true,
  off: false,
  false: false,
  no: false,
  '0': false,
};

/** `on`/`off`, `true`/`false`, `yes`/`no`, `1`/`0` in any case; undefined for anything else. */
export function parseSwitch(raw: string): boolean | undefined {
  const word = raw.trim().toLowerCase();
  return Object.hasOwn(SWITCHES, word) ? SWITCHES[word] : undefined;
}

/**
 * The variables that are settings of the process, not configuration keys, each with its check
 * (a message when the value is bad). NEUROCLUSTER_KEYRING_JSON is a secret: the keyring checks it
 * when it opens, and its value is never echoed.
 */
export const PROCESS_VARIABLES: Readonly<Record<string, (raw: string) => string | undefined>> = {
  NEUROCLUSTER_HOME: () => undefined,
  NEUROCLUSTER_KEYRING: () => undefined,
  NEUROCLUSTER_KEYRING_JSON: () => undefined,
  NEUROCLUSTER_METRICS: (raw) => (parseSwitch(raw) === undefined ? 'expected on or off' : undefined),
  /** The Redis of the BullMQ queues (`serve --queue`, `worker --queue`); may hold a password. */
  NEUROCLUSTER_QUEUE: (raw) =>
    /^rediss?:\/\//.test(raw.trim()) ? undefined : 'expected a redis:// or rediss:// URL',
  /** The bench harness's reference implementation (src/bench/harness.ts). */
  NEUROCLUSTER_REFERENCE: () => undefined,
};

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

/** The keyring file: NEUROCLUSTER_KEYRING, else `keys/keyring.json` in the home. */
export function keyringFile(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.NEUROCLUSTER_KEYRING;
  return fromEnv && fromEnv.trim() !== '' ? fromEnv : join(neuroclusterHome(env), 'keys', 'keyring.json');
}

/** The keyring itself when the platform injects it (NEUROCLUSTER_KEYRING_JSON), else undefined. */
export function inlineKeyring(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.NEUROCLUSTER_KEYRING_JSON || undefined;
}

/**
 * Whether metrics are made (NEUROCLUSTER_METRICS, read once at start-up, before any configuration:
 * a value other than on or off counts as on here, and the CLI's configuration check refuses it).
 */
export function metricsEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return parseSwitch(env.NEUROCLUSTER_METRICS ?? '') !== false;
}

/** The engine's own files of this environment (home and keyring), which no output may replace. */
export function engineFilesOf(env: NodeJS.ProcessEnv = process.env): { home: string; keyring: string } {
  return { home: neuroclusterHome(env), keyring: keyringFile(env) };
}

/** The environment with `NEUROCLUSTER_HOME` set to `home` (for a keyring of that home). */
export function envWithHome(home: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, NEUROCLUSTER_HOME: home };
}

/** The bench's reference.py from NEUROCLUSTER_REFERENCE, if set (src/bench/harness.ts checks it exists). */
export function referenceScript(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.NEUROCLUSTER_REFERENCE;
}

/** The bench reference's environment: OpenBLAS unrestrained (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE unset). */
export function envForReference(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy.OPENBLAS_CORETYPE;
  delete copy.OPENBLAS_L2_SIZE;
  return copy;
}
