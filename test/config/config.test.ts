import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { configJsonSchema } from '../../src/cli/commands/config.js';
import { neuroclusterHome } from '../../src/config/home.js';
import { checkConfig, environmentOverrides } from '../../src/config/levels.js';
import { deepMerge, readConfigFile, resolveConfig, resolveConfigChecked } from '../../src/config/load.js';
import { configSchema, durationMs } from '../../src/config/schema.js';
import { ROOT, tempDir } from '../helpers.js';

const dir = tempDir();

describe('configuration schema', () => {
  it('fills every default from the one schema', () => {
    const c = resolveConfig();
    expect(c.engine).toEqual({
      method: 'auto',
      backend: 'auto',
      seed: 0,
      silhouetteExactMaxSamples: 10_000,
      smallProblemSize: 20_000,
      webgpu: {},
      wasm: {},
    });
    // The original system's encoder defaults.
    expect(c.encoders.esn).toMatchObject({ units: 100, spectralRadius: 0.95, leak: 0.3 });
    expect(c.encoders.snn).toMatchObject({ neurons: 50, threshold: 1, tauMembrane: 20, tauSynaptic: 5 });
    expect(c.encoders.snn).toMatchObject({ dt: 1, duration: 100, maxRate: 100 });
    expect(c.encoders.lsm).toMatchObject({
      neurons: 64,
      connectivity: 0.3,
      tauMembrane: 30,
      excitatory: 0.8,
    });
    expect(c.kmeans).toMatchObject({ nInit: 10, maxIter: 300, tol: 1e-4, algorithm: 'auto' });
    expect(c.data).toMatchObject({ nanPolicy: 'error', standardize: true });
    expect(c.logging.level).toBe('warn');
  });

  it('has every top-level section of the original system, in camelCase, and the resilience, audit, stream, output, service and distributed ones', () => {
    expect(Object.keys(configSchema.shape).sort()).toEqual(
      [
        'audit',
        'circuitBreaker',
        'data',
        'distributed',
        'encoders',
        'engine',
        'errorTracking',
        'fallback',
        'faults',
        'kmeans',
        'logging',
        'metrics',
        'monitoring',
        'output',
        'performance',
        'privacy',
        'qualityGates',
        'retry',
        'security',
        'service',
        'stream',
        'timeout',
      ].sort(),
    );
  });

  it('suggests the key a typo was likely meant for, at every level', () => {
    const doc = { encoders: { esn: { unit: 50 } }, kmeans: { ninit: 3, zzz: 1 }, streem: {} };
    const strict = checkConfig(doc, 'strict').problems.map((p) => `${p.path}: ${p.message}`);
    expect(strict).toEqual([
      'encoders.esn: Unrecognized key: "unit" (did you mean "units"?)',
      'kmeans: Unrecognized keys: "ninit", "zzz" (did you mean "nInit"?)',
      '(document): Unrecognized key: "streem" (did you mean "stream"?)',
    ]);
    const permissive = checkConfig(doc, 'permissive').problems.map((p) => p.message);
    expect(permissive[0]).toBe('Unrecognized key: "unit" (did you mean "units"?): ignored');
  });

  it('has the resilience defaults of the original system, durations kept as written', () => {
    const c = resolveConfig();
    expect(c.circuitBreaker).toMatchObject({
      failureThreshold: 5,
      recoveryTimeout: '60s',
      strategy: 'consecutive',
    });
    expect(c.retry).toMatchObject({ maxRetries: 2, baseDelay: '1s' });
    expect(c.timeout).toBe('10m');
    expect(c.fallback).toEqual({ enabled: true, degradeOrder: ['webgpu', 'wasm', 'js'] });
    // Resolving a resolved document again means the same (a duration is not converted twice).
    expect(resolveConfig(c as never).retry).toEqual(c.retry);
    expect([
      durationMs('500ms'),
      durationMs('3s'),
      durationMs('10m'),
      durationMs('1h'),
      durationMs(2),
    ]).toEqual([500, 3000, 600_000, 3_600_000, 2000]);
    expect(() => resolveConfig({ timeout: '3 parsecs' })).toThrow(/timeout: .*not a positive duration/);
    // Past what a timer can wait, Node fires it at once: refused, not a spurious timeout.
    for (const timeout of [1e308, '2147484s', '600h'])
      expect(() => resolveConfig({ timeout }), String(timeout)).toThrow(/timeout: .*at most 24 days/);
    expect(resolveConfig({ timeout: '2147483s' }).timeout).toBe('2147483s');
    expect(() => resolveConfig({ retry: { baseDelay: -1 } })).toThrow(/retry\.baseDelay/);
    expect(() => resolveConfig({ faults: { inject: 'melt:gpu' } })).toThrow(
      /faults\.inject: fault "melt:gpu": unknown kind/,
    );
    expect(resolveConfig({ faults: { inject: 'nan:wasm@0.5' } }).faults.inject).toBe('nan:wasm@0.5');
  });

  it('layers defaults < file < explicit options', () => {
    const c = resolveConfig({ kmeans: { nInit: 3, maxIter: 20 } }, { kmeans: { nInit: 5 } });
    expect(c.kmeans).toMatchObject({ nInit: 5, maxIter: 20 });
  });

  it('rejects unknown keys and out-of-range values, naming each path', () => {
    expect(() => resolveConfig({ kmeans: { nInit: 0 } })).toThrow(/kmeans\.nInit/);
    expect(() => resolveConfig({ engine: { colour: 'red' } } as never)).toThrow(/engine: .*colour/);
    expect(() => resolveConfig({ typo: {} } as never)).toThrow(/typo/);
  });

  it('merges nested sections without losing siblings', () => {
    expect(deepMerge({ a: { b: 1, c: 2 } }, { a: { c: 3 }, d: undefined })).toEqual({ a: { b: 1, c: 3 } });
  });
});

describe('configuration files', () => {
  it('reads JSON and YAML', async () => {
    writeFileSync(join(dir, 'a.json'), '{"kmeans": {"nInit": 4}}');
    writeFileSync(join(dir, 'a.yaml'), 'kmeans:\n  nInit: 6\n');
    expect(resolveConfig(await readConfigFile(join(dir, 'a.json'))).kmeans.nInit).toBe(4);
    expect(resolveConfig(await readConfigFile(join(dir, 'a.yaml'))).kmeans.nInit).toBe(6);
  });

  it('refuses unreadable, unparsable and non-object documents', async () => {
    writeFileSync(join(dir, 'bad.yaml'), 'kmeans: [1, 2\n');
    writeFileSync(join(dir, 'list.json'), '[1]');
    writeFileSync(join(dir, 'x.toml'), 'a = 1');
    await expect(readConfigFile(join(dir, 'missing.json'))).rejects.toThrow(/cannot read/);
    await expect(readConfigFile(join(dir, 'bad.yaml'))).rejects.toThrow(/cannot parse/);
    await expect(readConfigFile(join(dir, 'list.json'))).rejects.toThrow(/object of sections/);
    await expect(readConfigFile(join(dir, 'x.toml'))).rejects.toThrow(/unknown extension/);
  });
});

describe('NEUROCLUSTER_HOME', () => {
  it('comes from the environment, or defaults to ~/.neurocluster', () => {
    expect(neuroclusterHome({ NEUROCLUSTER_HOME: '/srv/nc' })).toBe('/srv/nc');
    expect(neuroclusterHome({})).toMatch(/\.neurocluster$/);
  });
});

describe('example configuration', () => {
  it('examples/config.yaml is valid and means what it says', async () => {
    const c = resolveConfig(await readConfigFile(`${ROOT}/examples/config.yaml`));
    expect(c.kmeans.nClusters).toBe(3);
    expect(c).toEqual(resolveConfig({ kmeans: { nClusters: 3 } }));
  });
});

describe('configuration levels', () => {
  const doc = {
    circuit_breaker: { failure_threshold: 3 },
    kmeans: { nInit: 0, colour: 'red' },
    logging: { level: 'loud' },
  };

  it('strict: unknown keys and out-of-range values are errors, each with its path', () => {
    const { config, problems } = checkConfig(doc, 'strict');
    expect(config).toBeUndefined();
    expect(problems.filter((p) => p.severity === 'error').map((p) => p.path)).toEqual([
      'kmeans.nInit',
      'kmeans',
      'logging.level',
    ]);
  });

  it('moderate: unknown keys dropped and numbers clamped, with warnings; other bad values still errors', () => {
    const { config, problems } = checkConfig(doc, 'moderate');
    expect(config).toBeUndefined();
    expect(problems.map((p) => `${p.severity} ${p.path}`)).toEqual([
      'warning circuit_breaker',
      'warning circuit_breaker.failure_threshold',
      'warning kmeans.nInit',
      'warning kmeans',
      'error logging.level',
    ]);
    const fixed = checkConfig({ kmeans: { nInit: 0, colour: 'red' }, retry: { maxRetries: 99 } }, 'moderate');
    expect(fixed.config?.kmeans.nInit).toBe(1);
    expect(fixed.config?.retry.maxRetries).toBe(10);
    expect(fixed.problems.every((p) => p.severity === 'warning')).toBe(true);
  });

  it('permissive: anything else falls back to its default, with a warning', () => {
    const { config, problems } = checkConfig(doc, 'permissive');
    expect(config?.logging.level).toBe('warn');
    expect(config?.circuitBreaker.failureThreshold).toBe(3);
    expect(problems.every((p) => p.severity === 'warning')).toBe(true);
    expect(problems.find((p) => p.path === 'logging.level')?.message).toMatch(/the default is used instead/);
  });

  it("reads the original system's snake_case keys as aliases, with a deprecation warning", () => {
    const { config, problems } = checkConfig(
      { circuit_breaker: { failure_threshold: 3, recovery_timeout_seconds: 30 } },
      'strict',
    );
    expect(config?.circuitBreaker).toMatchObject({ failureThreshold: 3, recoveryTimeout: 30 });
    expect(problems).toContainEqual({
      path: 'circuit_breaker.failure_threshold',
      message: 'deprecated alias of circuitBreaker.failureThreshold; write circuitBreaker.failureThreshold',
      severity: 'warning',
    });
  });

  it('checks rules across keys: errors, warnings under permissive', () => {
    const doc = { retry: { baseDelay: '40s', maxDelay: '30s' }, encoders: { esn: { steps: 5, washout: 5 } } };
    const strict = checkConfig(doc, 'strict');
    expect(strict.config).toBeUndefined();
    expect(strict.problems.map((p) => p.path)).toEqual(['retry.baseDelay', 'encoders.esn.washout']);
    expect(checkConfig(doc, 'permissive').config).toBeDefined();
  });

  it('layers defaults < file < environment < flags; NEUROCLUSTER_<SECTION>__<KEY> in SCREAMING_SNAKE_CASE', () => {
    const env = {
      NEUROCLUSTER_CIRCUIT_BREAKER__FAILURE_THRESHOLD: '3',
      NEUROCLUSTER_ENGINE__WEBGPU__ADAPTER: 'nvidia',
      NEUROCLUSTER_FALLBACK__DEGRADE_ORDER: '["wasm","js"]',
      NEUROCLUSTER_KMEANS__N_INIT: '4',
      NEUROCLUSTER_HOME: '/not/a/key',
    };
    expect(environmentOverrides(env).document).toEqual({
      circuitBreaker: { failureThreshold: 3 },
      engine: { webgpu: { adapter: 'nvidia' } },
      fallback: { degradeOrder: ['wasm', 'js'] },
      kmeans: { nInit: 4 },
    });
    const { config } = resolveConfigChecked([
      { kmeans: { nInit: 2, maxIter: 7 }, circuitBreaker: { failureThreshold: 9 } },
      environmentOverrides(env),
      { kmeans: { nInit: 5 } },
    ]);
    expect(config.kmeans).toMatchObject({ nInit: 5, maxIter: 7 });
    expect(config.circuitBreaker.failureThreshold).toBe(3);
  });
});

describe('the JSON Schema of the configuration', () => {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const validate = ajv.compile(configJsonSchema());

  it('accepts every example configuration file in the repository', async () => {
    for (const file of ['examples/config.yaml']) {
      const ok = validate(await readConfigFile(join(ROOT, file)));
      expect(validate.errors ?? [], file).toEqual([]);
      expect(ok).toBe(true);
    }
  });

  it('rejects what the schema rejects', () => {
    expect(validate({ kmeans: { nInit: 0 } })).toBe(false);
    expect(validate({ engine: { colour: 'red' } })).toBe(false);
    expect(validate({ timeout: '3s', retry: { maxRetries: 1 } })).toBe(true);
  });
});
