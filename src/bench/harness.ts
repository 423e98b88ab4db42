/**
 * The bench harness: times a workload as best-of-reps, and with `compare` runs the NumPy /
 * scikit-learn reference with the same shape in the same command and reports the ratio.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BackendRegistry, SelectionContext } from '../backends/backend.js';
import type { WasmBackend } from '../backends/wasm/wasm-backend.js';
import { WebGpuBackend } from '../backends/webgpu/webgpu-backend.js';
import { envForReference, referenceScript } from '../config/home.js';
import { BackendError, UsageError } from '../core/errors.js';
import type { BackendName } from '../core/matrix.js';
import { WORKLOADS, type WorkloadName, type WorkloadShape } from './workloads.js';

export interface BenchOptions extends WorkloadShape {
  readonly workload: WorkloadName;
  readonly reps: number;
  readonly backend: BackendName | 'auto';
  readonly compare: boolean;
  /** reference.py; by default $NEUROCLUSTER_REFERENCE, else the package's bench/reference/reference.py. */
  readonly reference?: string | undefined;
  readonly python?: string | undefined;
}

export interface ReferenceRun {
  readonly impl: string;
  readonly seconds: number;
  readonly gflops: number;
}

export interface BenchResult {
  readonly workload: WorkloadName;
  readonly impl: 'neurocluster';
  readonly backend: BackendName;
  readonly n: number;
  readonly d: number;
  readonly [extra: string]: unknown;
  readonly seconds: number;
  readonly gflops: number;
  /** On a GPU backend `seconds` is kernel time with the data on the device; this is the whole call. */
  readonly endToEnd?: number;
  /** On the WASM backend: the best time with one worker thread and with all of them. */
  readonly threads?: Record<string, number>;
  /** On the WASM backend: the 128-bit SIMD roofline measured in the same run, and our share of it. */
  readonly roofline?: { readonly gflops: number; readonly share: number };
  readonly reps: number;
  readonly reference?: ReferenceRun;
  /** Our seconds over the reference's: below 1 is faster. */
  readonly ratio?: number;
}

/** Best wall time of `reps` runs, in seconds. */
export async function bestOf(reps: number, fn: () => Promise<unknown>): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

/**
 * The package's own reference, bench/reference/reference.py: two levels above this module in the
 * sources (src/bench), three in the build (dist/src/bench).
 */
const SHIPPED_REFERENCE = ['../../bench/reference/reference.py', '../../../bench/reference/reference.py'].map(
  (p) => fileURLToPath(new URL(p, import.meta.url)),
);

function referencePath(explicit: string | undefined): string {
  const named = explicit ?? referenceScript();
  if (named !== undefined) {
    if (!existsSync(named))
      throw new UsageError(`the reference ${named} (--reference or NEUROCLUSTER_REFERENCE) does not exist`);
    return named;
  }
  const shipped = SHIPPED_REFERENCE.find((p) => existsSync(p));
  if (!shipped)
    throw new UsageError('bench/reference/reference.py is not in this installation: pass --reference <path>');
  return shipped;
}

/** Runs reference.py with OpenBLAS unrestrained (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset). */
export async function runReference(o: BenchOptions): Promise<ReferenceRun> {
  const script = referencePath(o.reference);
  const env = envForReference();
  // Every dimension of the shape, so that both sides time the same problem.
  const shape = { n: o.n, d: o.d, r: o.r, t: o.t, k: o.k, iters: o.iters, leak: o.leak };
  const args = [script, o.workload, ...Object.entries(shape).flatMap(([k, v]) => [`--${k}`, `${v}`])];
  args.push('--connectivity', `${o.connectivity}`, '--reps', `${o.reps}`, '--seed', `${o.seed}`);
  try {
    const { stdout } = await promisify(execFile)(o.python ?? '/usr/bin/python3', args, {
      env,
      maxBuffer: 1 << 20,
    });
    const line = stdout.trim().split('\n').at(-1) ?? '';
    const parsed = JSON.parse(line) as { impl: string; seconds: number; gflops: number };
    return { impl: parsed.impl, seconds: parsed.seconds, gflops: parsed.gflops };
  } catch (cause) {
    throw new BackendError(`reference run failed: ${(cause as Error).message}`, 'NEUROCLUSTER_ERR_KERNEL', {
      cause,
    });
  }
}

/** The workload's best time on one WASM worker thread beside its time on all of them. */
async function threadTimes(
  o: BenchOptions,
  backend: WasmBackend,
  seconds: number,
): Promise<Record<string, number>> {
  const times: Record<string, number> = { [backend.threads]: Number(seconds.toFixed(6)) };
  if (backend.threads === 1) return times;
  // Imported here, not above: the GPU bench entry shares this harness and never starts WASM.
  const { WasmBackend } = await import('../backends/wasm/wasm-backend.js');
  const single = new WasmBackend(1);
  try {
    const prepared = WORKLOADS[o.workload](single, o);
    await prepared.run();
    times[1] = Number((await bestOf(o.reps, () => prepared.run())).toFixed(6));
  } finally {
    await single.dispose();
  }
  return times;
}

/** Prepares the workload, warms the backend, times it, and compares when asked. */
export async function runBench(
  o: BenchOptions,
  registry: BackendRegistry,
  selection: SelectionContext = {},
): Promise<BenchResult> {
  const { backend } = await registry.select(o.backend, undefined, selection);
  const prepared = WORKLOADS[o.workload](backend, o);
  // One warm-up (pipelines compiled, buffers pooled), then the best of reps.
  await prepared.run();
  const endToEnd = await bestOf(o.reps, () => prepared.run());
  let seconds = endToEnd;
  if (backend instanceof WebGpuBackend) {
    seconds = Number.POSITIVE_INFINITY;
    for (let i = 0; i < o.reps; i++)
      seconds = Math.min(seconds, await backend.timeKernels(() => prepared.run()));
  }
  const threads = backend.name === 'wasm' ? await threadTimes(o, backend as WasmBackend, seconds) : undefined;
  const peak = backend.name === 'wasm' ? await (backend as WasmBackend).roofline() : undefined;
  const gflops = prepared.flops / seconds / 1e9;
  const result: BenchResult = {
    workload: o.workload,
    impl: 'neurocluster',
    backend: backend.name,
    n: o.n,
    d: o.d,
    ...prepared.shape,
    seconds: Number(seconds.toFixed(6)),
    gflops: Number((prepared.flops / seconds / 1e9).toFixed(3)),
    ...(seconds !== endToEnd ? { endToEnd: Number(endToEnd.toFixed(6)) } : {}),
    ...(threads ? { threads } : {}),
    ...(peak
      ? { roofline: { gflops: Number(peak.toFixed(2)), share: Number((gflops / peak).toFixed(3)) } }
      : {}),
    reps: o.reps,
  };
  if (!o.compare) return result;
  const reference = await runReference(o);
  return { ...result, reference, ratio: Number((seconds / reference.seconds).toFixed(3)) };
}
