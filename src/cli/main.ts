#!/usr/bin/env node
/**
 * The `neurocluster` command. stdout carries results only (with --json, exactly one JSON line);
 * logs, warnings and progress go to stderr. Exit status: 0 done, 2 bad usage or bad input,
 * 1 any other failure.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { defaultRegistry } from '../backends/index.js';
import { CONFIG_LEVELS } from '../config/levels.js';
import { UsageError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { observeRegistry } from '../fit/engine.js';
import { pushMetrics, writeMetricsFile } from '../observability/export.js';
import { benchCommand } from './commands/bench.js';
import { clusterCommand } from './commands/cluster.js';
import { configCommand } from './commands/config.js';
import { breakersCommand, healthCommand } from './commands/health.js';
import { metricsCommand } from './commands/metrics.js';
import { predictCommand } from './commands/predict.js';
import { privacyCommand } from './commands/privacy.js';
import { scoreCommand } from './commands/score.js';
import {
  auditCommand,
  decryptCommand,
  encryptCommand,
  keysCommand,
  modelCommand,
} from './commands/security.js';
import { reportError, warn } from './output.js';

function program(): Command {
  const root = new Command('neurocluster')
    .description('neuromorphic clustering engine')
    .version(VERSION)
    .option('--json', 'print exactly one JSON object on stdout')
    .option('--config <file>', 'configuration file (.json, .yaml); default $NEUROCLUSTER_HOME/config.yaml')
    .addOption(
      new Option(
        '--config-level <level>',
        'how strictly the configuration is checked (default: strict)',
      ).choices(CONFIG_LEVELS),
    )
    .option('-v, --verbose', 'log at debug level and show stacks of errors')
    .option(
      '--metrics-out <file.prom>',
      "after the run, succeeded or not, write its metrics there (node_exporter's textfile format)",
    )
    .option(
      '--pushgateway <url>',
      'after the run, succeeded or not, push its metrics to this Prometheus Pushgateway',
    )
    .addOption(
      new Option('--log-level <level>', 'log level').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
        'silent',
      ]),
    )
    .showSuggestionAfterError(true);
  for (const sub of [
    clusterCommand(),
    predictCommand(),
    scoreCommand(),
    benchCommand(),
    healthCommand(),
    metricsCommand(),
    privacyCommand(),
    keysCommand(),
    encryptCommand(),
    decryptCommand(),
    modelCommand(),
    auditCommand(),
    breakersCommand(),
    configCommand(),
  ])
    root.addCommand(sub);
  // Parser errors become the one-line error with exit 2; help and --version still exit 0.
  const quiet = { writeErr: () => {}, outputError: () => {} };
  root.exitOverride().configureOutput(quiet);
  const quietAll = (cmd: Command) => {
    for (const sub of cmd.commands) {
      sub.exitOverride().configureOutput(quiet);
      quietAll(sub);
    }
  };
  quietAll(root);
  return root;
}

export async function main(argv: readonly string[]): Promise<number> {
  const verbose = argv.includes('--verbose') || argv.includes('-v');
  const root = program();
  observeRegistry(defaultRegistry);
  try {
    await root.parseAsync(argv as string[]);
    // A command that finished with a verdict (validate, health) set it here.
    return Number(process.exitCode ?? 0);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return 0;
      if (error.code === 'commander.help' || error.code === 'commander.helpDisplayed') return 0;
      const message = error.message.replace(/^error: /, '');
      return reportError(new UsageError(message, 'NEUROCLUSTER_ERR_USAGE', { cause: error }), verbose);
    }
    return reportError(error, verbose);
  } finally {
    await defaultRegistry.disposeAll();
    await exportMetrics(root.opts());
  }
}

/**
 * The run's metrics, where --metrics-out and --pushgateway say. A failed export is reported on
 * stderr and leaves the exit status alone: the run's work is done and its status is its own.
 */
async function exportMetrics(opts: { metricsOut?: string; pushgateway?: string }): Promise<void> {
  const exports: [string, () => Promise<void>][] = [];
  if (opts.metricsOut) exports.push([`write ${opts.metricsOut}`, () => writeMetricsFile(opts.metricsOut!)]);
  if (opts.pushgateway) exports.push([`push to ${opts.pushgateway}`, () => pushMetrics(opts.pushgateway!)]);
  for (const [what, run] of exports) {
    try {
      await run();
    } catch (error) {
      warn(`could not ${what}: ${(error as Error).message}`);
    }
  }
}

/** True when this file is the process entry (also through npm's bin symlink). */
function isEntry(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
