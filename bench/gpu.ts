/**
 * The GPU bench entry, bundled by ../shared/gpu/pack.sh for a machine with no Node.js: the WebGPU
 * backend (and the JS reference for the label check; never the WASM backend), every GPU workload of the bench at the sizes,
 * PyTorch (reference_torch.py) in the same run when a path is given, the buffer pool's bytes beside
 * the rise in `nvidia-smi` used memory, and with --agreement, whether WebGPU and the JS reference
 * give the same labels for every method on iris and the development series sets, and with
 * --fit-n, a whole `esn` fit (encoder, moments, assembly, K-means, scores) timed twice in the same
 * run: the encoder's output kept on the device into K-means, and brought back to the host and sent
 * up again (the backend told not to keep it). One JSON line per result.
 *
 *   ../shared/gpu/pack.sh bench/gpu.ts && cp ../shared/reference/reference_torch.py .gpu-pack/
 *   cp -r ../shared/data/ts .gpu-pack/ts
 *   bash .gpu-pack/run.sh --torch .gpu-pack/reference_torch.py --agreement .gpu-pack/ts   # GPU machine
 *   bash .gpu-pack/run.sh --n 2000 --workloads esn,lif --reps 1 --fit-n 2000   # a check on SwiftShader
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type Backend, BackendRegistry } from '../src/backends/backend.js';
import { JsBackend } from '../src/backends/js/js-backend.js';
import { type WebGpuBackend, webGpuBackendFactory } from '../src/backends/webgpu/webgpu-backend.js';
import { NeuromorphicClusterer } from '../src/clusterer.js';
import { METHODS } from '../src/config/schema.js';
import { createLogger } from '../src/observability/logger.js';
import { runBench } from './harness.js';
import { labelsOn, qualityCases } from './quality.js';
import { makeBlobs, WORKLOAD_NAMES, type WorkloadName, type WorkloadShape } from './workloads.js';

const { values } = parseArgs({
  options: {
    workloads: { type: 'string', default: 'esn,esn-seq,lif,kmeans,silhouette' },
    n: { type: 'string', default: '1000000' },
    'silhouette-n': { type: 'string', default: '50000' },
    reps: { type: 'string', default: '3' },
    'memory-budget-mb': { type: 'string', default: '24576' },
    torch: { type: 'string' },
    python: { type: 'string', default: 'python3' },
    agreement: { type: 'string' },
    'fit-n': { type: 'string' },
  },
});

/** The shapes: R 256, T 50; d 32 and k 64 for K-means. */
function shapeOf(workload: WorkloadName, n: number): WorkloadShape {
  const base = { n, d: 4, k: 16, iters: 20, seed: 0, r: 256, t: 50, leak: 0.3, connectivity: 1 };
  if (workload === 'kmeans') return { ...base, d: 32, k: 64 };
  if (workload === 'silhouette') return { ...base, n: Number(values['silhouette-n']), d: 16 };
  return base;
}

/** GPU memory in use, in bytes, per nvidia-smi; undefined where there is none. */
function gpuMemoryUsed(): number | undefined {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits'], {
      encoding: 'utf8',
    });
    return Number(out.trim().split('\n')[0]) * 1024 * 1024;
  } catch {
    return undefined;
  }
}

function torchRun(workload: WorkloadName, s: WorkloadShape, reps: number): unknown {
  if (!values.torch || workload === 'silhouette') return undefined;
  const args = [values.torch, workload, '--n', `${s.n}`, '--d', `${s.d}`, '--r', `${s.r}`, '--t', `${s.t}`];
  args.push('--k', `${s.k}`, '--iters', `${s.iters}`, '--leak', `${s.leak}`, '--reps', `${reps}`);
  try {
    const out = execFileSync(values.python!, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
    return JSON.parse(out.trim().split('\n').at(-1)!);
  } catch (error) {
    return { error: (error as Error).message.split('\n')[0] };
  }
}

const print = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function agreement(seriesDir: string, gpu: WebGpuBackend): Promise<void> {
  const js = new JsBackend();
  for (const c of qualityCases('.', seriesDir)) {
    for (const method of METHODS) {
      const [reference, ours] = [await labelsOn(js, c, method), await labelsOn(gpu, c, method)];
      const differ = reference.filter((l, i) => l !== ours[i]).length;
      print({ agreement: c.name, method, rows: reference.length, differ });
    }
  }
}

/**
 * A whole `esn` fit of n blobs (d 4, k 16, R 256, T 50) on `gpu`, the best of `reps` wall times,
 * with the encoder's output kept on the device and with the backend told not to keep it (so it
 * comes back to the host after the encoder and goes up again for the assembly and K-means).
 */
async function fitBoth(gpu: WebGpuBackend, n: number, reps: number): Promise<void> {
  const { points } = makeBlobs(n, 4, 16, 0);
  const roundTrip = new Proxy(gpu, {
    get(target, key) {
      if (key === 'keepsOutputs') return false;
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const seconds: Record<string, number> = {};
  const labels: Record<string, Int32Array> = {};
  for (const [path, backend] of [
    ['kept', gpu],
    ['roundTrip', roundTrip],
  ] as [string, Backend][]) {
    const registry = new BackendRegistry();
    registry.register({ name: 'webgpu', priority: 0, smallProblems: true, create: async () => backend });
    const clusterer = new NeuromorphicClusterer({
      method: 'esn',
      nClusters: 16,
      seed: 0,
      logger: createLogger({ level: 'silent' }),
      registry,
      backend: 'webgpu',
      config: { encoders: { esn: { units: 256, steps: 50, includeInput: false } } },
    });
    // A small fit first, so that pipeline compilation is not timed on either path.
    await clusterer.fit(makeBlobs(2000, 4, 16, 1).points);
    let best = Number.POSITIVE_INFINITY;
    for (let rep = 0; rep < reps; rep++) {
      const t0 = performance.now();
      const result = await clusterer.fit(points);
      best = Math.min(best, (performance.now() - t0) / 1000);
      // A fallback's CPU K-means would time something else: refuse to report it.
      if (result.fallbackUsed)
        throw new Error(`the ${path} fit fell back: ${JSON.stringify(result.fallback)}`);
      labels[path] = result.labels;
    }
    seconds[path] = Number(best.toFixed(3));
  }
  const differ = labels.kept!.filter((l, i) => l !== labels.roundTrip![i]).length;
  print({
    fit: 'esn',
    n,
    seconds,
    roundTripOverKept: Number((seconds.roundTrip! / seconds.kept!).toFixed(3)),
    labelsDiffer: differ,
  });
}

async function main(): Promise<void> {
  const registry = new BackendRegistry();
  registry.register(
    webGpuBackendFactory({ memoryBudgetBytes: Number(values['memory-budget-mb']) * 1024 * 1024 }),
  );
  const gpu = (await registry.get('webgpu')) as WebGpuBackend;
  // The baseline is taken with the device open: the rise after it is the pool's doing.
  const baseline = gpuMemoryUsed();
  print({ device: gpu.device, gpuMemoryUsedWithDevice: baseline });
  const reps = Number(values.reps);
  for (const workload of values.workloads!.split(',') as WorkloadName[]) {
    if (!WORKLOAD_NAMES.includes(workload)) throw new Error(`unknown workload ${workload}`);
    const shape = shapeOf(workload, Number(values.n));
    const ours = await runBench({ workload, ...shape, reps, backend: 'webgpu', compare: false }, registry);
    // The pool keeps its buffers (no budget pressure at these sizes), so what it holds now is its
    // peak; readback buffers live in host memory and are left out of the comparison.
    const used = gpuMemoryUsed();
    const pool = gpu.memory();
    const deviceBytes = pool.bytesAllocated - pool.readbackBytesAllocated;
    const torch = torchRun(workload, shape, reps) as { seconds?: number } | undefined;
    print({
      ...ours,
      ...(torch
        ? { torch, ratio: torch.seconds ? Number((ours.seconds / torch.seconds).toFixed(3)) : null }
        : {}),
      pool,
      ...(used !== undefined && baseline !== undefined
        ? {
            gpuMemoryRise: used - baseline,
            poolOverRise: Number((deviceBytes / (used - baseline)).toFixed(3)),
          }
        : {}),
    });
  }
  if (values['fit-n']) await fitBoth(gpu, Number(values['fit-n']), reps);
  if (values.agreement) {
    if (!existsSync(values.agreement)) throw new Error(`no data folder ${values.agreement}`);
    await agreement(values.agreement, gpu);
  }
  await registry.disposeAll();
}

await main();
