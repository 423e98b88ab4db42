import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { neuroclusterHome } from '../src/config/home.js';
import { deepMerge, readConfigFile, resolveConfig } from '../src/config/load.js';
import { configSchema, durationMs } from '../src/config/schema.js';
import { ROOT, tempDir } from './helpers.js';

const dir = tempDir();

describe('configuration schema', () => {
  it('fills every default from the one schema', () => {
    const c = resolveConfig();
    expect(c.engine).toEqual({
      method: 'hybrid',
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

  it('has every top-level section of the original system, in camelCase, and the resilience ones', () => {
    expect(Object.keys(configSchema.shape).sort()).toEqual(
      [
        'circuitBreaker',
        'data',
        'encoders',
        'engine',
        'errorTracking',
        'fallback',
        'faults',
        'kmeans',
        'logging',
        'metrics',
        'monitoring',
        'privacy',
        'qualityGates',
        'retry',
        'security',
        'timeout',
      ].sort(),
    );
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
    expect(() => resolveConfig({ retry: { baseDelay: -1 } })).toThrow(/retry\.baseDelay/);
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
