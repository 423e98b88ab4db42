/** Reading configuration documents and layering them: defaults < file < explicit options. */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../resilience/errors.js';
import { type ConfigLevel, type ConfigProblem, checkConfig } from './levels.js';
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

type Layer = ConfigOverrides | Record<string, unknown> | undefined;

/** The layers merged in order, later ones winning key by key. */
export function mergeLayers(layers: readonly Layer[]): Record<string, unknown> {
  let merged: Record<string, unknown> = {};
  for (const layer of layers) if (layer) merged = deepMerge(merged, layer as Record<string, unknown>);
  return merged;
}

/**
 * Validates layered documents at a level (see levels.ts), filling in defaults; throws one
 * ConfigError naming every error, and returns the warnings (deprecated aliases, repairs).
 */
export function resolveConfigChecked(
  layers: readonly Layer[],
  level: ConfigLevel = 'strict',
): { config: Config; warnings: readonly ConfigProblem[] } {
  const { config, problems } = checkConfig(mergeLayers(layers), level);
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
    else if (ext === '.yaml' || ext === '.yml') doc = parseYaml(text, { logLevel: 'error' });
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
