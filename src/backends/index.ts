/**
 * The backends built into this version, registered in one place (as tfjs lists each backend's
 * kernels in one file).
 */
import { BackendRegistry } from './backend.js';
import { jsBackendFactory } from './js/js-backend.js';
import { wasmBackendFactory } from './wasm/wasm-backend.js';
import { webGpuBackendFactory } from './webgpu/webgpu-backend.js';

/** The process-wide registry every clusterer uses unless given its own. */
export const defaultRegistry = new BackendRegistry();
defaultRegistry.register(webGpuBackendFactory());
defaultRegistry.register(wasmBackendFactory);
defaultRegistry.register(jsBackendFactory);

export * from './backend.js';
