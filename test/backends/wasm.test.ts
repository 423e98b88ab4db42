/**
 * The WASM backend beyond the shared conformance suite: the same labels as the JS reference, work
 * split over the workers, a failing task retried once and then typed, and workers that end.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { labelsOn, qualityCases } from '../../bench/quality.js';
import { JsBackend } from '../../src/backends/js/js-backend.js';
import { wasmThreads } from '../../src/backends/wasm/factory.js';
import { splitRows, WorkerPool } from '../../src/backends/wasm/pool.js';
import { WASM_KERNELS } from '../../src/backends/wasm/wasm.generated.js';
import { WasmBackend } from '../../src/backends/wasm/wasm-backend.js';
import { METHODS } from '../../src/config/schema.js';
import { Random } from '../../src/core/random.js';
import { normalMatrix } from '../../src/encoders/weights.js';
import { ROOT } from '../helpers.js';

const js = new JsBackend();
const wasm = new WasmBackend(2);
afterAll(() => wasm.dispose());

describe('WASM backend', () => {
  it('splits rows into near-equal shares, none empty', () => {
    expect(splitRows(10, 3)).toEqual([
      [0, 3],
      [3, 6],
      [6, 10],
    ]);
    expect(splitRows(1, 4)).toEqual([[0, 1]]);
  });

  it('gives the JS answer whatever the number of workers', async () => {
    const points = normalMatrix(new Random(1), 301, 7, 1);
    const centroids = { rows: 5, cols: 7, data: points.data.slice(0, 35) };
    const one = new WasmBackend(1);
    const three = new WasmBackend(3);
    try {
      const reference = await js.kmeansAssign(points, centroids);
      for (const b of [one, wasm, three]) {
        expect((await b.kmeansAssign(points, centroids)).labels).toEqual(reference.labels);
        // The label state stays in the shared memory: every label changes on the first pass, none
        // on a second to the same centroids, and the host array is left as it was.
        const labels = new Int32Array(301).fill(-1);
        expect((await b.kmeansStep(points, centroids, labels)).changed).toBe(301);
        expect((await b.kmeansStep(points, centroids, labels)).changed).toBe(0);
        expect(labels.every((l) => l === -1)).toBe(true);
        // A new run (a new array) starts from its own labels.
        expect((await b.kmeansStep(points, centroids, new Int32Array(301).fill(-1))).changed).toBe(301);
      }
    } finally {
      await Promise.all([one.dispose(), three.dispose()]);
    }
  });

  it('retries a failing task once, then fails with a typed kernel error', async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
    const pool = new WorkerPool(new WebAssembly.Module(Buffer.from(WASM_KERNELS, 'base64')), memory, 1);
    try {
      // An address past the end of the memory traps in the worker, every time.
      const error = await pool
        .all([{ fn: 'matmul', args: [1 << 30, 1 << 30, 0, 1 << 30, 4, 4, 0, 1] }])
        .catch((e: unknown) => e);
      expect(error).toMatchObject({
        code: 'NEUROCLUSTER_ERR_KERNEL',
        message: expect.stringMatching(/failed twice/),
      });
      // The pool still works afterwards.
      await pool.all([{ fn: 'matmul', args: [1024, 1024, 0, 1024, 0, 0, 0, 0] }]);
    } finally {
      await pool.close();
    }
  });

  it('replaces a worker that dies mid-task and runs the task again on the new one', async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
    const pool = new WorkerPool(new WebAssembly.Module(Buffer.from(WASM_KERNELS, 'base64')), memory, 1);
    try {
      // Fault injection: reach the worker and kill it while its task runs.
      const slot = (pool as unknown as { slots: { worker: { terminate(): Promise<number> } }[] }).slots[0]!;
      const dying = slot.worker;
      const done = pool.all([{ fn: 'peak', args: [50_000_000, 2048] }]);
      await dying.terminate();
      await done;
      expect(slot.worker).not.toBe(dying);
    } finally {
      await pool.close();
    }
  });

  it('computes the reservoir tanh to float32 accuracy: within 2e-7 relative of Math.tanh over [-12, 12]', async () => {
    // One step, leak 1, W_in 1, no bias or recurrence: the state is tanh of the input.
    const n = 20_001;
    const u = Float64Array.from({ length: n }, (_, i) => Math.fround(-12 + (24 * i) / (n - 1)));
    const out = await wasm.reservoirRun({
      inputs: { rows: n, cols: 1, data: u },
      inputDim: 1,
      steps: 1,
      sequence: false,
      inputWeights: { rows: 1, cols: 1, data: Float64Array.from([1]) },
      recurrent: { kind: 'dense', matrix: { rows: 1, cols: 1, data: Float64Array.from([0]) } },
      leak: 1,
      readout: { last: true },
    });
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const want = Math.tanh(u[i]!);
      worst = Math.max(worst, Math.abs(out.data[i]! - want) / Math.max(Math.abs(want), 1e-30));
    }
    expect(worst).toBeLessThan(2e-7);
  });

  it('takes its thread count from engine.wasm.threads (NEUROCLUSTER_WASM_THREADS sets it), else one per core', () => {
    expect(wasmThreads(2)).toBe(2);
    expect(wasmThreads()).toBeGreaterThanOrEqual(1);
  });
});

describe('WASM and the JS reference on the development data', () => {
  const cases = qualityCases(ROOT).filter((c) => ['iris', 'Coffee', 'UnitTest'].includes(c.name));
  it.for(cases.map((c) => [c.name, c] as const))(
    'same seed, same labels, every method: %s',
    async ([, c]) => {
      for (const method of METHODS) {
        const [reference, ours] = [await labelsOn(js, c, method), await labelsOn(wasm, c, method)];
        expect(Array.from(ours), `${c.name} ${method}`).toEqual(Array.from(reference));
      }
    },
  );
});
