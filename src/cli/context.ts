/** What every subcommand shares: the logger, verbosity, and the layered configuration. */
import type { Command } from 'commander';
import type { LevelWithSilent } from 'pino';
import { homeConfigFile } from '../config/home.js';
import { type ConfigLevel, environmentOverrides } from '../config/levels.js';
import { readConfigFile, resolveConfigChecked } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { overridesFrom, type SchemaFlag } from './options.js';

export interface GlobalFlags {
  verbose?: boolean;
  logLevel?: LevelWithSilent;
  config?: string;
  configLevel?: ConfigLevel;
  json?: boolean;
}

/** Logs go to stderr at `warn` unless --verbose (debug) or --log-level says otherwise. */
export function cliLogger(flags: GlobalFlags, config?: Config): Logger {
  const level = flags.logLevel ?? (flags.verbose ? 'debug' : (config?.logging.level ?? 'warn'));
  return createLogger({
    level,
    pretty: config?.logging.pretty ?? 'auto',
    transport: config?.logging.transport,
  });
}

/**
 * defaults < config file (--config, else the home's) < environment (`NEUROCLUSTER_<SECTION>__<KEY>`)
 * < flags, checked at `--config-level` (strict by default); its warnings go to the log.
 */
export async function cliConfig(command: Command, flags: readonly SchemaFlag[]): Promise<Config> {
  const opts = command.optsWithGlobals() as GlobalFlags;
  const file = opts.config ?? homeConfigFile();
  const fromFile = file ? await readConfigFile(file) : undefined;
  const { config, warnings } = resolveConfigChecked(
    [fromFile, environmentOverrides(), overridesFrom(flags, command)],
    opts.configLevel ?? 'strict',
  );
  const logger = cliLogger(opts, config);
  for (const w of warnings)
    logger.warn({ path: w.path, ...(file ? { file } : {}) }, `configuration: ${w.path}: ${w.message}`);
  return config;
}
