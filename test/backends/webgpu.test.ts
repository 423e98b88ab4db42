/**
 * The WebGPU backend beyond the shared conformance suite: its WGSL compiles, it submits and reads
 * back O(1) times per chunk, its chunked path (a budget of a few kilobytes) gives the unchunked
 * answer, a fit's features go from the encoders to K-means without leaving the device (counted in
 * bytes through Dawn), it refuses what it cannot run before dispatch, and its failures are typed.
 * Runs on SwiftShader where Debian's chromium is installed; skipped without an adapter unless
 * REQUIRE_WEBGPU=1. (Its labels against the JS reference on real data: webgpu-agreement.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import {
  type Backend,
  BackendRegistry,
  type ReservoirRun,
  type SpikingRun,
} from '../../src/backends/backend.js';
import { JsBackend, jsBackendFactory } from '../../src/backends/js/js-backend.js';
import { openDevice } from '../../src/backends/webgpu/device.js';
import { webGpuBackendFactory } from '../../src/backends/webgpu/factory.js';
import { bind, KERNELS, KernelCache, type KernelName } from '../../src/backends/webgpu/kernels.js';
import { WebGpuBackend } from '../../src/backends/webgpu/webgpu-backend.js';
import { kmeans } from '../../src/cluster/kmeans.js';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { isDeviceMatrix, type Matrix } from '../../src/core/matrix.js';
import { Random } from '../../src/core/random.js';
import {
  normalMatrix,
  recurrentWeights,
  reservoirMatrix,
  toCsr,
  uniformMatrix,
} from '../../src/encoders/weights.js';
import { createLogger } from '../../src/observability/logger.js';
import { failure } from '../helpers.js';
import { webGpuForFile } from './webgpu-helpers.js';

const js = new JsBackend();
/** The backend, or a skip (a failure under REQUIRE_WEBGPU=1) where no adapter exists. */
const gpu = webGpuForFile();

/** A backend of its own on the same kind of device, with a tiny memory budget. */
async function tinyBudget(bytes: number): Promise<WebGpuBackend> {
  return new WebGpuBackend(await openDevice({}, false), { budgetBytes: bytes });
}

function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++)
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return worst;
}

const rng = new Random(7);
const points = normalMatrix(rng, 300, 8, 1);

function esnRun(n: number, steps: number, sparse = false): ReservoirRun {
  const r = 24;
  const w = reservoirMatrix(new Random(3), r, sparse ? 0.2 : 1, 0.9);
  return {
    inputs: normalMatrix(new Random(4), n, 3, 1),
    inputDim: 3,
    steps,
    sequence: false,
    inputWeights: uniformMatrix(new Random(5), 3, r, 1),
    bias: uniformMatrix(new Random(6), 1, r, 0.2).data,
    recurrent: sparse ? toCsr(w) : recurrentWeights(w),
    leak: 0.4,
    readout: { last: true, mean: true, washout: 1, times: [0] },
  };
}

function lifRun(n: number, steps: number): SpikingRun {
  const dim = 5;
  const r = 20;
  const probs = uniformMatrix(new Random(8), n, dim, 1);
  const inputs: Matrix = { ...probs, data: probs.data.map((v) => Math.abs(v) * 0.5) };
  return {
    inputs,
    inputDim: dim,
    steps,
    sequence: false,
    encoding: 'rate',
    seed: 11,
    sampleKeys: Uint32Array.from({ length: n }, (_, i) => i * 2654435761),
    inputWeights: normalMatrix(new Random(9), dim, r, 0.8),
    recurrent: recurrentWeights(reservoirMatrix(new Random(10), r, 0.3, 0.5)),
    decay: 0.05,
    threshold: 1,
    reset: 0,
    refractorySteps: 2,
    traceDecay: 0.8,
    readout: 'counts',
    windows: 2,
  };
}

describe('WGSL sources', () => {
  it('every module compiles and every kernel layout matches its module (Dawn null backend)', async () => {
    const { create } = (await import('webgpu')) as { create(flags: string[]): GPU };
    const instance = create(['backend=null']);
    const adapter = await instance.requestAdapter();
    expect(adapter).not.toBeNull();
    const device = await adapter!.requestDevice({
      requiredLimits: {
        maxStorageBuffersPerShaderStage: adapter!.limits.maxStorageBuffersPerShaderStage,
        maxComputeWorkgroupStorageSize: adapter!.limits.maxComputeWorkgroupStorageSize,
      },
    });
    const cache = new KernelCache(device);
    for (const name of Object.keys(KERNELS) as KernelName[]) {
      const kernel = await cache.get(name);
      expect(kernel.pipeline, name).toBeDefined();
    }
    device.destroy();
    expect(instance).toBeDefined();
  });

  it('binds a pooled buffer larger than one binding may be by the range the kernel can use (Dawn null backend)', async () => {
    const { create } = (await import('webgpu')) as { create(flags: string[]): GPU };
    const adapter = await create(['backend=null']).requestAdapter();
    // WebGPU's default limits: bindings of 128 MiB, buffers of 256 MiB. The pool's size classes
    // are powers of two, so 129 MiB of features live in a 256 MiB buffer.
    const device = await adapter!.requestDevice();
    const kernel = await new KernelCache(device).get('assemble');
    const storage = 0x80 | 0x8; // STORAGE | COPY_DST
    const buffer = (size: number) => device.createBuffer({ size, usage: storage });
    const params = device.createBuffer({ size: 256, usage: 0x40 | 0x8 }); // UNIFORM | COPY_DST
    const features = buffer(256 << 20);
    expect(features.size).toBeGreaterThan(device.limits.maxStorageBufferBindingSize);
    device.pushErrorScope('validation');
    bind(device, kernel, 0, [params, buffer(256), buffer(256), buffer(256), buffer(256), features]);
    expect(await device.popErrorScope()).toBeNull();
    device.destroy();
  });
});

/**
 * A backend on its own device whose real `queue.submit` and `GPUBuffer.mapAsync` calls are
 * counted (Dawn's own methods wrapped), so the counts do not rest on the backend's bookkeeping.
 */
async function countedBackend(onFinished: (fn: () => Promise<void>) => void): Promise<{
  backend: WebGpuBackend;
  calls: () => [number, number];
  bytes: () => { uploads: number[]; readBacks: number[] };
}> {
  const opened = await openDevice({}, false);
  let submits = 0;
  let maps = 0;
  const uploads: number[] = [];
  const readBacks: number[] = [];
  const queue = opened.device.queue;
  const submit = queue.submit.bind(queue);
  queue.submit = (buffers) => {
    submits++;
    submit(buffers);
  };
  const writeBuffer = queue.writeBuffer.bind(queue) as (...args: unknown[]) => void;
  queue.writeBuffer = ((...args: unknown[]) => {
    // (buffer, offset, data, dataOffset, size): the backend always passes the size in bytes.
    uploads.push(args[4] as number);
    writeBuffer(...args);
  }) as GPUQueue['writeBuffer'];
  const backend = new WebGpuBackend(opened, { budgetBytes: 64 << 20 });
  const probe = opened.device.createBuffer({ size: 4, usage: 1 | 8 });
  const proto = Object.getPrototypeOf(probe) as GPUBuffer;
  probe.destroy();
  const mapAsync = proto.mapAsync;
  proto.mapAsync = function (this: GPUBuffer, ...args: Parameters<GPUBuffer['mapAsync']>) {
    if (this.label.endsWith('readback')) {
      maps++;
      readBacks.push(args[2] ?? this.size);
    }
    return mapAsync.apply(this, args);
  };
  onFinished(() => {
    proto.mapAsync = mapAsync;
    return backend.dispose();
  });
  return {
    backend,
    calls: () => [submits, maps],
    bytes: () => ({ uploads: [...uploads], readBacks: [...readBacks] }),
  };
}

describe('WebGPU backend', () => {
  it('runs a whole reservoir or spiking run in one submission and one readback, whatever T', async (ctx) => {
    gpu(ctx);
    const { backend: b, calls } = await countedBackend(ctx.onTestFinished);
    for (const steps of [3, 40]) {
      const [s0, m0] = calls();
      const dispatches = b.counters.dispatches;
      await b.reservoirRun(esnRun(50, steps));
      const [s1, m1] = calls();
      expect([s1 - s0, m1 - m0]).toEqual([1, 1]);
      expect(b.counters.dispatches - dispatches).toBe(steps);
      await b.spikingRun(lifRun(50, steps));
      const [s2, m2] = calls();
      expect([s2 - s1, m2 - m1]).toEqual([1, 1]);
    }
  });

  it('reads back once per Lloyd step, and reaches the JS labels in a full K-means run', async (ctx) => {
    const b = gpu(ctx);
    const counted = await countedBackend(ctx.onTestFinished);
    const labels = new Int32Array(points.rows).fill(-1);
    const centroids: Matrix = { rows: 5, cols: 8, data: points.data.slice(0, 40) };
    const [s0, m0] = counted.calls();
    await counted.backend.kmeansStep(points, centroids, labels);
    await counted.backend.kmeansStep(points, centroids, labels);
    expect(counted.calls()).toEqual([s0 + 2, m0 + 2]);
    const options = {
      k: 5,
      nInit: 2,
      maxIter: 100,
      tol: 1e-4,
      algorithm: 'lloyd' as const,
      miniBatchThreshold: 1e9,
      batchSize: 1024,
      maxNoImprovement: 10,
      seed: 0,
    };
    const [onGpu, onJs] = await Promise.all([kmeans(b, points, options), kmeans(js, points, options)]);
    expect(Array.from(onGpu.labels)).toEqual(Array.from(onJs.labels));
    expect(onGpu.inertia).toBeCloseTo(onJs.inertia, 3);
  });

  it("keeps an encoder's output on the device for the moments and the assembly, and frees it", async (ctx) => {
    const b = gpu(ctx);
    for (const [name, onGpu, onJs] of [
      [
        'reservoir',
        () => b.reservoirRun({ ...esnRun(300, 6), keep: true }),
        () => js.reservoirRun(esnRun(300, 6)),
      ],
      ['spiking', () => b.spikingRun({ ...lifRun(300, 8), keep: true }), () => js.spikingRun(lifRun(300, 8))],
    ] as const) {
      const inUse = b.memory().bytesInUse;
      const kept = await onGpu();
      if (!isDeviceMatrix(kept)) throw new Error(`${name}: the output came back to the host`);
      expect(b.memory().bytesInUse - inUse).toBeGreaterThanOrEqual(4 * kept.rows * kept.cols);
      const host = await onJs();
      expect(maxRelErr((await kept.read()).data, host.data), name).toBeLessThan(1e-4);
      const order = Int32Array.from(new Random(15).sample(300, 300));
      const [mg, mj] = [await b.columnMoments(kept, order), await js.columnMoments(host, order)];
      expect(maxRelErr(mg.means, mj.means), name).toBeLessThan(1e-4);
      expect(maxRelErr(mg.variances, mj.variances), name).toBeLessThan(1e-4);
      const blocks = [
        { features: points, keep: [1, 4], means: [0.5, -0.25], scale: 2 },
        { features: kept, keep: [0, 3, 7], means: [0.1, 0.2, 0.3], scale: 0.5 },
      ];
      const [ag, aj] = [
        await b.assembleBlocks(blocks, order),
        await js.assembleBlocks([blocks[0]!, { ...blocks[1]!, features: host }], order),
      ];
      expect([ag.rows, ag.cols]).toEqual([300, 5]);
      expect(maxRelErr(ag.data, aj.data), name).toBeLessThan(1e-4);
      const before = b.memory().bytesInUse;
      kept.release();
      kept.release();
      expect(before - b.memory().bytesInUse).toBeGreaterThanOrEqual(4 * kept.rows * kept.cols);
      await expect(kept.read()).rejects.toThrow(/released/);
    }
  });

  it('sums moments in a fixed order: rows stored in another order give the same bits', async (ctx) => {
    const b = gpu(ctx);
    const n = 2000;
    const m = normalMatrix(new Random(16), n, 9, 3);
    const shuffle = Int32Array.from(new Random(17).sample(n, n));
    const shuffled: Matrix = { rows: n, cols: 9, data: new Float64Array(n * 9) };
    // Row i of the shuffled matrix is row shuffle[i] of m; so m's row q sits at where[q].
    const where = new Int32Array(n);
    shuffle.forEach((row, i) => {
      shuffled.data.set(m.data.subarray(row * 9, (row + 1) * 9), i * 9);
      where[row] = i;
    });
    const canonical = Int32Array.from({ length: n }, (_, q) => q);
    const [a, c] = [await b.columnMoments(m, canonical), await b.columnMoments(shuffled, where)];
    expect(Array.from(c.means)).toEqual(Array.from(a.means));
    expect(Array.from(c.variances)).toEqual(Array.from(a.variances));
  });

  it.for(['esn', 'hybrid'] as const)(
    'a %s fit keeps the features on the device from the encoders to K-means',
    async (method, ctx) => {
      gpu(ctx);
      const counted = await countedBackend(ctx.onTestFinished);
      // hybrid runs three encoders: fewer rows keep it quick on SwiftShader.
      const n = method === 'esn' ? 1500 : 360;
      const rows: number[][] = [];
      const blobs = normalMatrix(new Random(18), n, 4, 0.4);
      for (let i = 0; i < n; i++)
        rows.push(Array.from(blobs.data.subarray(i * 4, i * 4 + 4), (v) => v + (i % 3) * 2));
      const fitOn = async (on: Backend) => {
        const registry = new BackendRegistry();
        registry.register({ name: on.name, priority: 0, smallProblems: true, create: async () => on });
        const clusterer = new NeuromorphicClusterer({
          method,
          nClusters: 3,
          seed: 0,
          logger: createLogger({ level: 'silent' }),
          registry,
          backend: on.name,
        });
        return { clusterer, result: await clusterer.fit(rows) };
      };
      const before = counted.bytes();
      const { clusterer, result: onGpu } = await fitOn(counted.backend);
      const after = counted.bytes();
      const uploads = after.uploads.slice(before.uploads.length);
      const readBacks = after.readBacks.slice(before.readBacks.length);
      // The matrix K-means clusters (esn: the assembled blocks; hybrid: their PCA projection) is
      // made on the device and stays there: it never goes up, and comes back once.
      const featureBytes = 4 * onGpu.features.rows * onGpu.features.cols;
      expect(uploads.filter((b) => b === featureBytes)).toEqual([]);
      expect(readBacks.filter((b) => b === featureBytes)).toEqual([featureBytes]);
      if (method === 'esn') {
        expect(onGpu.features.cols).toBeGreaterThan(100);
        // Input, weights, K-means++ candidates and centroids go up (a third of the features'
        // bytes here), and nothing else as large as the features comes back: the encoder's raw
        // output stays on the device. (hybrid's PCA centres the assembled matrix on the host for
        // its covariance, so it goes up there.)
        expect(uploads.reduce((a, b) => a + b, 0)).toBeLessThan(featureBytes / 2);
        expect(readBacks.filter((b) => b >= featureBytes / 2)).toEqual([featureBytes]);
      }
      const { result: onJs } = await fitOn(js);
      expect(Array.from(onGpu.labels)).toEqual(Array.from(onJs.labels));
      expect(maxRelErr(onGpu.features.data, onJs.features.data)).toBeLessThan(1e-3);
      // predict encodes through the same device path (no row order) and gives the fit's labels.
      expect(Array.from(await clusterer.predict(rows))).toEqual(Array.from(onGpu.labels));
    },
  );

  it('splits work into chunks under a tiny device-memory budget and gives the same answer', async (ctx) => {
    const b = gpu(ctx);
    const tiny = await tinyBudget(16 * 1024);
    try {
      for (const sparse of [false, true]) {
        const run = esnRun(300, 6, sparse);
        const before = tiny.counters.submits;
        const chunked = await tiny.reservoirRun(run);
        expect(tiny.counters.submits - before).toBeGreaterThan(1);
        expect(maxRelErr(chunked.data, (await b.reservoirRun(run)).data)).toBe(0);
        expect(maxRelErr(chunked.data, (await js.reservoirRun(run)).data)).toBeLessThan(1e-4);
      }
      const lif = lifRun(300, 12);
      expect(Array.from((await tiny.spikingRun(lif)).data)).toEqual(
        Array.from((await js.spikingRun(lif)).data),
      );
      // An output that would not fit a quarter of the budget is not kept: it comes back.
      const notKept = await tiny.spikingRun({ ...lif, keep: true });
      expect(isDeviceMatrix(notKept)).toBe(false);
      expect(Array.from((notKept as Matrix).data)).toEqual(Array.from((await js.spikingRun(lif)).data));
      // Blocks too big to bind are assembled on the host, as the reference does.
      const block = { features: points, keep: [0, 2, 7], means: [0.5, 0.5, 0], scale: 3 };
      expect(
        maxRelErr((await tiny.assembleBlocks([block])).data, (await js.assembleBlocks([block])).data),
      ).toBe(0);
      const big = normalMatrix(new Random(12), 700, 8, 1);
      const centroids: Matrix = { rows: 4, cols: 8, data: big.data.slice(0, 32) };
      const [a, c] = [new Int32Array(700).fill(-1), new Int32Array(700).fill(-1)];
      const before = { ...tiny.counters };
      const chunkedStep = await tiny.kmeansStep(big, centroids, a);
      // Chunks of points go up one after another, and the sums still come back once.
      expect(tiny.counters.submits - before.submits).toBeGreaterThan(1);
      expect(tiny.counters.readbacks - before.readbacks).toBe(1);
      const wholeStep = await js.kmeansStep(big, centroids, c);
      expect(Array.from(chunkedStep.counts)).toEqual(Array.from(wholeStep.counts));
      expect(maxRelErr(chunkedStep.sums, wholeStep.sums)).toBeLessThan(1e-5);
      expect(chunkedStep.changed).toBe(700);
      expect((await tiny.kmeansAssign(big, centroids)).labels).toEqual(c);
      const wide = normalMatrix(new Random(13), 200, 40, 1);
      const proj = normalMatrix(new Random(14), 40, 30, 1);
      expect(
        maxRelErr((await tiny.matmul(wide, proj)).data, (await js.matmul(wide, proj)).data),
      ).toBeLessThan(1e-4);
      expect(
        maxRelErr(
          (await tiny.pairwiseDistances(wide, wide)).data,
          (await js.pairwiseDistances(wide, wide)).data,
        ),
      ).toBeLessThan(1e-4);
      expect(tiny.memory().peakBytesAllocated).toBeLessThanOrEqual(16 * 1024);
    } finally {
      await tiny.dispose();
    }
  });

  it('a job whose smallest chunk passes the budget is refused, typed, before dispatch', async (ctx) => {
    gpu(ctx);
    const tiny = await tinyBudget(4 * 1024);
    try {
      const error = await failure(tiny.reservoirRun(esnRun(300, 4)));
      expect(error.code).toBe('NEUROCLUSTER_ERR_OUT_OF_MEMORY');
      expect(error.message).toMatch(/device-memory budget/);
      expect(tiny.counters.submits).toBe(0);
    } finally {
      await tiny.dispose();
    }
  });

  it('refuses shapes past the limits its WGSL fixes, before dispatch', async (ctx) => {
    const b = gpu(ctx);
    const before = b.counters.submits;
    const many: Matrix = { rows: 1100, cols: 8, data: new Float64Array(1100 * 8) };
    const k = await failure(b.kmeansStep(points, many, new Int32Array(points.rows).fill(-1)));
    expect([k.code, k.message]).toEqual(['NEUROCLUSTER_ERR_KERNEL', expect.stringMatching(/k = 1100/)]);
    const wide = lifRun(2, 4);
    const huge = await failure(
      b.spikingRun({ ...wide, inputWeights: { rows: 5, cols: 5000, data: new Float64Array(25_000) } }),
    );
    expect(huge.message).toMatch(/5000 neurons/);
    expect(b.counters.submits).toBe(before);
  });

  it('reports a non-finite result as a numerical error', async (ctx) => {
    const b = gpu(ctx);
    const big: Matrix = { rows: 2, cols: 2, data: Float64Array.from([3e38, 3e38, 1, 1]) };
    const error = await failure(b.matmul(big, { rows: 2, cols: 1, data: Float64Array.from([3, 3]) }));
    expect(error.code).toBe('NEUROCLUSTER_ERR_NUMERICAL');
  });

  it('turns a lost device into NEUROCLUSTER_ERR_DEVICE_LOST', async (ctx) => {
    gpu(ctx);
    const opened = await openDevice({}, false);
    const doomed = new WebGpuBackend(opened, { budgetBytes: 1 << 20 });
    opened.device.destroy();
    await opened.device.lost;
    const error = await failure(doomed.matmul(points, { rows: 8, cols: 2, data: new Float64Array(16) }));
    expect(error.code).toBe('NEUROCLUSTER_ERR_DEVICE_LOST');
  });

  it('returns every pooled buffer after a run, counting bytes in use and allocated', async (ctx) => {
    const b = gpu(ctx);
    const before = b.memory().bytesInUse;
    await b.reservoirRun(esnRun(100, 5));
    await b.spikingRun(lifRun(100, 5));
    const after = b.memory();
    expect(after.bytesInUse).toBe(before);
    expect(after.bytesAllocated).toBeGreaterThan(0);
    expect(after.peakBytesAllocated).toBeGreaterThanOrEqual(after.bytesAllocated);
  });
});

describe('WebGPU under auto', () => {
  it('passes over a software adapter with one info line, unless software is allowed', async (ctx) => {
    const b = gpu(ctx);
    if (!b.software) ctx.skip('the adapter here is a hardware one');
    const registry = new BackendRegistry();
    registry.register(webGpuBackendFactory());
    registry.register(jsBackendFactory);
    const lines: string[] = [];
    const picked = await registry.select('auto', { info: (_o, msg) => lines.push(msg) });
    expect(picked.backend.name).toBe('js');
    expect(picked.tried[0]).toMatchObject({
      name: 'webgpu',
      ok: false,
      reason: expect.stringMatching(/software/),
    });
    expect(lines).toEqual(['backend webgpu skipped']);
    const allowed = await registry.select('auto', undefined, {
      options: { webgpu: { allowSoftware: true } },
    });
    expect(allowed.backend.name).toBe('webgpu');
    await registry.disposeAll();
  });
});
