/**
 * The WebGPU backend and the JS reference give the same labels, same seed, every method, on the
 * smaller development sets (the full sweep, every set: `bench/gpu.ts --agreement`). A file of its
 * own so that the suite's longest WebGPU work runs beside the rest of webgpu.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { labelsOn, qualityCases } from '../../bench/quality.js';
import { JsBackend } from '../../src/backends/js/js-backend.js';
import { METHODS } from '../../src/config/schema.js';
import { ROOT } from '../helpers.js';
import { webGpuForFile } from './webgpu-helpers.js';

const js = new JsBackend();
const gpu = webGpuForFile();

describe('WebGPU and the JS reference on the development data', () => {
  const cases = qualityCases(ROOT).filter((c) => ['iris', 'Coffee', 'UnitTest'].includes(c.name));

  it.for(cases.map((c) => [c.name, c] as const))(
    'same seed, same labels, every method: %s',
    // hybrid on a series is three members voting (encoders.members auto): Coffee takes about
    // 40 s alone here, on SwiftShader.
    { timeout: 180_000 },
    async ([, c], ctx) => {
      const b = gpu(ctx);
      for (const method of METHODS) {
        const [reference, ours] = [await labelsOn(js, c, method), await labelsOn(b, c, method)];
        expect(Array.from(ours), `${c.name} ${method}`).toEqual(Array.from(reference));
      }
    },
  );
});
