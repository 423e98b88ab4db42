/**
 * The environment as a configuration layer (issue 18, items 11, 12 and 14): every NEUROCLUSTER_*
 * variable goes through the schema, names are matched the way users write them, a name that
 * matches nothing is reported, and a logging transport that cannot start is a configuration error.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { wasmThreads } from '../../src/backends/wasm/factory.js';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { keyringFile, metricsEnabled, PROCESS_VARIABLES } from '../../src/config/home.js';
import {
  ENVIRONMENT_ALIASES,
  environmentDefaults,
  environmentName,
  environmentOverrides,
  schemaPaths,
} from '../../src/config/levels.js';
import { resolveConfigChecked } from '../../src/config/load.js';
import { ConfigError } from '../../src/core/errors.js';
import { createLogger, loggerReady } from '../../src/observability/logger.js';
import { tempDir } from '../helpers.js';

const dir = tempDir();

/** The resolved configuration of the CLI's layers for an environment (no file, no flags). */
function cliLayers(
  env: NodeJS.ProcessEnv,
  level: 'strict' | 'moderate' | 'permissive' = 'strict',
  file?: object,
) {
  return resolveConfigChecked([environmentDefaults(env), file, environmentOverrides(env)], level);
}

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('no error was thrown');
}

describe('environment names', () => {
  it('match each part case-insensitively against the real keys, underscores ignored', () => {
    const { config } = cliLayers({
      NEUROCLUSTER_MONITORING__MEMORY_BUDGET_MB: '4096',
      NEUROCLUSTER_ENGINE__WEBGPU__MEMORY_BUDGET_MB: '512',
      NEUROCLUSTER_CIRCUIT_BREAKER__FAILURE_THRESHOLD: '3',
      NEUROCLUSTER_KMEANS__NCLUSTERS: '4',
      NEUROCLUSTER_PRIVACY__BUDGET__EPSILON: '2.5',
      NEUROCLUSTER_QUALITY_GATES__MIN_CALINSKI_HARABASZ: '7',
    });
    expect(config.monitoring.memoryBudgetMB).toBe(4096);
    expect(config.engine.webgpu.memoryBudgetMB).toBe(512);
    expect(config.circuitBreaker.failureThreshold).toBe(3);
    expect(config.kmeans.nClusters).toBe(4);
    expect(config.privacy.budget.epsilon).toBe(2.5);
    expect(config.qualityGates.minCalinskiHarabasz).toBe(7);
  });

  it('reach top-level keys (NEUROCLUSTER_TIMEOUT)', () => {
    expect(cliLayers({ NEUROCLUSTER_TIMEOUT: '5s' }).config.timeout).toBe('5s');
    expect(cliLayers({ NEUROCLUSTER_TIMEOUT: '30' }).config.timeout).toBe(30);
  });

  it('reach every key of the schema by its SCREAMING_SNAKE_CASE name, and no two keys share one', () => {
    const paths = schemaPaths();
    expect(paths.length).toBeGreaterThan(100);
    const names = new Map<string, string>();
    for (const path of paths) {
      const name = environmentName(path);
      expect(names.get(name), `${path} and ${names.get(name)}`).toBeUndefined();
      names.set(name, path);
      // The keyless `metrics` section's name is the start-up switch NEUROCLUSTER_METRICS.
      if (Object.hasOwn(PROCESS_VARIABLES, name)) {
        expect(path).toBe('metrics');
        continue;
      }
      const section = paths.some((p) => p.startsWith(`${path}.`));
      const layer = environmentOverrides({ [name]: section ? '{}' : '"x"' });
      expect([...layer.sources.entries()], name).toEqual([[path, name]]);
    }
    expect(environmentName('monitoring.memoryBudgetMB')).toBe('NEUROCLUSTER_MONITORING__MEMORY_BUDGET_MB');
    expect(environmentName('timeout')).toBe('NEUROCLUSTER_TIMEOUT');
  });

  it('read each value as its key expects: strings stay strings, switches, numbers, JSON', () => {
    const { config } = cliLayers({
      NEUROCLUSTER_PRIVACY__DATASET: '2024',
      NEUROCLUSTER_ENGINE__WEBGPU__ALLOW_SOFTWARE: 'yes',
      NEUROCLUSTER_AUDIT__ENABLED: 'off',
      NEUROCLUSTER_FALLBACK__DEGRADE_ORDER: '["wasm","js"]',
      NEUROCLUSTER_SECURITY__DATA_ROOTS: '["/srv/data"]',
      NEUROCLUSTER_LOGGING__TRANSPORT: '{"target":"pino/file","options":{"destination":2}}',
      NEUROCLUSTER_ENGINE__SEED: '7',
    });
    expect(config.privacy.dataset).toBe('2024');
    expect(config.engine.webgpu.allowSoftware).toBe(true);
    expect(config.audit.enabled).toBe(false);
    expect(config.fallback.degradeOrder).toEqual(['wasm', 'js']);
    expect(config.security.dataRoots).toEqual(['/srv/data']);
    expect(config.logging.transport).toEqual({ target: 'pino/file', options: { destination: 2 } });
    expect(config.engine.seed).toBe(7);
  });

  it('set the free keys of a record (a transport option) and whole sections as JSON', () => {
    const { config } = cliLayers({
      NEUROCLUSTER_LOGGING__TRANSPORT__TARGET: 'pino/file',
      NEUROCLUSTER_LOGGING__TRANSPORT__OPTIONS__DESTINATION: '/var/log/nc.log',
      NEUROCLUSTER_RETRY: '{"maxRetries":4}',
    });
    expect(config.logging.transport).toEqual({
      target: 'pino/file',
      options: { destination: '/var/log/nc.log' },
    });
    expect(config.retry.maxRetries).toBe(4);
  });

  it('an empty variable is unset', () => {
    expect(cliLayers({ NEUROCLUSTER_KMEANS__N_INIT: '', NEUROCLUSTER_FAULT: ' ' }).config.kmeans.nInit).toBe(
      10,
    );
  });
});

describe('environment values go through the schema', () => {
  it('NEUROCLUSTER_WASM_THREADS=100000 is over the cap: an error naming the variable (item 11)', () => {
    const e = configError(() => cliLayers({ NEUROCLUSTER_WASM_THREADS: '100000' }));
    expect(e.code).toBe('NEUROCLUSTER_ERR_CONFIG');
    expect(e.message).toMatch(/NEUROCLUSTER_WASM_THREADS \(engine\.wasm\.threads\): Too big: .*<=256/);
  });

  it('under moderate the value is clamped, with a warning naming the variable', () => {
    const { config, warnings } = cliLayers({ NEUROCLUSTER_WASM_THREADS: '100000' }, 'moderate');
    expect(config.engine.wasm.threads).toBe(256);
    expect(warnings.map((w) => w.path)).toEqual(['NEUROCLUSTER_WASM_THREADS (engine.wasm.threads)']);
  });

  it('names the variable for every kind of bad value, long names and whole sections alike', () => {
    for (const [name, value, path] of [
      ['NEUROCLUSTER_ENGINE', 'x', 'engine'],
      ['NEUROCLUSTER_KMEANS__N_INIT', 'four', 'kmeans.nInit'],
      ['NEUROCLUSTER_TIMEOUT', 'soon', 'timeout'],
      ['NEUROCLUSTER_FAULT', 'meteor', 'faults.inject'],
      ['NEUROCLUSTER_WEBGPU_ALLOW_SOFTWARE', 'maybe', 'engine.webgpu.allowSoftware'],
      ['NEUROCLUSTER_RETRY', '{"maxRetries":4,"bogus":1}', 'retry'],
    ]) {
      const e = configError(() => cliLayers({ [name!]: value }));
      expect(e.message, name).toContain(`${name} (${path})`);
    }
  });

  it('a value a flag overrode is not blamed on the variable', () => {
    const { config } = resolveConfigChecked([
      environmentDefaults({}),
      undefined,
      environmentOverrides({ NEUROCLUSTER_KMEANS__N_INIT: '3' }),
      { kmeans: { nInit: 5 } },
    ]);
    expect(config.kmeans.nInit).toBe(5);
    const e = configError(() =>
      resolveConfigChecked([
        environmentOverrides({ NEUROCLUSTER_KMEANS__N_INIT: '3' }),
        { kmeans: { nInit: 0 } },
      ]),
    );
    expect(e.message).toMatch(/invalid configuration: kmeans\.nInit: Too small/);
  });

  it('NEUROCLUSTER_METRICS takes on or off; anything else is an error (a warning under permissive)', () => {
    expect(metricsEnabled({})).toBe(true);
    expect(metricsEnabled({ NEUROCLUSTER_METRICS: 'off' })).toBe(false);
    expect(metricsEnabled({ NEUROCLUSTER_METRICS: 'OFF' })).toBe(false);
    expect(metricsEnabled({ NEUROCLUSTER_METRICS: 'on' })).toBe(true);
    expect(configError(() => cliLayers({ NEUROCLUSTER_METRICS: 'of' })).message).toMatch(
      /NEUROCLUSTER_METRICS: expected on or off/,
    );
    const { warnings } = cliLayers({ NEUROCLUSTER_METRICS: 'of' }, 'permissive');
    expect(warnings.map((w) => w.path)).toEqual(['NEUROCLUSTER_METRICS']);
  });
});

describe('names that match nothing (item 14)', () => {
  const env = { NEUROCLUSTER_ENGINE_SEED: '3', NEUROCLUSTER_KMEANS__N_INT: '4', NEUROCLUSTER_HOME: dir };

  it('are errors under strict, as unknown keys in a file are, with the name meant when there is one', () => {
    const e = configError(() => cliLayers(env));
    expect(e.message).toContain(
      'NEUROCLUSTER_ENGINE_SEED: matches no configuration key (did you mean NEUROCLUSTER_ENGINE__SEED?)',
    );
    expect(e.message).toContain('NEUROCLUSTER_KMEANS__N_INT: matches no configuration key');
    expect(e.message).not.toContain('NEUROCLUSTER_HOME');
  });

  it('are warnings under moderate and permissive, and ignored', () => {
    for (const level of ['moderate', 'permissive'] as const) {
      const { config, warnings } = cliLayers(env, level);
      expect(config.engine.seed).toBe(0);
      expect(warnings.map((w) => w.path).sort()).toEqual([
        'NEUROCLUSTER_ENGINE_SEED',
        'NEUROCLUSTER_KMEANS__N_INT',
      ]);
      expect(warnings.every((w) => w.message.endsWith(': ignored'))).toBe(true);
    }
  });

  it('include a name past a leaf, an empty part, and a key set twice', () => {
    expect(configError(() => cliLayers({ NEUROCLUSTER_TIMEOUT__X: '1' })).message).toContain(
      'NEUROCLUSTER_TIMEOUT__X: matches no configuration key',
    );
    expect(configError(() => cliLayers({ NEUROCLUSTER_KMEANS____N_INIT: '1' })).message).toContain(
      'NEUROCLUSTER_KMEANS____N_INIT: matches no configuration key',
    );
    expect(
      configError(() => cliLayers({ NEUROCLUSTER_KMEANS__N_INIT: '2', NEUROCLUSTER_KMEANS__NINIT: '3' }))
        .message,
    ).toContain('NEUROCLUSTER_KMEANS__N_INIT: sets kmeans.nInit, as NEUROCLUSTER_KMEANS__NINIT does');
  });

  it('leave the variables that are not keys alone (home, keyring, metrics, bench reference)', () => {
    const { warnings } = cliLayers({
      NEUROCLUSTER_HOME: dir,
      NEUROCLUSTER_KEYRING: join(dir, 'k.json'),
      NEUROCLUSTER_KEYRING_JSON: '{}',
      NEUROCLUSTER_METRICS: 'off',
      NEUROCLUSTER_REFERENCE: '/x/reference.py',
    });
    expect(warnings).toEqual([]);
    expect(keyringFile({ NEUROCLUSTER_HOME: dir })).toBe(join(dir, 'keys', 'keyring.json'));
    expect(keyringFile({ NEUROCLUSTER_KEYRING: '/k.json' })).toBe('/k.json');
  });
});

describe('short aliases', () => {
  it('set their keys, under the configuration file (the file overrides them)', () => {
    expect(Object.keys(ENVIRONMENT_ALIASES).sort()).toEqual([
      'NEUROCLUSTER_FAULT',
      'NEUROCLUSTER_WASM_THREADS',
      'NEUROCLUSTER_WEBGPU_ADAPTER',
      'NEUROCLUSTER_WEBGPU_ALLOW_SOFTWARE',
      'NEUROCLUSTER_WEBGPU_MEMORY_BUDGET_MB',
    ]);
    const env = {
      NEUROCLUSTER_WASM_THREADS: '3',
      NEUROCLUSTER_FAULT: 'oom:js',
      NEUROCLUSTER_WEBGPU_ADAPTER: 'nvidia',
      NEUROCLUSTER_WEBGPU_ALLOW_SOFTWARE: '1',
      NEUROCLUSTER_WEBGPU_MEMORY_BUDGET_MB: '256',
    };
    const { config } = cliLayers(env);
    expect(config.engine.wasm.threads).toBe(3);
    expect(config.faults.inject).toBe('oom:js');
    expect(config.engine.webgpu).toEqual({ adapter: 'nvidia', allowSoftware: true, memoryBudgetMB: 256 });
    expect(cliLayers(env, 'strict', { engine: { wasm: { threads: 2 } } }).config.engine.wasm.threads).toBe(2);
    // The long name is an override, over the file.
    const long = { ...env, NEUROCLUSTER_ENGINE__WASM__THREADS: '5' };
    expect(cliLayers(long, 'strict', { engine: { wasm: { threads: 2 } } }).config.engine.wasm.threads).toBe(
      5,
    );
  });

  it('reach the backends only through the configuration', () => {
    expect(wasmThreads(2)).toBe(2);
    expect(wasmThreads()).toBeGreaterThanOrEqual(1);
  });
});

describe('the library reads the short aliases through its configuration', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  });

  it('honours them under its own configuration, and refuses values past the schema', () => {
    process.env.NEUROCLUSTER_WASM_THREADS = '3';
    process.env.NEUROCLUSTER_FAULT = 'oom';
    expect(new NeuromorphicClusterer().config.engine.wasm.threads).toBe(3);
    expect(new NeuromorphicClusterer().config.faults.inject).toBe('oom');
    expect(
      new NeuromorphicClusterer({ config: { engine: { wasm: { threads: 2 } } } }).config.engine.wasm.threads,
    ).toBe(2);
    process.env.NEUROCLUSTER_WASM_THREADS = '100000';
    expect(configError(() => new NeuromorphicClusterer()).message).toMatch(/NEUROCLUSTER_WASM_THREADS/);
  });
});

describe('a logging transport that cannot start (item 12)', () => {
  it('a module that cannot be found is a configuration error at once', () => {
    const e = configError(() => createLogger({ transport: { target: 'no-such-transport-module' } }));
    expect(e.message).toMatch(/^logging\.transport\.target: cannot load "no-such-transport-module"/);
    expect(e.message).not.toContain('\n');
  });

  it('a file that fails in the worker rejects loggerReady with a one-line configuration error', async () => {
    const logger = createLogger({ transport: { target: join(dir, 'missing-transport.mjs') } });
    logger.warn('goes nowhere');
    const e = await loggerReady(logger).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toMatch(
      /^logging\.transport: the transport ".*missing-transport\.mjs" failed: /,
    );
    expect((e as Error).message).not.toContain('\n');
    // Later lines go nowhere, and no 'error' event is left unhandled.
    logger.warn('still nowhere');
    await new Promise((r) => setTimeout(r, 100));
  });

  it('a transport that starts is ready', async () => {
    const logger = createLogger({
      transport: { target: 'pino/file', options: { destination: join(dir, 'ok.log') } },
    });
    await expect(loggerReady(logger)).resolves.toBeUndefined();
    await expect(loggerReady(createLogger({ destination: { write() {} } }))).resolves.toBeUndefined();
  });
});
