/**
 * Resources: what the process holds (RSS, heap), how busy it keeps the CPUs, the free disk of
 * NEUROCLUSTER_HOME and the device memory of the WebGPU buffer pool, each against a warning and a
 * critical threshold; and the memory a clustering job will need, estimated from its shape before
 * it starts, so that a job that cannot fit is refused with NEUROCLUSTER_ERR_RESOURCE_EXHAUSTED
 * instead of crashing the process half-way.
 */
import { constants as bufferConstants } from 'node:buffer';
import { statfsSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { pcaAllocations } from '../linalg/pca.js';

export type ResourceLevel = 'ok' | 'warning' | 'critical';

export interface ResourceThresholds {
  /** Fractions of the memory budget (RSS over it). */
  readonly memoryWarning: number;
  readonly memoryCritical: number;
  /** Fractions of all cores' time. */
  readonly cpuWarning: number;
  readonly cpuCritical: number;
  /** Fractions of the home's disk in use. */
  readonly diskWarning: number;
  readonly diskCritical: number;
  /** Bytes the process may hold; the machine's memory when absent. */
  readonly memoryBudgetBytes?: number | undefined;
}

export interface ResourceReading {
  readonly used: number;
  readonly total: number;
  /** used / total. */
  readonly fraction: number;
  readonly level: ResourceLevel;
}

export interface ResourceStatus {
  readonly memory: ResourceReading & { readonly heapUsed: number; readonly heapTotal: number };
  readonly cpu: { readonly fraction: number; readonly level: ResourceLevel };
  readonly disk: ResourceReading | undefined;
  readonly device: ResourceReading | undefined;
  /** The worst level of them all. */
  readonly level: ResourceLevel;
}

/** What the monitor reads; each a function so that tests can feed it. */
export interface ResourceProbes {
  readonly memoryUsage: () => { rss: number; heapUsed: number; heapTotal: number };
  readonly cpuUsage: () => { user: number; system: number };
  readonly now: () => number;
  readonly cores: number;
  readonly disk: (path: string) => { free: number; total: number } | undefined;
  /** Device bytes in use and the budget, when a GPU backend is live. */
  readonly device: () => { used: number; total: number } | undefined;
}

const RANK: Record<ResourceLevel, number> = { ok: 0, warning: 1, critical: 2 };

function levelOf(fraction: number, warning: number, critical: number): ResourceLevel {
  return fraction >= critical ? 'critical' : fraction >= warning ? 'warning' : 'ok';
}

function reading(used: number, total: number, warning: number, critical: number): ResourceReading {
  const fraction = total > 0 ? used / total : 0;
  return { used, total, fraction, level: levelOf(fraction, warning, critical) };
}

export const processProbes = (device: ResourceProbes['device'] = () => undefined): ResourceProbes => ({
  memoryUsage: () => process.memoryUsage(),
  cpuUsage: () => process.cpuUsage(),
  now: () => performance.now(),
  cores: availableParallelism(),
  disk: (path) => {
    // The home may not exist yet: the disk it will be on is its nearest existing ancestor's.
    for (let at = path; ; at = dirname(at)) {
      try {
        const s = statfsSync(at);
        return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
      } catch {
        if (dirname(at) === at) return undefined;
      }
    }
  },
  device,
});

export class ResourceMonitor {
  private lastCpu: { user: number; system: number };
  private lastAt: number;

  constructor(
    readonly thresholds: ResourceThresholds,
    /** Whose free disk counts: NEUROCLUSTER_HOME. */
    private readonly home: string,
    private readonly probes: ResourceProbes = processProbes(),
  ) {
    this.lastCpu = probes.cpuUsage();
    this.lastAt = probes.now();
  }

  /** The memory budget in bytes: the configured one, or the machine's memory. */
  get memoryBudgetBytes(): number {
    return this.thresholds.memoryBudgetBytes ?? totalmem();
  }

  /** Every resource now; CPU use is the share of all cores' time since the last sample. */
  sample(): ResourceStatus {
    const t = this.thresholds;
    const m = this.probes.memoryUsage();
    const memory = {
      ...reading(m.rss, this.memoryBudgetBytes, t.memoryWarning, t.memoryCritical),
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
    };
    const cpuNow = this.probes.cpuUsage();
    const at = this.probes.now();
    const busyMs = (cpuNow.user - this.lastCpu.user + cpuNow.system - this.lastCpu.system) / 1000;
    const fraction = at > this.lastAt ? Math.min(1, busyMs / ((at - this.lastAt) * this.probes.cores)) : 0;
    this.lastCpu = cpuNow;
    this.lastAt = at;
    const cpu = { fraction, level: levelOf(fraction, t.cpuWarning, t.cpuCritical) };
    const d = this.probes.disk(this.home);
    const disk = d ? reading(d.total - d.free, d.total, t.diskWarning, t.diskCritical) : undefined;
    const g = this.probes.device();
    // The pool never passes its budget; it is judged by the memory thresholds.
    const device = g ? reading(g.used, g.total, t.memoryWarning, t.memoryCritical) : undefined;
    const levels = [memory.level, cpu.level, disk?.level ?? 'ok', device?.level ?? 'ok'];
    const level = levels.reduce((a, b) => (RANK[b] > RANK[a] ? b : a), 'ok' as ResourceLevel);
    return { memory, cpu, disk, device, level };
  }

  /**
   * Room for a job of `bytes`: `ok` when RSS plus the job stays under the warning threshold of
   * the budget, `warning` under the critical one, `refused` past it.
   */
  admit(bytes: number): { verdict: 'ok' | 'warning' | 'refused'; rss: number; budget: number } {
    const rss = this.probes.memoryUsage().rss;
    const budget = this.memoryBudgetBytes;
    const after = (rss + bytes) / budget;
    const verdict =
      after >= this.thresholds.memoryCritical
        ? 'refused'
        : after >= this.thresholds.memoryWarning
          ? 'warning'
          : 'ok';
    return { verdict, rss, budget };
  }
}

/** The shape of a clustering job, for its memory estimate. */
export interface JobShape {
  readonly rows: number;
  /** Columns of the cleaned input. */
  readonly cols: number;
  readonly k: number;
  /** Widths of the encoders' output (0 for plain K-means) and after PCA; bytes of a sample's chunk state. */
  readonly rawFeatures: number;
  readonly features: number;
  readonly chunkBytesPerSample: number;
  /** Recurrent and input weights, values. */
  readonly weights: number;
  /** Bytes a device copy of each value takes on the backend (4 for float32 backends, 0 for js). */
  readonly deviceBytesPerValue: number;
  /** Whether a PCA reduces the raw features to `features` (the hybrid method). */
  readonly pca?: boolean | undefined;
  /** Values of the reservoir states an ESN's state PCA is fitted on (`encoders.esn.stateComponents`). */
  readonly stateSample?: number | undefined;
}

/** One of a job's large arrays (or `count` alike), for the estimate and the engine's limits. */
export interface Allocation {
  /** What it holds, named in a refusal. */
  readonly what: string;
  /** Values in one array: the engine's typed-array limit applies to this. */
  readonly elements: number;
  readonly bytesPerElement: number;
  /** Arrays of this size alive at once (default 1). */
  readonly count?: number;
}

/** The most values one typed array may hold in this engine (2^32 on Node 20). */
export const MAX_TYPED_ARRAY_LENGTH = Math.min(bufferConstants.MAX_LENGTH, Number.MAX_SAFE_INTEGER);

/** The encoders' chunks never hold more than this (src/encoders/chunks.ts). */
const CHUNK_BYTES = 64 * 1024 * 1024;

/** Headroom for what the garbage collector has not yet returned when the peak comes. */
const GC_HEADROOM = 1.25;

/**
 * Every large array a job allocates, float64 unless said: the input as read, cleaned, and three
 * copies in canonical order (scaling, K-means, scoring); the weights and the kernels' copies; a chunk of encoder states and
 * the readout's transients over it; the encoders' outputs (chunks and stacked), the assembled
 * features and the result's copy; with PCA, what its path allocates ({@link pcaAllocations}: the
 * d x d covariance, or the n x n Gram matrix for wide data) and the projection twice; K-means'
 * labels, distances, centroids and the backend's float32 copy of the points; the scoring copies.
 */
export function jobAllocations(s: JobShape): Allocation[] {
  const f64 = 8;
  const { rows: n } = s;
  const encoded = s.rawFeatures > 0;
  const clustered = encoded ? s.features : s.cols;
  const chunk = Math.ceil(Math.min(CHUNK_BYTES, n * s.chunkBytesPerSample) / f64);
  const list: Allocation[] = [
    { what: 'the input as read', elements: n * s.cols, bytesPerElement: f64 },
    { what: 'the cleaned input', elements: n * s.cols, bytesPerElement: f64 },
    { what: 'the input in canonical order', elements: n * s.cols, bytesPerElement: f64, count: 3 },
    // The weights, and the kernels' working copies of them (float32 input weights of the spiking layers).
    { what: 'the encoder weights', elements: s.weights, bytesPerElement: f64, count: 2 },
  ];
  if (encoded) {
    if (s.stateSample)
      list.push({
        what: "the states the ESN's state PCA is fitted on",
        elements: s.stateSample,
        bytesPerElement: f64,
      });
    list.push(
      { what: 'a chunk of encoder states', elements: chunk, bytesPerElement: f64, count: 2 },
      { what: 'the encoder outputs', elements: n * s.rawFeatures, bytesPerElement: f64, count: 2 },
      { what: 'the assembled features', elements: n * s.rawFeatures, bytesPerElement: f64 },
    );
    if (s.pca) {
      list.push(...pcaAllocations(n, s.rawFeatures, s.features, s.deviceBytesPerValue));
      list.push({ what: 'the projected features', elements: n * s.features, bytesPerElement: f64, count: 2 });
    } else {
      list.push({ what: 'the features of the result', elements: n * s.rawFeatures, bytesPerElement: f64 });
    }
  }
  list.push(
    { what: 'the K-means labels', elements: n, bytesPerElement: 4, count: 2 },
    { what: 'the K-means distances', elements: n, bytesPerElement: f64 },
    { what: 'the K-means centroids', elements: s.k * clustered, bytesPerElement: f64, count: 4 },
    {
      what: "the backend's copy of the points",
      elements: n * clustered,
      bytesPerElement: s.deviceBytesPerValue,
    },
    { what: 'the scoring copies', elements: n * clustered, bytesPerElement: f64 },
  );
  return list.filter((a) => a.elements > 0 && a.bytesPerElement > 0);
}

/** Bytes of the allocations, with {@link GC_HEADROOM}. */
function bytesOf(list: readonly Allocation[]): number {
  const sum = list.reduce((total, a) => total + a.elements * a.bytesPerElement * (a.count ?? 1), 0);
  return Math.ceil(GC_HEADROOM * sum);
}

/**
 * A job's memory at its peak: the sum of {@link jobAllocations} (every array, as if all were alive
 * at once, which the garbage collector's lag makes close to true) plus {@link GC_HEADROOM}; and the
 * first array past the engine's typed-array limit, which no budget can admit. Checked against
 * measured peaks by test/memory/peak.test.ts.
 */
export function estimateJob(s: JobShape): { bytes: number; oversized: Allocation | undefined } {
  const list = jobAllocations(s);
  return { bytes: bytesOf(list), oversized: list.find((a) => a.elements > MAX_TYPED_ARRAY_LENGTH) };
}

/** Bytes a job needs at its peak ({@link estimateJob}). */
export function estimateJobBytes(s: JobShape): number {
  return estimateJob(s).bytes;
}
