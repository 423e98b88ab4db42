/**
 * The kernel contract (ENGINEERING.md section 3): the few coarse, fused kernels that every compute
 * backend implements, the registry of backends, and selection by priority.
 *
 * Encoders and K-means are written against {@link Backend} only and never know which backend runs
 * them. Kernels are async so that GPU and worker backends fit the same shape as the reference.
 * Matrices passed to a kernel are treated as immutable for the lifetime of the object, so a device
 * backend may keep its copy keyed by the object and upload it once.
 */
import { BackendError } from '../core/errors.js';
import type {
  Assignment,
  BackendName,
  ClusterSums,
  FeatureBlock,
  Features,
  Floats,
  LloydStep,
  Matrix,
  Moments,
} from '../core/matrix.js';

/**
 * Recurrent weights W (R x R) of a reservoir, applied as `x W` (row vector): unit i feeds unit j
 * with W[i][j]. Dense, or its rows in CSR form when sparse, so the cost follows the connectivity.
 */
export type RecurrentWeights =
  | { readonly kind: 'dense'; readonly matrix: Matrix }
  | {
      readonly kind: 'csr';
      readonly size: number;
      /** size + 1 offsets into colIdx/values; row i lists the units that unit i feeds. */
      readonly rowPtr: Int32Array;
      readonly colIdx: Int32Array;
      readonly values: Floats;
    };

/**
 * How samples drive a dynamics kernel: each row of `inputs` is either one vector of `inputDim`
 * values held for `steps` steps (static), or a sequence of `steps` vectors, time-major.
 */
export interface Drive {
  readonly inputs: Matrix;
  readonly inputDim: number;
  readonly steps: number;
  readonly sequence: boolean;
  /**
   * Stops the run early (its promise rejects) when it fires: the deadline of the operation. A
   * kernel on the main thread checks it between samples and yields at least every 50 ms.
   */
  readonly signal?: AbortSignal | undefined;
}

/** Which reservoir states become features, in this order: each of `times`, then last, then mean. */
export interface StateReadout {
  /** 0-based steps whose state is emitted (keeps the time structure of a sequence). */
  readonly times?: readonly number[];
  readonly last?: boolean;
  /** Mean state over the steps from `washout` on. */
  readonly mean?: boolean;
  readonly washout?: number;
}

/** How many R-wide blocks of features a readout gives. */
export function readoutBlocks(readout: StateReadout): number {
  return (readout.times?.length ?? 0) + (readout.last ? 1 : 0) + (readout.mean ? 1 : 0);
}

/** Checks that there is one label per point, each in [0, k), before a kernel trusts them as indices. */
export function checkLabels(labels: Int32Array, n: number, k: number, what: string): void {
  if (labels.length !== n) throw new RangeError(`${what}: ${labels.length} labels for ${n} rows`);
  for (let i = 0; i < n; i++) {
    const j = labels[i]!;
    if (!(j >= 0 && j < k)) throw new RangeError(`${what}: label ${j} of row ${i} outside [0, ${k})`);
  }
}

/** Checks a drive's shape against its input weights; every backend runs it before dispatch. */
export function checkDrive(run: Drive, inputWeights: Matrix): void {
  const width = run.sequence ? run.steps * run.inputDim : run.inputDim;
  if (run.inputs.cols !== width) {
    throw new RangeError(`inputs have ${run.inputs.cols} columns, expected ${width}`);
  }
  if (inputWeights.rows !== run.inputDim) {
    throw new RangeError(`input weights have ${inputWeights.rows} rows, expected ${run.inputDim}`);
  }
  if (!Number.isInteger(run.steps) || run.steps < 1)
    throw new RangeError(`steps must be >= 1, got ${run.steps}`);
}

/**
 * Checks a state readout against the number of steps; returns, per step, the `times` blocks it
 * fills (a step may be listed more than once) and the washout of the mean.
 */
export function checkReadout(
  readout: StateReadout,
  steps: number,
): { blocksAt: number[][]; washout: number } {
  if (readoutBlocks(readout) === 0) throw new RangeError('the readout selects no state');
  const washout = readout.washout ?? 0;
  if (readout.mean && washout >= steps) throw new RangeError(`washout ${washout} leaves no step of ${steps}`);
  const blocksAt: number[][] = Array.from({ length: steps }, () => []);
  (readout.times ?? []).forEach((t, b) => {
    if (!Number.isInteger(t) || t < 0 || t >= steps) throw new RangeError(`readout step ${t}`);
    blocksAt[t]!.push(b);
  });
  return { blocksAt, washout };
}

/**
 * Asks an encoder kernel to keep its output: a backend that keeps outputs (see
 * {@link Backend.keepsOutputs}) may leave it on its device and return a {@link DeviceMatrix}, when
 * it fits the device's memory; every other backend returns it on the host as always.
 */
export interface KeepOption {
  readonly keep?: boolean;
}

/** Leaky tanh reservoir: x <- (1 - leak) x + leak tanh(u W_in + x W + bias). */
export interface ReservoirRun extends Drive {
  /** inputDim x R. */
  readonly inputWeights: Matrix;
  readonly bias?: Floats;
  readonly recurrent: RecurrentWeights;
  readonly leak: number;
  readonly readout: StateReadout;
}

/**
 * A layer of leaky integrate-and-fire neurons over `steps` steps:
 * v <- v - decay v + I_t, spike where v >= threshold, then v <- reset and `refractorySteps` steps
 * without integration. I_t = d_t W_in + bias (+ s_{t-1} W_rec for a recurrent liquid), where d_t
 * is the input itself (`current`) or Bernoulli spikes drawn with per-input probabilities
 * (`rate`; the inputs are probabilities), from Philox keyed by (seed, sample key, step, input).
 */
export interface SpikingRun extends Drive {
  readonly encoding: 'rate' | 'current';
  readonly seed: number;
  /** One 32-bit identity per sample (its id, else its content), so spikes ignore row order. */
  readonly sampleKeys: Uint32Array;
  /** inputDim x R. */
  readonly inputWeights: Matrix;
  readonly bias?: Floats;
  readonly recurrent?: RecurrentWeights;
  /** dt / tau_membrane. */
  readonly decay: number;
  readonly threshold: number;
  readonly reset: number;
  readonly refractorySteps: number;
  /** Per-step decay exp(-dt / tau_trace) of the filtered spike trace. */
  readonly traceDecay: number;
  /**
   * `counts`: spikes per neuron; `rates`: spikes per step; `first-spike`: step of the first spike
   * (the window's length if none); `trace`: the filtered spike trace at the window's end. Each over
   * `windows` equal time windows, so a sequence keeps its time structure.
   */
  readonly readout: 'counts' | 'rates' | 'first-spike' | 'trace';
  readonly windows: number;
  /** Multiplies every readout value (rates from spikes per step to Hz, latencies to ms); 1 if absent. */
  readonly scale?: number;
}

/** The kernels of the contract. */
export interface Backend {
  readonly name: BackendName;
  /** The device in words, for logs and `result.backend` details. */
  readonly device: string;
  /** The arithmetic of its kernels: the conformance suite holds float32 ones to looser tolerances. */
  readonly precision: 'float64' | 'float32';

  /** `a (m x k) @ b (k x n) + bias (n)`, for projections (PCA, readouts). */
  matmul(a: Matrix, b: Matrix, bias?: Floats): Promise<Matrix>;

  /** Euclidean (or squared Euclidean) distances between every row of `a` and every row of `b`. */
  pairwiseDistances(a: Matrix, b: Matrix, options?: { squared?: boolean }): Promise<Matrix>;

  /** Nearest centroid of every point (fused distance + argmin), ties to the lowest index. */
  kmeansAssign(points: Matrix, centroids: Matrix): Promise<Assignment>;

  /** Per-cluster sums and counts of `points` under `labels`. */
  kmeansReduce(points: Matrix, labels: Int32Array, k: number): Promise<ClusterSums>;

  /**
   * One Lloyd pass: reassigns every point, reduces, and reports the objective and how many labels
   * changed; the host reads back only k x d + k + 2 numbers. `labels` is the run's label state
   * (-1 before the first pass), passed again on every pass of the run: the JS backend updates it
   * in place, a device backend keeps it on the device and leaves this array as it was. Final
   * labels come from {@link kmeansAssign}.
   */
  kmeansStep(points: Matrix, centroids: Matrix, labels: Int32Array): Promise<LloydStep>;

  /**
   * For rows `[rowStart, rowEnd)` of `points`, the sum of Euclidean distances to the points of each
   * cluster: a (rowEnd - rowStart) x k matrix, accumulated in float64 (silhouette needs it exact).
   */
  clusterDistanceSums(
    points: Matrix,
    labels: Int32Array,
    k: number,
    rowStart: number,
    rowEnd: number,
  ): Promise<Float64Array>;

  /**
   * Runs a leaky tanh reservoir over every sample; returns N x (R x blocks) features, blocks in
   * the order of {@link StateReadout}. The state stays with the kernel for all steps. Asked to
   * `keep` it, a backend that {@link keepsOutputs} may leave the output on its device.
   */
  reservoirRun(run: ReservoirRun & { readonly keep: true }): Promise<Features>;
  reservoirRun(run: ReservoirRun): Promise<Matrix>;

  /** Runs a LIF layer (or recurrent liquid) over every sample; N x (R x windows) features. */
  spikingRun(run: SpikingRun & { readonly keep: true }): Promise<Features>;
  spikingRun(run: SpikingRun): Promise<Matrix>;

  /**
   * Column means and population variances of `m`, summed over the rows in `order` (all rows in
   * their order when absent), so that a backend summing in a fixed order gives the same moments
   * whatever order the file listed the rows in.
   */
  columnMoments(m: Features, order?: Int32Array): Promise<Moments>;

  /**
   * The matrix K-means clusters, from its blocks side by side: row i, block b, column c is
   * `(features_b[order[i], keep_b[c]] - means_b[c]) * scale_b` (row i itself when `order` is
   * absent). A device backend keeps its copy of the result for the K-means kernels that follow.
   */
  assembleBlocks(blocks: readonly FeatureBlock[], order?: Int32Array): Promise<Matrix>;

  /**
   * True for a backend whose encoder kernels, asked to `keep` their output, may leave it on the
   * device: such a backend takes every sample in one call and splits the work by its own memory.
   */
  readonly keepsOutputs?: boolean;

  /**
   * Backends with worker threads only: the workers of the next kernel call exit with the task in
   * hand (`NEUROCLUSTER_FAULT=worker-crash`), each try of it.
   */
  injectWorkerCrash?(): void;

  /**
   * Backends that split work by a memory budget only: halves the budget after an out-of-memory
   * error so that the next try runs smaller chunks; false when it is already at its floor.
   */
  shrinkMemoryBudget?(): boolean;

  /** Releases the device and any workers; the backend is unusable afterwards. */
  dispose(): Promise<void>;
}

/** The kernels of the contract, by name: what fault injection and the kernel metrics wrap. */
export const KERNEL_NAMES = [
  'matmul',
  'pairwiseDistances',
  'kmeansAssign',
  'kmeansReduce',
  'kmeansStep',
  'clusterDistanceSums',
  'reservoirRun',
  'spikingRun',
  'columnMoments',
  'assembleBlocks',
] as const;
export type KernelName = (typeof KERNEL_NAMES)[number];

/** Rows (samples, points) a kernel call works on, from its arguments. */
export function kernelRows(kernel: KernelName, args: readonly unknown[]): number {
  if (kernel === 'clusterDistanceSums') return (args[4] as number) - (args[3] as number);
  if (kernel === 'reservoirRun' || kernel === 'spikingRun') return (args[0] as Drive).inputs.rows;
  if (kernel === 'assembleBlocks') return (args[0] as readonly FeatureBlock[])[0]?.features.rows ?? 0;
  return (args[0] as Features).rows;
}

/** What a registry tells about its backends: how their starts and kernel calls went. */
export interface BackendObserver {
  started(backend: BackendName, seconds: number, ok: boolean): void;
  /** A backend `acquire` refused: it cannot start, or `auto` does not take it for this job. */
  skipped(backend: BackendName): void;
  kernel(backend: BackendName, kernel: KernelName, seconds: number, rows: number, ok: boolean): void;
}

/** `backend` with every kernel call timed and reported to the observers (the rest is its own). */
function observed(backend: Backend, observers: ReadonlySet<BackendObserver>): Backend {
  const timed = new Map<string | symbol, unknown>();
  for (const kernel of KERNEL_NAMES) {
    const real = (backend[kernel] as (...args: unknown[]) => Promise<unknown>).bind(backend);
    timed.set(kernel, async (...args: unknown[]) => {
      const t0 = performance.now();
      let ok = false;
      try {
        const out = await real(...args);
        ok = true;
        return out;
      } finally {
        const seconds = (performance.now() - t0) / 1000;
        const rows = kernelRows(kernel, args);
        for (const o of observers) o.kernel(backend.name, kernel, seconds, rows, ok);
      }
    });
  }
  return new Proxy(backend, {
    get(target, key, receiver) {
      if (timed.has(key)) return timed.get(key);
      const value = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** How a backend is made: registered once, created lazily on first use. */
export interface BackendFactory {
  readonly name: BackendName;
  /** Higher runs first under `auto`. */
  readonly priority: number;
  /**
   * Whether `auto` gives it problems under the small-problem size: false for a GPU or a worker
   * pool, whose dispatch costs more than such a problem's math; the plain JS backend takes them.
   */
  readonly smallProblems: boolean;
  /** `auto` is true when chosen by priority, so a backend may refuse what it would run if named. */
  create(context: { auto: boolean; options?: BackendOptions | undefined }): Promise<Backend>;
  /** Why a live instance must not be taken under `auto` (a software GPU), if it must not. */
  autoRefusal?(backend: Backend): string | undefined;
}

/** Settings of the backends that have any, handed to their factories. */
export interface BackendOptions {
  readonly wasm?: { readonly threads?: number | undefined };
  readonly webgpu?: {
    readonly adapter?: string | undefined;
    readonly allowSoftware?: boolean | undefined;
    readonly memoryBudgetBytes?: number | undefined;
  };
}

/** What `auto` weighs besides priority, and the settings a backend starts with. */
export interface SelectionContext {
  /** Used by the first request that starts a backend (one device per process). */
  readonly options?: BackendOptions;
  /** Input values of the job (rows x columns). */
  readonly problemSize?: number;
  /** Below this many input values, `auto` passes over backends that do not take small problems; 0 turns it off. */
  readonly smallProblemSize?: number;
}

/** One backend tried under selection, and why it was passed over. */
export interface BackendAttempt {
  readonly name: BackendName;
  readonly ok: boolean;
  readonly reason?: string;
}

export interface SelectedBackend {
  readonly backend: Backend;
  readonly tried: readonly BackendAttempt[];
}

/** Something that can receive one line about a skipped backend (a pino logger fits). */
export interface SelectionLogger {
  info(obj: object, msg: string): void;
}

/**
 * The process-wide registry: one factory per name, one live instance per backend (a GPU device is
 * expensive and a process should hold one), created on first use.
 */
export class BackendRegistry {
  private readonly factories = new Map<BackendName, BackendFactory>();
  private readonly instances = new Map<BackendName, Promise<Backend>>();
  /** The instances that have started, for reading without waiting. */
  private readonly settled = new Map<BackendName, Backend>();
  private readonly observers = new Set<BackendObserver>();

  /**
   * Reports starts and kernel calls of the backends this registry starts from now on to
   * `observer` (the same observer once); kernel calls are timed only while one is registered.
   */
  observe(observer: BackendObserver): void {
    this.observers.add(observer);
  }

  /** Adds a backend; registering the same name twice is a programming error and throws. */
  register(factory: BackendFactory): void {
    if (this.factories.has(factory.name)) {
      throw new Error(`backend "${factory.name}" is already registered`);
    }
    this.factories.set(factory.name, factory);
  }

  /** Names of the registered backends, highest priority first. */
  registered(): BackendName[] {
    return [...this.factories.values()].sort((a, b) => b.priority - a.priority).map((f) => f.name);
  }

  /** The live backend of that name, started on first use; throws BACKEND_UNAVAILABLE if it cannot. */
  async get(name: BackendName, auto = false, options?: BackendOptions): Promise<Backend> {
    const factory = this.factories.get(name);
    if (!factory) {
      throw new BackendError(`backend "${name}" is not available in this build of neurocluster`);
    }
    let instance = this.instances.get(name);
    if (!instance) {
      instance = this.start(factory, auto, options);
      this.instances.set(name, instance);
      instance.then(
        (b) => this.settled.set(name, b),
        () => undefined,
      );
      // A failed start is not cached: the next request tries again.
      instance.catch(() => this.instances.delete(name));
    }
    try {
      return await instance;
    } catch (cause) {
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new BackendError(
        `backend "${name}" failed to start: ${why}`,
        'NEUROCLUSTER_ERR_BACKEND_UNAVAILABLE',
        {
          cause,
        },
      );
    }
  }

  /** Creates a backend, timing its start for the observers and wrapping its kernels for them. */
  private async start(
    factory: BackendFactory,
    auto: boolean,
    options: BackendOptions | undefined,
  ): Promise<Backend> {
    const t0 = performance.now();
    const report = (ok: boolean) => {
      for (const o of this.observers) o.started(factory.name, (performance.now() - t0) / 1000, ok);
    };
    let backend: Backend;
    try {
      backend = await factory.create({ auto, options });
    } catch (error) {
      report(false);
      throw error;
    }
    report(true);
    return this.observers.size > 0 ? observed(backend, this.observers) : backend;
  }

  /**
   * `auto` takes the highest-priority backend that starts, logging one line for each one skipped;
   * a named backend either starts or fails with BACKEND_UNAVAILABLE: it never silently degrades.
   */
  async select(
    request: BackendName | 'auto',
    logger?: SelectionLogger,
    context: SelectionContext = {},
  ): Promise<SelectedBackend> {
    if (request !== 'auto') {
      return {
        backend: await this.get(request, false, context.options),
        tried: [{ name: request, ok: true }],
      };
    }
    const tried: BackendAttempt[] = [];
    for (const name of this.registered()) {
      try {
        const backend = await this.acquire(name, true, context);
        tried.push({ name, ok: true });
        return { backend, tried };
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        tried.push({ name, ok: false, reason });
        logger?.info({ backend: name, reason }, `backend ${name} skipped`);
      }
    }
    throw new BackendError(
      `no backend could start (${tried.map((t) => `${t.name}: ${t.reason}`).join('; ')})`,
    );
  }

  /**
   * The live backend `name`, as `auto` would take it (`auto` true: a small problem is refused by
   * a backend that does not take small ones, and a software GPU refuses) or as named; throws
   * BACKEND_UNAVAILABLE saying why not.
   */
  async acquire(name: BackendName, auto: boolean, context: SelectionContext = {}): Promise<Backend> {
    try {
      return await this.acquireHere(name, auto, context);
    } catch (error) {
      for (const o of this.observers) o.skipped(name);
      throw error;
    }
  }

  private async acquireHere(name: BackendName, auto: boolean, context: SelectionContext): Promise<Backend> {
    const small = (context.problemSize ?? Number.POSITIVE_INFINITY) < (context.smallProblemSize ?? 0);
    if (auto && small && this.factories.get(name)?.smallProblems === false) {
      throw new BackendError(
        `a small problem (${context.problemSize} values, under ${context.smallProblemSize}) runs on the plain CPU path`,
      );
    }
    const backend = await this.get(name, auto, context.options);
    const refusal = auto ? this.factories.get(name)?.autoRefusal?.(backend) : undefined;
    if (refusal) throw new BackendError(refusal);
    return backend;
  }

  /** The backend `name` if it has started in this registry (never starts one). */
  live(name: BackendName): Backend | undefined {
    return this.settled.get(name);
  }

  /**
   * Disposes the live backend `name` (after its device was lost): the next request starts a new
   * one. Errors of the dispose are ignored; the instance is beyond use anyway.
   */
  async discard(name: BackendName): Promise<void> {
    const instance = this.instances.get(name);
    if (!instance) return;
    this.instances.delete(name);
    this.settled.delete(name);
    await instance.then((b) => b.dispose()).catch(() => undefined);
  }

  /** Disposes every live backend, so that a process holding a device can exit. */
  async disposeAll(): Promise<void> {
    const live = [...this.instances.values()];
    this.instances.clear();
    this.settled.clear();
    await Promise.allSettled(live.map(async (p) => (await p).dispose()));
  }
}
