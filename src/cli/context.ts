/** What every subcommand shares: the logger, verbosity, and the layered configuration. */
import type { Command } from 'commander';
import type { LevelWithSilent } from 'pino';
import { homeConfigFile } from '../config/home.js';
import { readConfigFile, resolveConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { overridesFrom, type SchemaFlag } from './options.js';

export interface GlobalFlags {
  verbose?: boolean;
  logLevel?: LevelWithSilent;
  config?: string;
  json?: boolean;
}

/** Logs go to stderr at `warn` unless --verbose (debug) or --log-level says otherwise. */
export function cliLogger(flags: GlobalFlags, config?: Config): Logger {
  const level = flags.logLevel ?? (flags.verbose ? 'debug' : (config?.logging.level ?? 'warn'));
  return createLogger({ level });
}

/** defaults < config file (--config, else the home's) < flags. */
export async function cliConfig(command: Command, flags: readonly SchemaFlag[]): Promise<Config> {
  const opts = command.optsWithGlobals() as GlobalFlags;
  const file = opts.config ?? homeConfigFile();
  const fromFile = file ? await readConfigFile(file) : undefined;
  return resolveConfig(fromFile, overridesFrom(flags, command));
}
