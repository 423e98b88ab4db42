/** The WebGPU device a test file shares: opened before its tests, released after them. */
import { afterAll, beforeAll } from 'vitest';
import { openDevice } from '../../src/backends/webgpu/device.js';
import { WebGpuBackend } from '../../src/backends/webgpu/webgpu-backend.js';
import { skipUnlessRequired } from '../helpers.js';

/**
 * Opens one WebGPU backend for the calling test file; the function returned gives it to a test,
 * or skips the test (fails it under REQUIRE_WEBGPU=1) where no adapter exists.
 */
export function webGpuForFile(): (ctx: { skip: (note: string) => never }) => WebGpuBackend {
  let backend: WebGpuBackend | undefined;
  let unavailable: unknown;
  beforeAll(async () => {
    try {
      backend = new WebGpuBackend(await openDevice({}, false), { budgetBytes: 256 * 1024 * 1024 });
    } catch (error) {
      unavailable = error;
    }
  });
  afterAll(() => backend?.dispose());
  return (ctx) => backend ?? skipUnlessRequired(ctx.skip, unavailable);
}
