#!/usr/bin/env node
/**
 * The `neurocluster` command. stdout carries results only (with --json, exactly one JSON line);
 * logs, warnings and progress go to stderr. Exit status: 0 done, 2 bad usage or bad input,
 * 1 any other failure.
 */
import { mkdirSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Help, Option } from 'commander';
import { CONFIG_LEVELS } from '../config/level-names.js';
import { UsageError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { closeProcessRuntime } from '../runtime/process.js';
import { COMMANDS, requestedCommand } from './commands/index.js';
import { reportError, warn } from './output.js';

/** The command line: the root's options, the command asked for, and the others as names for the help. */
async function program(argv: readonly string[]): Promise<Command> {
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
      new Option('--log-format <format>', 'log lines for people (human, the default) or pino JSON').choices([
        'human',
        'json',
      ]),
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
  const wanted = requestedCommand(argv.slice(2), root);
  for (const entry of COMMANDS) {
    const sub = entry.name === wanted ? await entry.load() : new Command(entry.name);
    root.addCommand(sub.description(entry.description));
  }
  const terms = new Map(COMMANDS.map((c) => [c.name, c.term]));
  const help = new Help();
  root.configureHelp({ subcommandTerm: (cmd) => terms.get(cmd.name()) ?? help.subcommandTerm(cmd) });
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

/**
 * Dawn's Linux windowing code prints "XDG_RUNTIME_DIR is invalid" to stderr on a headless machine
 * (a server, a CI runner), which reads like a failure. The command owns its process, so it gives
 * Dawn a private runtime directory, as a login session would, when none is set (the WebGPU
 * adapter search's child inherits it). The library never writes the environment: a program that
 * embeds the engine on a headless machine sets XDG_RUNTIME_DIR itself (see docs/backends.md).
 */
function giveDawnARuntimeDir(): void {
  if (process.env.XDG_RUNTIME_DIR || process.platform !== 'linux') return;
  const dir = join(tmpdir(), `neurocluster-runtime-${process.getuid?.() ?? 'user'}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  } catch {
    // Only a cosmetic line on stderr is at stake.
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  giveDawnARuntimeDir();
  const verbose = argv.includes('--verbose') || argv.includes('-v');
  const root = await program(argv);
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
    // The process's runtime (backends, metrics, trackers), if the command made it.
    await closeProcessRuntime();
    await exportMetrics(root.opts());
  }
}

/**
 * The run's metrics, where --metrics-out and --pushgateway say. A failed export is reported on
 * stderr and leaves the exit status alone: the run's work is done and its status is its own.
 */
async function exportMetrics(opts: { metricsOut?: string; pushgateway?: string }): Promise<void> {
  if (!opts.metricsOut && !opts.pushgateway) return;
  const { pushMetrics, writeMetricsFile } = await import('../observability/export.js');
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
    // The command has its verdict: what a failed start may leave open (a connection to a queue
    // still retrying) does not keep the process. Unreferenced: a process done sooner exits sooner.
    setTimeout(() => process.exit(code), 1000).unref();
  });
}
