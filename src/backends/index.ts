/**
 * The backends built into this version, registered in one place (as tfjs lists each backend's
 * kernels in one file).
 */
import { BackendRegistry } from './backend.js';
import { jsBackendFactory } from './js/js-backend.js';
import { wasmBackendFactory } from './wasm/factory.js';
import { webGpuBackendFactory } from './webgpu/factory.js';

/**
 * A registry of the built-in backends (webgpu, wasm, js); none starts until it is acquired, and
 * the WebGPU and WASM ones are not even loaded until then.
 */
export function createBackendRegistry(): BackendRegistry {
  const registry = new BackendRegistry();
  registry.register(webGpuBackendFactory());
  registry.register(wasmBackendFactory);
  registry.register(jsBackendFactory);
  return registry;
}

/** The default runtime's registry (see src/runtime/runtime.ts): what runs without a runtime of its own. */
export const defaultRegistry = createBackendRegistry();

export * from './backend.js';
