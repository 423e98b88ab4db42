import { describe, expect, it } from 'vitest';
import { type BackendFactory, BackendRegistry } from '../../src/backends/backend.js';
import { JsBackend, jsBackendFactory } from '../../src/backends/js/js-backend.js';
import { isNeuroclusterError } from '../../src/core/errors.js';

const failing: BackendFactory = {
  name: 'webgpu',
  priority: 20,
  smallProblems: false,
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

  it('auto sends a small problem to the CPU without starting the GPU backend; a named GPU backend still runs it', async () => {
    let started = 0;
    const gpu: BackendFactory = {
      name: 'webgpu',
      priority: 20,
      smallProblems: false,
      create: async () => {
        started++;
        return Object.assign(new JsBackend(), { name: 'webgpu' as const });
      },
    };
    const r = new BackendRegistry();
    r.register(jsBackendFactory);
    r.register(gpu);
    const small = await r.select('auto', undefined, { problemSize: 100, smallProblemSize: 1000 });
    expect(small.backend.name).toBe('js');
    expect(small.tried[0]).toMatchObject({
      name: 'webgpu',
      ok: false,
      reason: expect.stringMatching(/small problem/),
    });
    expect(started).toBe(0);
    expect(
      (await r.select('webgpu', undefined, { problemSize: 100, smallProblemSize: 1000 })).backend.name,
    ).toBe('webgpu');
    expect((await r.select('auto', undefined, { problemSize: 100, smallProblemSize: 0 })).backend.name).toBe(
      'webgpu',
    );
  });

  it('auto passes over a live instance its factory refuses under auto (a software GPU named earlier)', async () => {
    const gpu: BackendFactory = {
      name: 'webgpu',
      priority: 20,
      smallProblems: false,
      create: async ({ auto }) => {
        if (auto) throw new Error('software adapter');
        return Object.assign(new JsBackend(), { name: 'webgpu' as const });
      },
      autoRefusal: () => 'software adapter',
    };
    const r = new BackendRegistry();
    r.register(jsBackendFactory);
    r.register(gpu);
    expect((await r.select('webgpu')).backend.name).toBe('webgpu');
    const picked = await r.select('auto');
    expect(picked.backend.name).toBe('js');
    expect(picked.tried[0]).toMatchObject({ name: 'webgpu', ok: false, reason: 'software adapter' });
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
      smallProblems: true,
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
