import { describe, expect, it } from 'vitest';
import { type BackendFactory, BackendRegistry } from '../../src/backends/backend.js';
import { JsBackend, jsBackendFactory } from '../../src/backends/js/js-backend.js';
import { isNeuroclusterError } from '../../src/resilience/errors.js';

const failing: BackendFactory = {
  name: 'webgpu',
  priority: 20,
  create: async () => {
    throw new Error('no adapter');
  },
};

describe('backend registry', () => {
  it('refuses to register a name twice', () => {
    const r = new BackendRegistry();
    r.register(jsBackendFactory);
    expect(() => r.register(jsBackendFactory)).toThrow(/already registered/);
  });

  it('auto skips a backend that fails to start, with one log line, and says what it tried', async () => {
    const r = new BackendRegistry();
    r.register(jsBackendFactory);
    r.register(failing);
    const lines: string[] = [];
    const { backend, tried } = await r.select('auto', { info: (_o, msg) => lines.push(msg) });
    expect(backend).toBeInstanceOf(JsBackend);
    expect(tried).toEqual([
      { name: 'webgpu', ok: false, reason: 'backend "webgpu" failed to start: no adapter' },
      { name: 'js', ok: true },
    ]);
    expect(lines).toEqual(['backend webgpu skipped']);
  });

  it('a named backend that cannot start fails with BACKEND_UNAVAILABLE, never degrades', async () => {
    const r = new BackendRegistry();
    r.register(jsBackendFactory);
    r.register(failing);
    const error = await r.select('webgpu').catch((e: unknown) => e);
    expect(isNeuroclusterError(error) && error.code).toBe('NEUROCLUSTER_ERR_BACKEND_UNAVAILABLE');
    const missing = await r.select('wasm').catch((e: unknown) => e);
    expect(isNeuroclusterError(missing) && missing.message).toMatch(/not available in this build/);
  });

  it('creates one instance per backend, lazily, and disposes them', async () => {
    let created = 0;
    const r = new BackendRegistry();
    r.register({
      name: 'js',
      priority: 0,
      create: async () => {
        created++;
        return new JsBackend();
      },
    });
    expect(created).toBe(0);
    const [a, b] = await Promise.all([r.get('js'), r.get('js')]);
    expect(a).toBe(b);
    expect(created).toBe(1);
    await r.disposeAll();
    await r.get('js');
    expect(created).toBe(2);
  });
});
