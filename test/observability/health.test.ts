import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BackendRegistry } from '../../src/backends/backend.js';
import { jsBackendFactory } from '../../src/backends/js/js-backend.js';
import { healthz, liveness, readiness } from '../../src/observability/health.js';
import { ResourceMonitor } from '../../src/observability/resources.js';
import { BreakerBook } from '../../src/resilience/breakers.js';
import { breakerSettings } from '../../src/runtime/runtime.js';
import { tempDir } from '../helpers.js';

const dir = tempDir();
const thresholds = {
  memoryWarning: 0.8,
  memoryCritical: 0.95,
  cpuWarning: 0.7,
  cpuCritical: 0.9,
  diskWarning: 0.99,
  diskCritical: 0.999,
  memoryBudgetBytes: 64 * 2 ** 30,
};
const breakers = new BreakerBook(breakerSettings(), undefined);

/** js, and a "gpu" that never starts (registered under the webgpu name). */
function registry(): BackendRegistry {
  const r = new BackendRegistry();
  r.register(jsBackendFactory);
  r.register({
    name: 'webgpu',
    priority: 20,
    smallProblems: false,
    create: async () => {
      throw new Error('no adapter');
    },
  });
  return r;
}

const deps = (over: Partial<Parameters<typeof readiness>[0]> = {}) => ({
  registry: registry(),
  backend: 'auto' as const,
  selection: {},
  breakers,
  monitor: new ResourceMonitor(thresholds, dir),
  home: dir,
  ...over,
});

describe('health', () => {
  it('liveness passes while the process runs', async () => {
    const live = await liveness();
    expect(live.status).toBe('pass');
    expect(live.checks[0]).toMatchObject({
      name: 'process',
      status: 'pass',
      message: expect.stringMatching(/^pid \d+/),
    });
  });

  it('readiness under auto: a backend that does not start warns, one that starts is enough', async () => {
    const ready = await readiness(deps());
    const by = Object.fromEntries(ready.checks.map((c) => [c.name, c]));
    expect(by['backend:webgpu']).toMatchObject({
      status: 'warn',
      message: expect.stringMatching(/no adapter/),
    });
    expect(by['backend:js']).toMatchObject({ status: 'pass' });
    expect(by['backend:any']).toMatchObject({ status: 'pass' });
    expect(by.storage?.status).toBe('pass');
    for (const c of ready.checks) expect(c.durationMs).toBeGreaterThanOrEqual(0);
    expect(['pass', 'warn']).toContain(ready.status);
  });

  it('is not ready when the configured backend cannot start, or NEUROCLUSTER_HOME cannot be written', async () => {
    expect((await readiness(deps({ backend: 'webgpu' }))).status).toBe('fail');
    const notADir = join(dir, 'a-file');
    writeFileSync(notADir, 'x');
    const unwritable = await readiness(deps({ home: notADir }));
    expect(unwritable.status).toBe('fail');
    expect(unwritable.checks.find((c) => c.name === 'storage')?.status).toBe('fail');
  });

  it('healthz has both', async () => {
    const all = await healthz(deps());
    expect(all.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining(['process', 'backend:js', 'storage', 'memory']),
    );
  });
});
