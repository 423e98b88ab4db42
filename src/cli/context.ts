/** What every subcommand shares: the logger, verbosity, and the layered configuration. */
import type { Command } from 'commander';
import type { LevelWithSilent } from 'pino';
import { homeConfigFile } from '../config/home.js';
import { type ConfigLevel, environmentDefaults, environmentOverrides } from '../config/levels.js';
import { readConfigFile, resolveConfigChecked } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger, type Logger, loggerReady } from '../observability/logger.js';
import { humanLogDestination } from './human-log.js';
import { overridesFrom, type SchemaFlag } from './options.js';

export interface GlobalFlags {
  verbose?: boolean;
  logLevel?: LevelWithSilent;
  /** `human` (one line a record, the default) or `json` (pino's lines). */
  logFormat?: 'human' | 'json';
  config?: string;
  configLevel?: ConfigLevel;
  json?: boolean;
}

/** The logger of each configuration and level: one transport (one worker thread) per command. */
const loggers = new WeakMap<Config, { level: LevelWithSilent; logger: Logger }>();

/** Logs go to stderr at `warn` unless --verbose (debug) or --log-level says otherwise. */
export function cliLogger(flags: GlobalFlags, config?: Config): Logger {
  const level = flags.logLevel ?? (flags.verbose ? 'debug' : (config?.logging.level ?? 'warn'));
  const made = config && loggers.get(config);
  if (made?.level === level) return made.logger;
  const transport = config?.logging.transport;
  // A transport (configured on purpose) and --log-format json get pino's JSON; people get lines.
  const logger =
    transport || flags.logFormat === 'json'
      ? createLogger({ level, pretty: config?.logging.pretty ?? 'auto', transport })
      : createLogger({ level, destination: humanLogDestination() });
  if (config) loggers.set(config, { level, logger });
  return logger;
}

/**
 * defaults < short environment aliases (`NEUROCLUSTER_WASM_THREADS`) < config file (--config, else
 * the home's) < environment (`NEUROCLUSTER_<SECTION>__<KEY>`) < flags, checked at `--config-level`
 * (strict by default); its warnings go to the log, once its transport (if any) has started: one
 * that cannot start is a configuration error.
 */
export async function cliConfig(command: Command, flags: readonly SchemaFlag[]): Promise<Config> {
  const opts = command.optsWithGlobals() as GlobalFlags;
  const file = opts.config ?? homeConfigFile();
  const fromFile = file ? await readConfigFile(file) : undefined;
  const { config, warnings } = resolveConfigChecked(
    [environmentDefaults(), fromFile, environmentOverrides(), overridesFrom(flags, command)],
    opts.configLevel ?? 'strict',
  );
  const logger = cliLogger(opts, config);
  await loggerReady(logger);
  for (const w of warnings) {
    const inFile = file && !w.path.startsWith('NEUROCLUSTER_');
    logger.warn({ path: w.path, ...(inFile ? { file } : {}) }, `configuration: ${w.path}: ${w.message}`);
  }
  return config;
}
