/**
 * The WebGPU backend's registry entry. The backend itself (its kernels, their WGSL, Dawn) is
 * loaded when the registry first creates it: a process that runs on the CPU never loads it.
 */
import type { BackendFactory } from '../backend.js';
import type { WebGpuSettings } from './device.js';
import type { WebGpuBackend } from './webgpu-backend.js';

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Opens the device lazily; under `auto` a software adapter is refused unless allowed. */
export function webGpuBackendFactory(settings: WebGpuSettings = {}): BackendFactory {
  return {
    name: 'webgpu',
    priority: 20,
    smallProblems: false,
    async create({ auto, options }) {
      const [{ openDevice }, { WebGpuBackend, DEFAULT_MEMORY_BUDGET_BYTES }] = await Promise.all([
        import('./device.js'),
        import('./webgpu-backend.js'),
      ]);
      const resolved: WebGpuSettings = { ...settings, ...definedOnly(options?.webgpu ?? {}) };
      const opened = await openDevice(resolved, auto);
      return new WebGpuBackend(opened, {
        budgetBytes: resolved.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES,
        allowSoftware: resolved.allowSoftware === true,
      });
    },
    autoRefusal(backend) {
      if (backend.name !== 'webgpu') return undefined;
      const gpu = backend as WebGpuBackend;
      return gpu.software && !gpu.allowSoftware
        ? `the WebGPU adapter is a software one (${gpu.device}); set NEUROCLUSTER_WEBGPU_ALLOW_SOFTWARE=1 to use it`
        : undefined;
    },
  };
}
