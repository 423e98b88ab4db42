/**
 * `neurocluster config schema`: the JSON Schema of the configuration document (from the zod
 * schema, so it cannot drift). `neurocluster config validate <file> [--level ...]`: every problem
 * of a file as `<path.in.document>: <message>`, exit 2 when any is an error.
 */
import { Command, Option } from 'commander';
import { z } from 'zod';
import { CONFIG_LEVELS, type ConfigLevel, checkConfig } from '../../config/levels.js';
import { readConfigFile } from '../../config/load.js';
import { configSchema } from '../../config/schema.js';
import type { GlobalFlags } from '../context.js';

/** The JSON Schema (draft 2020-12) of what a configuration file may contain. */
export function configJsonSchema(): Record<string, unknown> {
  return {
    $id: 'https://github.com/neurocluster/neurocluster/config.schema.json',
    title: 'neurocluster configuration',
    ...z.toJSONSchema(configSchema, { io: 'input' }),
  };
}

export function configCommand(): Command {
  const cmd = new Command('config');
  cmd
    .command('schema')
    .description('print the JSON Schema of the configuration document')
    .action(() => {
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    });
  cmd
    .command('validate')
    .description(
      'check a configuration file; every problem as <path>: <message>; exit 2 when any is an error',
    )
    .argument('<file>', 'configuration file (.json, .yaml, .yml)')
    .addOption(new Option('--level <level>', 'how strictly').choices(CONFIG_LEVELS).default('strict'))
    .action(async (file: string, opts: { level: ConfigLevel }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const { config, problems } = checkConfig(await readConfigFile(file), opts.level);
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({ file, level: opts.level, valid: config !== undefined, problems })}\n`,
        );
      } else {
        // `<path.in.document>: <message>`; a warning says so at the end.
        for (const p of problems) {
          process.stdout.write(`${p.path}: ${p.message}${p.severity === 'warning' ? ' (warning)' : ''}\n`);
        }
        if (problems.length === 0) process.stdout.write(`${file}: valid (${opts.level})\n`);
      }
      if (!config) process.exitCode = 2;
    });
  return cmd;
}
