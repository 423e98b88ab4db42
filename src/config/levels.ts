/**
 * Checking a configuration document at a level, as an operator would want it checked:
 *
 * - `strict`: unknown keys and out-of-range values are errors (the default).
 * - `moderate`: unknown keys are dropped with a warning; numbers out of range are clamped to the
 *   range with a warning; anything else wrong is an error.
 * - `permissive`: as moderate, and any other bad value is replaced by its default with a warning.
 *
 * At every level the original system's snake_case keys (`circuit_breaker.failure_threshold`) are
 * read as their camelCase keys with a deprecation warning, and the cross-field rules are checked
 * (errors, except under `permissive`, where they warn). Every problem is `<path>: <message>`.
 */
import type { z } from 'zod';
import { type Config, configSchema, durationMs } from './schema.js';

export const CONFIG_LEVELS = ['strict', 'moderate', 'permissive'] as const;
export type ConfigLevel = (typeof CONFIG_LEVELS)[number];

export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
  readonly severity: 'error' | 'warning';
}

export interface CheckedConfig {
  /** The resolved configuration, when no problem is an error. */
  readonly config: Config | undefined;
  readonly problems: readonly ConfigProblem[];
}

/** Keys of the original system whose names changed beyond snake_case to camelCase. */
const RENAMED: Record<string, string> = {
  'quality_gates.silhouette_threshold': 'qualityGates.minSilhouette',
  'quality_gates.calinski_harabasz_threshold': 'qualityGates.minCalinskiHarabasz',
  'quality_gates.min_cluster_size': 'qualityGates.minClusterSize',
  'circuit_breaker.recovery_timeout_seconds': 'circuitBreaker.recoveryTimeout',
};

type Doc = Record<string, unknown>;

function isObject(v: unknown): v is Doc {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const camel = (key: string) => key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** The document with snake_case keys renamed to camelCase, one warning per renamed key. */
function renameAliases(
  doc: Doc,
  problems: ConfigProblem[],
  prefix: string[] = [],
  oldPrefix: string[] = [],
): Doc {
  const out: Doc = {};
  for (const [key, value] of Object.entries(doc)) {
    const oldPath = [...oldPrefix, key].join('.');
    const alias = Object.hasOwn(RENAMED, oldPath) ? RENAMED[oldPath] : undefined;
    const renamed = alias?.split('.').at(-1) ?? (key.includes('_') ? camel(key) : key);
    if (renamed !== key) {
      const path = [...prefix, renamed].join('.');
      problems.push({
        path: oldPath,
        message: `deprecated alias of ${path}; write ${path}`,
        severity: 'warning',
      });
    }
    // An own property even for a key such as __proto__ (then reported as unknown, never a prototype).
    Object.defineProperty(out, renamed, {
      value: isObject(value)
        ? renameAliases(value, problems, [...prefix, renamed], [...oldPrefix, key])
        : value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function pathOf(path: readonly PropertyKey[]): string {
  return path.length ? path.map(String).join('.') : '(document)';
}

/** The object that holds the last key of `path` in `doc`, and that key; undefined if there is none. */
function parentOf(doc: Doc, path: readonly PropertyKey[]): [Doc, string] | undefined {
  let node: unknown = doc;
  for (const key of path.slice(0, -1)) {
    if (!isObject(node)) return undefined;
    node = node[String(key)];
  }
  return isObject(node) && path.length > 0 ? [node, String(path.at(-1))] : undefined;
}

/** Repairs one issue as the level allows; the problem it reports, and whether it repaired it. */
function repair(
  doc: Doc,
  issue: z.core.$ZodIssue,
  level: ConfigLevel,
): { problem: ConfigProblem; fixed: boolean } {
  const at = pathOf(issue.path);
  const error = { problem: { path: at, message: issue.message, severity: 'error' as const }, fixed: false };
  if (level === 'strict') return error;
  if (issue.code === 'unrecognized_keys') {
    const node = issue.path.length ? parentOf(doc, issue.path) : undefined;
    const target = node ? node[0][node[1]] : doc;
    if (!isObject(target)) return error;
    for (const key of issue.keys) delete target[key];
    return {
      problem: { path: at, message: `${issue.message}: ignored`, severity: 'warning' },
      fixed: true,
    };
  }
  const parent = parentOf(doc, issue.path);
  if (!parent) return error;
  const [node, key] = parent;
  // Clamped to an inclusive bound (an exclusive one, such as "> 0", has no nearest value to take).
  if (
    (issue.code === 'too_small' || issue.code === 'too_big') &&
    issue.inclusive !== false &&
    typeof node[key] === 'number'
  ) {
    const clamped = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
    const was = node[key];
    node[key] = clamped;
    return {
      problem: { path: at, message: `${issue.message}: ${was} clamped to ${clamped}`, severity: 'warning' },
      fixed: true,
    };
  }
  if (level !== 'permissive') return error;
  delete node[key];
  return {
    problem: { path: at, message: `${issue.message}: the default is used instead`, severity: 'warning' },
    fixed: true,
  };
}

/** Rules that span keys: each returns the path and message of a violation, or nothing. */
const CROSS_FIELD_RULES: readonly ((c: Config) => [string, string] | undefined)[] = [
  (c) =>
    durationMs(c.retry.baseDelay) > durationMs(c.retry.maxDelay)
      ? ['retry.baseDelay', `is longer than retry.maxDelay (${c.retry.maxDelay})`]
      : undefined,
  (c) =>
    c.encoders.esn.washout >= c.encoders.esn.steps
      ? ['encoders.esn.washout', `leaves no step of encoders.esn.steps (${c.encoders.esn.steps})`]
      : undefined,
  (c) =>
    c.encoders.esn.timePoints > c.encoders.esn.steps
      ? ['encoders.esn.timePoints', `is more than encoders.esn.steps (${c.encoders.esn.steps})`]
      : undefined,
  ...(['memory', 'cpu', 'disk'] as const).map((r) => (c: Config): [string, string] | undefined => {
    const warning = c.monitoring[`${r}Warning`];
    const critical = c.monitoring[`${r}Critical`];
    return warning >= critical
      ? [`monitoring.${r}Warning`, `must be below monitoring.${r}Critical (${critical})`]
      : undefined;
  }),
  (c) =>
    c.circuitBreaker.strategy === 'sampling' && durationMs(c.circuitBreaker.samplingWindow) < 1000
      ? ['circuitBreaker.samplingWindow', 'must be at least 1s for the sampling strategy']
      : undefined,
];

/** Checks a (layered) document at a level; the resolved configuration when nothing is an error. */
/** Deepest nesting a configuration document may have (the schema needs 4). */
const MAX_DEPTH = 32;

/** How deep a value nests, counted without recursion (a hostile document may nest 100,000 deep). */
function depthOf(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    deepest = Math.max(deepest, d);
    if (d > MAX_DEPTH) return d;
    if (typeof v === 'object' && v !== null) for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return deepest;
}

export function checkConfig(document: Doc, level: ConfigLevel = 'strict'): CheckedConfig {
  const problems: ConfigProblem[] = [];
  if (!isObject(document)) {
    problems.push({ path: '(document)', message: 'must be an object of sections', severity: 'error' });
    return { config: undefined, problems };
  }
  if (depthOf(document) > MAX_DEPTH) {
    problems.push({
      path: '(document)',
      message: `nested deeper than ${MAX_DEPTH} levels`,
      severity: 'error',
    });
    return { config: undefined, problems };
  }
  const doc = renameAliases(structuredClone(document), problems);
  // Each round repairs what the level allows; a repair can uncover another issue beneath it.
  for (let round = 0; round < 8; round++) {
    const parsed = configSchema.safeParse(doc);
    if (parsed.success) {
      for (const rule of CROSS_FIELD_RULES) {
        const broken = rule(parsed.data);
        if (broken) {
          problems.push({
            path: broken[0],
            message: broken[1],
            severity: level === 'permissive' ? 'warning' : 'error',
          });
        }
      }
      const failed = problems.some((p) => p.severity === 'error');
      return { config: failed ? undefined : parsed.data, problems };
    }
    let allFixed = true;
    for (const issue of parsed.error.issues) {
      const { problem, fixed } = repair(doc, issue, level);
      problems.push(problem);
      allFixed &&= fixed;
    }
    if (!allFixed) return { config: undefined, problems };
  }
  return { config: undefined, problems };
}

/**
 * Overrides from the environment: `NEUROCLUSTER_<SECTION>__<KEY>[__<KEY>...]`, each part in
 * SCREAMING_SNAKE_CASE (`NEUROCLUSTER_CIRCUIT_BREAKER__FAILURE_THRESHOLD=3` sets
 * `circuitBreaker.failureThreshold`); values are read as JSON when they parse (numbers, booleans,
 * arrays), else as strings. Variables without `__` (NEUROCLUSTER_HOME, ...) are not config keys.
 */
export function environmentOverrides(env: NodeJS.ProcessEnv = process.env): Doc {
  const doc: Doc = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('NEUROCLUSTER_') || !name.includes('__') || raw === undefined) continue;
    const keys = name
      .slice('NEUROCLUSTER_'.length)
      .split('__')
      .map((part) => camel(part.toLowerCase()));
    if (keys.some((k) => k === '')) continue;
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    let node = doc;
    for (const key of keys.slice(0, -1)) {
      if (!isObject(node[key])) node[key] = {};
      node = node[key] as Doc;
    }
    node[keys.at(-1)!] = value;
  }
  return doc;
}
