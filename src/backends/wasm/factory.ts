/**
 * The WASM backend's registry entry. The backend (its module, its worker pool) is loaded when the
 * registry first creates it.
 */
import { availableParallelism } from 'node:os';
import type { BackendFactory } from '../backend.js';

/**
 * Worker threads: as configured (`engine.wasm.threads`, which NEUROCLUSTER_WASM_THREADS sets
 * through the checked configuration), else one per core.
 */
export function wasmThreads(configured?: number): number {
  return configured ?? availableParallelism();
}

export const wasmBackendFactory: BackendFactory = {
  name: 'wasm',
  priority: 10,
  smallProblems: false,
  create: async ({ options }) => {
    const { WasmBackend } = await import('./wasm-backend.js');
    return new WasmBackend(wasmThreads(options?.wasm?.threads));
  },
};
