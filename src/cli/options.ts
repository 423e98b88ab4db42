/**
 * CLI flags derived from the configuration schema: each flag names a schema path, and takes its
 * description, choices and default from there, so flags and config files cannot drift apart.
 * Flags carry no commander default: an unset flag must not hide a value from the config file.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { z } from 'zod';
import { SourcedLayer } from '../config/levels.js';
import { configSchema, unwrapField } from '../config/schema.js';

/** The zod node at a dotted path of the config schema, unwrapped of default/optional. */
function fieldAt(path: string): { node: z.ZodType; defaultValue: unknown; description: string | undefined } {
  let node: z.ZodType = configSchema;
  for (const key of path.split('.')) {
    node = unwrapField(node).node;
    const shape = (node as unknown as { shape?: Record<string, z.ZodType> }).shape;
    if (!shape?.[key]) throw new Error(`no schema field at ${path}`);
    node = shape[key];
  }
  const description = node.description;
  const { node: inner, defaultValue } = unwrapField(node);
  return { node: inner, defaultValue, description: description ?? inner.description };
}

export function parseInteger(value: string): number {
  if (!/^[+-]?\d+$/.test(value.trim())) throw new InvalidArgumentError(`"${value}" is not an integer`);
  return Number(value);
}

export function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n))
    throw new InvalidArgumentError(`"${value}" is not a number`);
  return n;
}

/** A flag bound to a schema path. */
export interface SchemaFlag {
  readonly option: Option;
  /** The commander attribute name of the option. */
  readonly attribute: string;
  readonly path: string;
}

/** Makes a commander Option for a schema path, typed and described by the schema. */
export function schemaFlag(flags: string, path: string): SchemaFlag {
  const { node, defaultValue, description } = fieldAt(path);
  const type = (node as unknown as { def: { type: string; format?: string } }).def;
  const text = description ?? path;
  // A `--no-x` flag turns off a setting that is on by default; say so rather than "default: true".
  const option = flags.startsWith('--no-')
    ? new Option(flags, `turn off: ${text}`)
    : new Option(
        flags,
        `${text}${defaultValue === undefined ? '' : ` (default: ${JSON.stringify(defaultValue)})`}`,
      );
  if (type.type === 'enum') {
    option.choices((node as unknown as { options: string[] }).options);
  } else if (type.type === 'number') {
    option.argParser(type.format === 'safeint' || type.format === 'int32' ? parseInteger : parseNumber);
  }
  return { option, attribute: option.attributeName(), path };
}

/**
 * The overrides made of the flags the user actually gave (commander's implied defaults, such as
 * `true` for a `--no-x` flag, are left out so the config file still counts), each key named by its
 * flag, so that a bad value says `--k (kmeans.nClusters): ...`.
 */
export function overridesFrom(flags: readonly SchemaFlag[], command: Command): SourcedLayer {
  const doc: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  const values = command.opts();
  for (const { option, attribute, path } of flags) {
    const value = values[attribute];
    if (value === undefined || command.getOptionValueSource(attribute) !== 'cli') continue;
    sources.set(path, option.long ?? option.flags);
    const keys = path.split('.');
    let node = doc;
    for (const key of keys.slice(0, -1)) {
      node[key] ??= {};
      node = node[key] as Record<string, unknown>;
    }
    node[keys.at(-1)!] = value;
  }
  return new SourcedLayer(doc, sources);
}

/** A command over one input file whose configuration flags are `flags` (cluster, predict, score). */
export function fileCommand(name: string, file: string, flags: readonly SchemaFlag[]): Command {
  const cmd = new Command(name).argument('<file>', file);
  for (const f of flags) cmd.addOption(f.option);
  return cmd;
}
