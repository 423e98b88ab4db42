/**
 * Reading configuration documents and layering them: defaults < short environment aliases < file <
 * environment < explicit options (the environment layers come from levels.ts).
 */
import { readFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { type ConfigLevel, type ConfigProblem, checkConfig, SourcedLayer } from './levels.js';
import type { Config, ConfigOverrides } from './schema.js';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Merges `over` into `base` key by key; arrays and scalars replace, `undefined` leaves alone. */
export function deepMerge(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const prev = out[key];
    out[key] = isPlainObject(prev) && isPlainObject(value) ? deepMerge(prev, value) : value;
  }
  return out;
}

/** One layer of a configuration: a document, the environment's, or nothing. */
export type Layer = ConfigOverrides | Record<string, unknown> | SourcedLayer | undefined;

const documentOf = (layer: Layer) =>
  (layer instanceof SourcedLayer ? layer.document : layer) as Record<string, unknown> | undefined;

/** The layers merged in order, later ones winning key by key. */
export function mergeLayers(layers: readonly Layer[]): Record<string, unknown> {
  let merged: Record<string, unknown> = {};
  for (const layer of layers) {
    const doc = documentOf(layer);
    if (doc) merged = deepMerge(merged, doc);
  }
  return merged;
}

/** Whether a document sets a value at a path. */
function setsPath(doc: Record<string, unknown> | undefined, path: readonly string[]): boolean {
  let node: unknown = doc;
  for (const key of path) {
    if (!isPlainObject(node) || !Object.hasOwn(node, key)) return false;
    node = node[key];
  }
  return node !== undefined;
}

/**
 * The problems with the variable named where an environment layer set the value at (or above)
 * their path and no later layer replaced it: `NEUROCLUSTER_WASM_THREADS (engine.wasm.threads)`.
 */
function nameSources(layers: readonly Layer[], problems: readonly ConfigProblem[]): ConfigProblem[] {
  const owners = new Map<string, string>();
  layers.forEach((layer, i) => {
    if (!(layer instanceof SourcedLayer)) return;
    for (const [path, variable] of layer.sources) {
      const keys = path.split('.');
      if (!layers.slice(i + 1).some((later) => setsPath(documentOf(later), keys))) owners.set(path, variable);
    }
  });
  return problems.map((problem) => {
    let owner: [string, string] | undefined;
    for (const [path, variable] of owners) {
      const covers = problem.path === path || problem.path.startsWith(`${path}.`);
      if (covers && (!owner || path.length > owner[0].length)) owner = [path, variable];
    }
    return owner ? { ...problem, path: `${owner[1]} (${problem.path})` } : problem;
  });
}

/**
 * Validates layered documents at a level (see levels.ts), filling in defaults; throws one
 * ConfigError naming every error, and returns the warnings (deprecated aliases, repairs). A
 * problem with a value from the environment names its variable; the environment's own problems
 * (a name that matches nothing) count at the level as an unknown key does.
 */
export function resolveConfigChecked(
  layers: readonly Layer[],
  level: ConfigLevel = 'strict',
): { config: Config; warnings: readonly ConfigProblem[] } {
  const checked = checkConfig(mergeLayers(layers), level);
  const problems = [
    ...layers.flatMap((layer) => (layer instanceof SourcedLayer ? layer.problems(level) : [])),
    ...nameSources(layers, checked.problems),
  ];
  const config = problems.some((p) => p.severity === 'error') ? undefined : checked.config;
  if (!config) {
    const errors = problems.filter((p) => p.severity === 'error');
    throw new ConfigError(
      `invalid configuration: ${errors.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
    );
  }
  return { config, warnings: problems.filter((p) => p.severity === 'warning') };
}

/** Validates a layered document strictly against the schema, filling in defaults. */
export function resolveConfig(...layers: Layer[]): Config {
  return resolveConfigChecked(layers).config;
}

/** Reads a `.json`, `.yaml` or `.yml` configuration file (not yet validated). */
export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    // A FIFO or a device would block the read (or never end): only a regular file is read.
    const kind = await stat(path);
    if (!kind.isFile()) throw new Error(`${path} is not a regular file`);
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`cannot read configuration file: ${(cause as Error).message}`, {
      cause,
      location: { file: path },
    });
  }
  const ext = extname(path).toLowerCase();
  let doc: unknown;
  try {
    if (ext === '.json') doc = JSON.parse(text);
    // yaml is loaded for a YAML file only: every run would otherwise pay for it at start.
    else if (ext === '.yaml' || ext === '.yml')
      doc = (await import('yaml')).parse(text, { logLevel: 'error' });
    else throw new Error(`unknown extension "${ext}" (use .json, .yaml or .yml)`);
  } catch (cause) {
    throw new ConfigError(`cannot parse configuration file: ${(cause as Error).message}`, {
      cause,
      location: { file: path },
    });
  }
  if (doc === null || doc === undefined) return {};
  if (!isPlainObject(doc)) {
    throw new ConfigError('configuration document must be an object of sections', {
      location: { file: path },
    });
  }
  return doc;
}
