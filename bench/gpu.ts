/**
 * The GPU bench entry, bundled by ../shared/gpu/pack.sh for a machine with no Node.js: the WebGPU
 * backend (and the JS reference for the label check; never the WASM backend), every GPU workload of the bench at the sizes,
 * PyTorch (reference_torch.py) in the same run when a path is given, the buffer pool's bytes beside
 * the rise in `nvidia-smi` used memory, and with --agreement, whether WebGPU and the JS reference
 * give the same labels for every method on iris and the development series sets, and with
 * --fit-n, a whole `esn` fit (encoder, moments, assembly, K-means, scores) timed twice in the same
 * run: the encoder's output kept on the device into K-means, and brought back to the host and sent
 * up again (the backend told not to keep it), and with --hybrid-n, the whole `hybrid` fit
 * (bench/hybrid-fit.ts) in a process of its own: wall time, phases, peak host RSS, the pool's and
 * nvidia-smi's device memory high-water mark, and the ARI against a CPU backend's labels of the same
 * fit (--hybrid-reference, written beforehand by `node dist/bench/hybrid-fit.js`), and with --scale-n,
 * the streamed `hybrid` fit (src/fit/streamed.ts) of a float32 NPY file of n x 16 rows written
 * beforehand to the temporary directory, labels to a file, in a process of its own: wall time,
 * phases, peak host RSS, device memory, ARI against the blobs. One JSON line per result.
 *
 *   ../shared/gpu/pack.sh bench/gpu.ts && cp ../shared/reference/reference_torch.py .gpu-pack/
 *   cp -r ../shared/data/ts .gpu-pack/ts
 *   bash .gpu-pack/run.sh --torch .gpu-pack/reference_torch.py --torch-silhouette bench/silhouette_torch.py \
 *     --agreement .gpu-pack/ts --hybrid-n 1000000 --hybrid-reference .gpu-data/hybrid-1000000.i32   # GPU machine
 *   bash .gpu-pack/run.sh --n 2000 --workloads esn,lif --reps 1 --fit-n 2000   # a check on SwiftShader
 *   bash .gpu-pack/run.sh --workloads '' --scale-n 10000000   # the streamed fit at scale (GPU machine)
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Backend, BackendRegistry } from '../src/backends/backend.js';
import { JsBackend, jsBackendFactory } from '../src/backends/js/js-backend.js';
import { webGpuBackendFactory } from '../src/backends/webgpu/factory.js';
import type { WebGpuBackend } from '../src/backends/webgpu/webgpu-backend.js';
import { runBench } from '../src/bench/harness.js';
import {
  makeBlobs,
  registryOf,
  WORKLOAD_NAMES,
  type WorkloadName,
  type WorkloadShape,
  writeBlobsNpy,
} from '../src/bench/workloads.js';
import { externalQuality } from '../src/cluster/metrics.js';
import { NeuromorphicClusterer } from '../src/clusterer.js';
import { METHODS } from '../src/config/schema.js';
import { createLogger } from '../src/observability/logger.js';
import { HYBRID_DATA, hybridFit } from './hybrid-fit.js';
import { labelsOn, qualityCases } from './quality.js';

const { values } = parseArgs({
  options: {
    workloads: { type: 'string', default: 'esn,esn-sparse,lif,kmeans,silhouette' },
    n: { type: 'string', default: '1000000' },
    'silhouette-n': { type: 'string', default: '1000000' },
    reps: { type: 'string', default: '3' },
    'memory-budget-mb': { type: 'string', default: '24576' },
    torch: { type: 'string' },
    'torch-silhouette': { type: 'string' },
    // The device's fp32 (non-tensor) rate and memory bandwidth: an H200 SXM's, by its datasheet.
    'peak-gflops': { type: 'string', default: '67000' },
    'peak-gbps': { type: 'string', default: '4800' },
    'hybrid-n': { type: 'string' },
    'hybrid-reference': { type: 'string' },
    'hybrid-child': { type: 'string' },
    python: { type: 'string', default: 'python3' },
    agreement: { type: 'string' },
    'fit-n': { type: 'string' },
    'scale-n': { type: 'string' },
    'scale-child': { type: 'string' },
  },
});

/** The runs: each workload of the bench, and `esn-sparse`, the `esn` reservoir at connectivity 0.1. */
const RUNS = [...WORKLOAD_NAMES, 'esn-sparse'] as const;
type RunName = (typeof RUNS)[number];

/** The shapes: R 256, T 50; d 32 and k 64 for K-means; d 16, k 16 for the silhouette. */
function shapeOf(run: RunName, n: number): { workload: WorkloadName } & WorkloadShape {
  const base = { n, d: 4, k: 16, iters: 20, seed: 0, r: 256, t: 50, leak: 0.3, connectivity: 1 };
  if (run === 'esn-sparse') return { workload: 'esn', ...base, connectivity: 0.1 };
  if (run === 'kmeans') return { workload: run, ...base, d: 32, k: 64 };
  if (run === 'silhouette') return { workload: run, ...base, n: Number(values['silhouette-n']), d: 16 };
  return { workload: run, ...base };
}

/**
 * The fewest bytes each run must move through device memory, for its bandwidth beside the peak: a
 * reservoir reads and writes its state every step (R x 4 bytes a sample does not fit on chip), a
 * fused LIF run reads its inputs and writes its counts once, K-means reads the points each iteration.
 */
function minimumBytes(workload: WorkloadName, s: WorkloadShape): number {
  const f = 4;
  switch (workload) {
    case 'esn':
    case 'esn-seq':
      return s.n * (s.d * (workload === 'esn' ? 1 : s.t) + 2 * s.r * s.t + s.r) * f;
    case 'lif':
      return s.n * (s.d + s.r) * f;
    case 'kmeans':
      return s.iters * s.n * (s.d + 1) * f;
    case 'silhouette':
      return s.n * (s.d + 1) * f;
  }
}

/** nvidia-smi's used-memory readings every 100 ms while it runs: stop() gives the highest. */
function watchGpuMemory(): { stop: () => Promise<number | undefined> } {
  let high: number | undefined;
  const child = spawn(
    'nvidia-smi',
    ['--query-gpu=memory.used', '--format=csv,noheader,nounits', '-lms', '100'],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  child.on('error', () => {});
  child.stdout.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      const mib = Number(line.trim());
      if (line.trim() !== '' && Number.isFinite(mib)) high = Math.max(high ?? 0, mib * 1024 * 1024);
    }
  });
  return {
    stop: async () => {
      child.kill();
      await new Promise((resolve) =>
        child.exitCode !== null ? resolve(undefined) : child.once('close', resolve),
      );
      return high;
    },
  };
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
  let args: string[];
  if (workload === 'silhouette') {
    if (!values['torch-silhouette']) return undefined;
    args = [
      values['torch-silhouette'],
      '--n',
      `${s.n}`,
      '--d',
      `${s.d}`,
      '--k',
      `${s.k}`,
      '--reps',
      `${reps}`,
    ];
  } else {
    if (!values.torch) return undefined;
    // reference_torch.py's reservoir is dense: the sparse run is compared with it as it is.
    args = [values.torch, workload, '--n', `${s.n}`, '--d', `${s.d}`, '--r', `${s.r}`, '--t', `${s.t}`];
    args.push('--k', `${s.k}`, '--iters', `${s.iters}`, '--leak', `${s.leak}`, '--reps', `${reps}`);
  }
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
      const ari = differ === 0 ? 1 : Number(externalQuality(reference, ours).ari.toFixed(4));
      print({ agreement: c.name, method, rows: reference.length, differ, ari });
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
    const registry = registryOf(backend);
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

/**
 * The whole `hybrid` fit of n rows in a process of its own (so that its peak RSS is the fit's), with
 * nvidia-smi watched meanwhile: the rise over `baseline` includes the child's own device context.
 */
async function hybridInChild(
  n: number,
  baseline: number | undefined,
  mode: '--hybrid-child' | '--scale-child' = '--hybrid-child',
): Promise<void> {
  const watch = watchGpuMemory();
  const args = [process.argv[1]!, mode, `${n}`];
  if (values['hybrid-reference']) args.push('--hybrid-reference', values['hybrid-reference']);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const high = await watch.stop();
  const line = out.trim().split('\n').at(-1);
  if (code !== 0 || !line) {
    print({ fit: 'hybrid', n, error: `the child exited with ${code}` });
    return;
  }
  print({
    ...JSON.parse(line),
    ...(high !== undefined && baseline !== undefined ? { gpuMemoryHighWaterRise: high - baseline } : {}),
  });
}

/** The WebGPU backend under --memory-budget-mb, in a registry of its own. */
async function openGpu(): Promise<{ registry: BackendRegistry; gpu: WebGpuBackend }> {
  const registry = new BackendRegistry();
  registry.register(
    webGpuBackendFactory({ memoryBudgetBytes: Number(values['memory-budget-mb']) * 1024 * 1024 }),
  );
  return { registry, gpu: (await registry.get('webgpu')) as WebGpuBackend };
}

/** The child's side: one hybrid fit on WebGPU, compared with the reference labels when given. */
async function hybridChild(n: number): Promise<void> {
  const { registry, gpu } = await openGpu();
  const fit = await hybridFit(gpu, n);
  let agreement: object | undefined;
  if (values['hybrid-reference']) {
    const bytes = readFileSync(values['hybrid-reference']);
    const reference = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    if (reference.length !== n) throw new Error(`the reference holds ${reference.length} labels, not ${n}`);
    agreement = {
      ari: externalQuality(reference, fit.labels).ari,
      differ: reference.filter((l, i) => l !== fit.labels[i]).length,
    };
  }
  print({
    fit: 'hybrid',
    n,
    seconds: Number(fit.seconds.toFixed(3)),
    timings: fit.timings,
    truthAri: fit.truthAri,
    ...(agreement ? { againstCpu: agreement } : {}),
    ...(fit.fallback ? { fallback: fit.fallback } : {}),
    maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    pool: gpu.memory(),
  });
  await registry.disposeAll();
}

/** The child's side of --scale-n: the streamed hybrid fit of an NPY file on WebGPU. */
async function scaleChild(n: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'neurocluster-gpu-scale-'));
  // A step cut off by its time limit (bench/gpu-session.sh) ends here with SIGTERM: the data goes too.
  process.once('SIGTERM', () => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(143);
  });
  try {
    const data = join(dir, 'blobs.npy');
    const truthFile = join(dir, 'truth.npy');
    const { d, k, seed, std } = HYBRID_DATA;
    await writeBlobsNpy(data, truthFile, n, d, k, seed, std);
    const { registry, gpu } = await openGpu();
    registry.register(jsBackendFactory);
    const clusterer = new NeuromorphicClusterer({
      method: 'hybrid',
      nClusters: k,
      seed: 0,
      registry,
      backend: 'webgpu',
      logger: createLogger({ level: 'silent' }),
      config: { stream: { mode: 'on' }, performance: { baselines: false } },
    });
    const labelsOut = join(dir, 'labels.csv');
    const t0 = performance.now();
    const result = await clusterer.fit(data, { labelsOut });
    const seconds = (performance.now() - t0) / 1000;
    const truthBytes = readFileSync(truthFile);
    const truth = new Int32Array(
      truthBytes.buffer.slice(truthBytes.byteOffset + 10 + truthBytes.readUInt16LE(8)),
    );
    const labels = Int32Array.from(readFileSync(labelsOut, 'utf8').trim().split('\n').slice(1), Number);
    print({
      fit: 'hybrid-streamed',
      n,
      seconds: Number(seconds.toFixed(3)),
      timings: result.timings,
      streamed: result.streamed,
      backend: result.backend,
      truthAri: externalQuality(truth, labels).ari,
      ...(result.fallback ? { fallback: result.fallback } : {}),
      maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      pool: gpu.memory(),
    });
    await registry.disposeAll();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (values['hybrid-child']) return hybridChild(Number(values['hybrid-child']));
  if (values['scale-child']) return scaleChild(Number(values['scale-child']));
  const { registry, gpu } = await openGpu();
  // The baseline is taken with the device open: the rise after it is the pool's doing.
  const baseline = gpuMemoryUsed();
  print({ device: gpu.device, gpuMemoryUsedWithDevice: baseline });
  const reps = Number(values.reps);
  for (const run of values.workloads!.split(',').filter(Boolean) as RunName[]) {
    if (!RUNS.includes(run)) throw new Error(`unknown workload ${run}`);
    const { workload, ...shape } = shapeOf(run, Number(values.n));
    const ours = await runBench({ workload, ...shape, reps, backend: 'webgpu', compare: false }, registry);
    const bytes = minimumBytes(workload, shape);
    // The pool keeps its buffers (no budget pressure at these sizes), so what it holds now is its
    // peak; readback buffers live in host memory and are left out of the comparison.
    const used = gpuMemoryUsed();
    const pool = gpu.memory();
    const deviceBytes = pool.bytesAllocated - pool.readbackBytesAllocated;
    const torch = torchRun(workload, shape, reps) as { seconds?: number } | undefined;
    print({
      run,
      ...ours,
      peakShare: {
        gflops: Number((ours.gflops / Number(values['peak-gflops'])).toFixed(4)),
        gbps: Number((bytes / ours.seconds / 1e9).toFixed(1)),
        bandwidth: Number((bytes / ours.seconds / 1e9 / Number(values['peak-gbps'])).toFixed(4)),
      },
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
  if (values['hybrid-n']) {
    for (const n of values['hybrid-n'].split(',')) await hybridInChild(Number(n), gpuMemoryUsed());
  }
  if (values['scale-n']) {
    for (const n of values['scale-n'].split(','))
      await hybridInChild(Number(n), gpuMemoryUsed(), '--scale-child');
  }
  if (values.agreement) {
    if (!existsSync(values.agreement)) throw new Error(`no data folder ${values.agreement}`);
    await agreement(values.agreement, gpu);
  }
  await registry.disposeAll();
}

await main();
