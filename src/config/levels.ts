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
 *
 * The environment is read here too (see below): its variables become layers checked the same way.
 */
import { ZodBoolean, ZodEnum, ZodNumber, ZodObject, ZodRecord, ZodString, type z } from 'zod';
import { PROCESS_VARIABLES, parseSwitch } from './home.js';
import type { ConfigLevel } from './level-names.js';
import { type Config, configSchema, durationMs, unwrapField } from './schema.js';

export { CONFIG_LEVELS, type ConfigLevel } from './level-names.js';

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

/** Edits between two names (Levenshtein), compared as {@link bare} names. */
function distance(a: string, b: string): number {
  const x = bare(a);
  const y = bare(b);
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const row = [i];
    for (let j = 1; j <= y.length; j++) {
      row[j] = Math.min(
        previous[j]! + 1,
        row[j - 1]! + 1,
        previous[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[y.length]!;
}

/**
 * For unknown keys of the object at `path`, the known keys they are likely typos of: ` (did you
 * mean "units"?)`, or nothing when no key is within a third of the name's length in edits.
 */
export function didYouMean(path: readonly PropertyKey[], keys: readonly string[]): string {
  let node: z.ZodType = configSchema;
  for (const key of path) {
    const inner = unwrapField(node).node;
    if (!(inner instanceof ZodObject)) return '';
    node = (inner.shape as Record<string, z.ZodType>)[String(key)]!;
    if (!node) return '';
  }
  const inner = unwrapField(node).node;
  if (!(inner instanceof ZodObject)) return '';
  const known = Object.keys(inner.shape as Record<string, z.ZodType>);
  const guesses = keys.flatMap((key) => {
    const ranked = known.map((k) => ({ k, d: distance(key, k) })).sort((a, b) => a.d - b.d);
    const best = ranked[0];
    return best && best.d <= Math.max(1, Math.floor(key.length / 3)) ? [`"${best.k}"`] : [];
  });
  return guesses.length > 0 ? ` (did you mean ${guesses.join(', ')}?)` : '';
}

/** Repairs one issue as the level allows; the problem it reports, and whether it repaired it. */
function repair(
  doc: Doc,
  issue: z.core.$ZodIssue,
  level: ConfigLevel,
): { problem: ConfigProblem; fixed: boolean } {
  const at = pathOf(issue.path);
  const message =
    issue.code === 'unrecognized_keys'
      ? `${issue.message}${didYouMean(issue.path, issue.keys)}`
      : issue.message;
  const error = { problem: { path: at, message, severity: 'error' as const }, fixed: false };
  if (level === 'strict') return error;
  if (issue.code === 'unrecognized_keys') {
    const node = issue.path.length ? parentOf(doc, issue.path) : undefined;
    const target = node ? node[0][node[1]] : doc;
    if (!isObject(target)) return error;
    for (const key of issue.keys) delete target[key];
    return {
      problem: { path: at, message: `${message}: ignored`, severity: 'warning' },
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
    c.encoders.esn.stateComponents > c.encoders.esn.units
      ? ['encoders.esn.stateComponents', `is more than encoders.esn.units (${c.encoders.esn.units})`]
      : undefined,
  // Each member keeps centroids of its own clusters, which k-anonymity does not merge.
  (c) =>
    c.encoders.consensus === 'co-association' &&
    c.encoders.members !== 'auto' &&
    c.encoders.members > 1 &&
    c.privacy.minClusterSize !== undefined
      ? [
          'encoders.consensus',
          'co-association keeps every member\'s own clusters, which privacy.minClusterSize does not merge: use "stack"',
        ]
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

/*
 * The environment. Every NEUROCLUSTER_* variable is one of three kinds, and each goes through the
 * schema like a key of a file (same checks, same caps, same levels), named as the variable:
 *
 * - a key: NEUROCLUSTER_<KEY>[__<KEY>...], one part per level of the document, each part matched
 *   against the schema's own keys in any case with underscores ignored (MEMORY_BUDGET_MB is
 *   memoryBudgetMB, TIMEOUT the top-level timeout); an override, over the configuration file;
 * - a short alias of a key (ENVIRONMENT_ALIASES): a default, under the configuration file;
 * - a setting of the process that is not a key (PROCESS_VARIABLES: the home, the keyring...).
 *
 * Anything else is reported as an unknown key is: an error under strict, else a warning.
 */

/** Short names of keys, kept from the first versions; they are defaults, under any file. */
export const ENVIRONMENT_ALIASES: Readonly<Record<string, string>> = {
  NEUROCLUSTER_WASM_THREADS: 'engine.wasm.threads',
  NEUROCLUSTER_WEBGPU_ADAPTER: 'engine.webgpu.adapter',
  NEUROCLUSTER_WEBGPU_ALLOW_SOFTWARE: 'engine.webgpu.allowSoftware',
  NEUROCLUSTER_WEBGPU_MEMORY_BUDGET_MB: 'engine.webgpu.memoryBudgetMB',
  NEUROCLUSTER_FAULT: 'faults.inject',
};

const PREFIX = 'NEUROCLUSTER_';

/** What is wrong with one variable, before the level decides how much it matters. */
interface Finding {
  readonly variable: string;
  readonly message: string;
  /** `unknown`: treated as an unknown key; `value`: as a bad value. */
  readonly kind: 'unknown' | 'value';
}

/**
 * A layer of configuration whose every key came from a named source: an environment variable, or
 * a command-line flag. resolveConfigChecked (load.ts) names the source in every problem at a path
 * the layer set, and adds the problems of the sources themselves (a variable that matches nothing).
 */
export class SourcedLayer {
  constructor(
    readonly document: Doc,
    /** Each dotted path the layer sets, and the variable or flag that set it. */
    readonly sources: ReadonlyMap<string, string>,
    private readonly findings: readonly Finding[] = [],
  ) {}

  /** The problems of the variables themselves at a level, as those of unknown keys and bad values. */
  problems(level: ConfigLevel): ConfigProblem[] {
    return this.findings.map(({ variable, message, kind }): ConfigProblem => {
      const error = level === 'strict' || (kind === 'value' && level === 'moderate');
      if (error) return { path: variable, message, severity: 'error' };
      const outcome = kind === 'unknown' ? 'ignored' : 'the default is used instead';
      return { path: variable, message: `${message}: ${outcome}`, severity: 'warning' };
    });
  }
}

/** A key as an environment name part: memoryBudgetMB is MEMORY_BUDGET_MB. */
const screaming = (key: string) =>
  key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1_$2')
    .toUpperCase();

/** The variable of a dotted path: `monitoring.memoryBudgetMB` is NEUROCLUSTER_MONITORING__MEMORY_BUDGET_MB. */
export function environmentName(path: string): string {
  return PREFIX + path.split('.').map(screaming).join('__');
}

/** Letters and digits only, in lower case: how a name part and a key are compared. */
const bare = (name: string) => name.replace(/_/g, '').toLowerCase();

/** Every dotted path of the schema: sections, subsections and keys (the free keys of records aside). */
export function schemaPaths(node: z.ZodType = configSchema, prefix = ''): string[] {
  const inner = unwrapField(node).node;
  if (!(inner instanceof ZodObject)) return [];
  return Object.entries(inner.shape as Record<string, z.ZodType>).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return [path, ...schemaPaths(child, path)];
  });
}

/** The schema node at a dotted path of the schema. */
function nodeAt(path: string): z.ZodType {
  let node: z.ZodType = configSchema;
  for (const key of path.split('.')) node = (unwrapField(node).node as ZodObject).shape[key] as z.ZodType;
  return node;
}

/** The path and schema node a NEUROCLUSTER_<KEY>[__<KEY>...] name stands for; undefined for none. */
function keyOfName(name: string): { path: string[]; node: z.ZodType } | undefined {
  const path: string[] = [];
  let node: z.ZodType = configSchema;
  for (const part of name.slice(PREFIX.length).split('__')) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_]*$/.test(part)) return undefined;
    const inner = unwrapField(node).node;
    if (inner instanceof ZodObject) {
      const shape = inner.shape as Record<string, z.ZodType>;
      const key = Object.keys(shape).find((k) => bare(k) === bare(part));
      if (key === undefined) return undefined;
      path.push(key);
      node = shape[key]!;
    } else if (inner instanceof ZodRecord) {
      // The free keys of a record (a transport's options) in camelCase.
      path.push(camel(part.toLowerCase()));
      node = inner.valueType as z.ZodType;
    } else {
      return undefined;
    }
  }
  return { path, node };
}

/** A variable's text as the value its key expects: strings stay strings, switches, numbers, JSON. */
function valueFor(node: z.ZodType, raw: string): unknown {
  const inner = unwrapField(node).node;
  if (inner instanceof ZodString || inner instanceof ZodEnum) return raw;
  if (inner instanceof ZodBoolean) return parseSwitch(raw) ?? raw;
  if (inner instanceof ZodNumber) {
    const n = Number(raw);
    return Number.isFinite(n) ? n : raw;
  }
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** Sets a value at a path, every level an own property (a free key such as `constructor` included). */
function setAt(doc: Doc, path: readonly string[], value: unknown): void {
  let node = doc;
  for (const [i, key] of path.entries()) {
    const next =
      i === path.length - 1 ? value : Object.hasOwn(node, key) && isObject(node[key]) ? node[key] : {};
    Object.defineProperty(node, key, { value: next, enumerable: true, writable: true, configurable: true });
    node = next as Doc;
  }
}

/** Why a name matches nothing, with the name meant when the same letters spell one. */
function unknownName(name: string): string {
  const letters = bare(name.slice(PREFIX.length));
  const meant = schemaPaths().find((path) => bare(path.replace(/\./g, '')) === letters);
  return `matches no configuration key${meant ? ` (did you mean ${environmentName(meant)}?)` : ''}`;
}

/** The set (non-blank) NEUROCLUSTER_* variables, in name order. */
function variables(env: NodeJS.ProcessEnv): [string, string][] {
  return Object.entries(env)
    .filter((e): e is [string, string] => e[0].startsWith(PREFIX) && e[1] !== undefined && e[1].trim() !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The short aliases set in the environment: defaults, layered under the configuration file. */
export function environmentDefaults(env: NodeJS.ProcessEnv = process.env): SourcedLayer {
  const doc: Doc = {};
  const sources = new Map<string, string>();
  for (const [name, raw] of variables(env)) {
    const path = Object.hasOwn(ENVIRONMENT_ALIASES, name) ? ENVIRONMENT_ALIASES[name] : undefined;
    if (path === undefined) continue;
    setAt(doc, path.split('.'), valueFor(nodeAt(path), raw));
    sources.set(path, name);
  }
  return new SourcedLayer(doc, sources);
}

/**
 * The keys set in the environment (`NEUROCLUSTER_CIRCUIT_BREAKER__FAILURE_THRESHOLD=3`): overrides,
 * layered over the configuration file; with the problems of every other NEUROCLUSTER_* variable
 * (a name that matches nothing, a key set twice, a bad NEUROCLUSTER_METRICS). The short aliases
 * are {@link environmentDefaults}'. A blank variable counts as unset.
 */
export function environmentOverrides(env: NodeJS.ProcessEnv = process.env): SourcedLayer {
  const doc: Doc = {};
  const sources = new Map<string, string>();
  const findings: Finding[] = [];
  for (const [name, raw] of variables(env)) {
    if (Object.hasOwn(ENVIRONMENT_ALIASES, name)) continue;
    if (Object.hasOwn(PROCESS_VARIABLES, name)) {
      const message = PROCESS_VARIABLES[name]!(raw);
      if (message) findings.push({ variable: name, message, kind: 'value' });
      continue;
    }
    const key = keyOfName(name);
    if (!key) {
      findings.push({ variable: name, message: unknownName(name), kind: 'unknown' });
      continue;
    }
    const path = key.path.join('.');
    const first = sources.get(path);
    if (first !== undefined) {
      findings.push({ variable: name, message: `sets ${path}, as ${first} does`, kind: 'unknown' });
      continue;
    }
    const value = valueFor(key.node, raw);
    // A section (NEUROCLUSTER_ENGINE=x) takes a JSON object; anything else would be lost under
    // the keys a later layer (a flag) sets in it, so it is refused here.
    if (unwrapField(key.node).node instanceof ZodObject && !isObject(value)) {
      findings.push({
        variable: `${name} (${path})`,
        message: `expected a JSON object of its keys (or one key: ${environmentName(`${path}.<key>`)})`,
        kind: 'value',
      });
      continue;
    }
    setAt(doc, key.path, value);
    sources.set(path, name);
  }
  return new SourcedLayer(doc, sources, findings);
}
