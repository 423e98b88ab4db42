/**
 * Resources: what the process holds (RSS, heap), how busy it keeps the CPUs, the free disk of
 * NEUROCLUSTER_HOME and the device memory of the WebGPU buffer pool, each against a warning and a
 * critical threshold; and the memory a clustering job will need, estimated from its shape before
 * it starts, so that a job that cannot fit is refused with NEUROCLUSTER_ERR_RESOURCE_EXHAUSTED
 * instead of crashing the process half-way.
 */
import { statfsSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { dirname } from 'node:path';

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
}

/** The encoders' chunks never hold more than this (src/encoders/chunks.ts). */
const CHUNK_BYTES = 64 * 1024 * 1024;

/** Headroom for what the garbage collector has not yet returned when the peak comes. */
const GC_HEADROOM = 1.25;

/**
 * Bytes a job needs at its peak, by its main arrays (float64 unless said): the input as read,
 * cleaned, and three copies in canonical order (scaling, K-means, scoring); the weights; one
 * chunk of encoder states; the encoders' blocks, the assembled features and their canonical-order
 * copy (with PCA: the projection and its copy too); K-means' labels, distances and the backend's
 * float32 copy of the points; then {@link GC_HEADROOM}. Checked against measured peaks in the
 * README (Configuration, Resources).
 */
export function estimateJobBytes(s: JobShape): number {
  const input = 5 * s.rows * s.cols * 8;
  const weights = s.weights * 8;
  const chunk = Math.min(CHUNK_BYTES, s.rows * s.chunkBytesPerSample);
  const projected = s.features < s.rawFeatures;
  const features =
    s.rawFeatures > 0 ? s.rows * (3 * s.rawFeatures + (projected ? 2 * s.features : 0)) * 8 : 0;
  const clustered = s.rawFeatures > 0 ? s.features : s.cols;
  const kmeans = s.rows * (4 + 4 + 8) + s.rows * clustered * s.deviceBytesPerValue + s.k * clustered * 8 * 4;
  return Math.ceil(GC_HEADROOM * (input + weights + chunk + features + kmeans));
}
