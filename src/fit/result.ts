/** A fit's result (ClusteringResult), its options and timings, the clock of its phases, and what the metrics see of it. */

import type { BackendAttempt } from '../backends/backend.js';
import type { GateFailure } from '../cluster/gates.js';
import type { KMeansProgress } from '../cluster/kmeans.js';
import { clusterSizes, type ExternalQuality, type InternalQuality } from '../cluster/metrics.js';
import type { Config, Method } from '../config/schema.js';
import { isNeuroclusterError, QuotaError, withContext } from '../core/errors.js';
import type { BackendName, Matrix } from '../core/matrix.js';
import type { EncodeProgress } from '../encoders/drive.js';
import type { PerformanceAnomaly } from '../observability/baselines.js';
import type { EngineMetrics } from '../observability/metrics.js';
import { inSpan } from '../observability/tracing.js';
import type { FallbackReason } from '../resilience/policy.js';
import type { AnonymityReport } from '../security/kanonymity.js';
import type { PrivacyResult } from '../security/privacy/api.js';

/** A streamed fit's progress (src/fit/streamed.ts), one event per chunk of each pass. */
export interface PassProgress {
  readonly type: 'pass';
  readonly pass: 'survey' | 'features' | 'lloyd' | 'assign';
  /** The Lloyd pass's number (1-based); absent for the other passes. */
  readonly iteration?: number;
  readonly rows: number;
  /** Rows in the file when known (NPY from its header, the others after the survey). */
  readonly totalRows: number | undefined;
  readonly rowsPerSecond: number;
  readonly etaSeconds: number | undefined;
}

/** Encoder chunks done, then K-means iterations, restarts or mini-batch steps, or a streamed pass's chunk. */
export type FitProgress = (event: EncodeProgress | KMeansProgress | PassProgress) => void;

/** A cap on the rows of one fit, and whose it is. */
export interface RowQuota {
  readonly maxRows: number;
  /** Whose quota it is, in the error: `tenant "team-a"`. */
  readonly holder: string;
}

/** Refuses `rows` past a fit's row quota (NEUROCLUSTER_ERR_QUOTA); `soFar` when more may follow. */
export function checkRowQuota(quota: RowQuota | undefined, rows: number, soFar = false): void {
  if (!quota || rows <= quota.maxRows) return;
  const counted = soFar ? `more than ${quota.maxRows}` : String(rows);
  throw new QuotaError(
    `the data has ${counted} rows, over ${quota.holder}'s quota (maxRowsPerJob ${quota.maxRows}): send fewer`,
  );
}

/** Seconds spent in each phase of an operation. */
export interface Timings {
  load: number;
  validate: number;
  /** Running the encoders and fitting their block scalers (0 for plain K-means). */
  encode: number;
  /** Fitting the hybrid method's PCA and projecting onto it (0 for the other methods). */
  reduce: number;
  /** Charging the privacy budget and enforcing k-anonymity (0 when neither is on). */
  privacy: number;
  cluster: number;
  score: number;
  total: number;
}

/** One cluster's members: row indices into the (cleaned) data, and their ids when known. */
export interface ClusterAssignment {
  readonly cluster: number;
  readonly size: number;
  readonly rows: number[];
  readonly ids?: string[];
}

/** The fields `fit` fills in (everything of a result but its methods). */
export type ClusteringResultFields = Omit<
  ClusteringResult,
  'fallbackUsed' | 'getClusterAssignments' | 'sizes' | 'toJSON'
>;

/** The outcome of `fit`. `toJSON()` gives the CLI's `cluster` object. */
export class ClusteringResult {
  /**
   * A label per row, in file order. Empty when a streamed fit clustered more rows than
   * `output.inlineLabelsMax`: they are then in {@link labelsFile} only.
   */
  readonly labels!: Int32Array;
  /** Rows clustered (those the NaN policy kept). */
  readonly rows!: number;
  /** Rows in each cluster, when a streamed fit counted them; else they come from `labels`. */
  readonly clusterSizes!: readonly number[] | undefined;
  /** The labels file the fit wrote (`labelsOut`), when it wrote one. */
  readonly labelsFile!: string | undefined;
  /**
   * How a streamed fit ran: the rows of its sample (features, silhouette and the input's quality
   * are the sample's), its chunk size, its Lloyd passes over all rows, the bytes it spilled.
   */
  readonly streamed!:
    | {
        readonly sampleRows: number;
        readonly chunkRows: number;
        readonly lloydPasses: number;
        readonly spilledBytes: number;
      }
    | undefined;
  readonly k!: number;
  /** k x d centroids in the space K-means clustered. */
  readonly centroids!: number[][];
  /**
   * The matrix K-means clustered (for plain K-means, the cleaned input), rows in file order. A
   * streamed fit holds only its sample's rows here (`streamed.sampleRows`), in file order.
   */
  readonly features!: Matrix;
  readonly method!: Method;
  /** The backend that really ran. */
  readonly backend!: BackendName;
  readonly backendsTried!: readonly BackendAttempt[];
  /** Internal metrics of the matrix K-means clustered. */
  readonly quality!: InternalQuality;
  /** Internal metrics of the cleaned input under the same labels, to compare methods. */
  readonly inputQuality!: InternalQuality;
  /** Agreement with the ground truth, when a label column gave one. */
  readonly external!: ExternalQuality | undefined;
  /** Seconds per phase. */
  readonly timings!: Timings;
  readonly seed!: number;
  /** The resolved parameters the result was made with. */
  readonly parameters!: Config;
  readonly ids!: readonly string[] | undefined;
  /** 0-based indices of input records dropped by the NaN policy. */
  readonly droppedRows!: readonly number[] | undefined;
  /** Iterations of the kept K-means run (mini-batch: steps). */
  readonly iterations!: number;
  /** Phases that ran slower than the baseline of this workload shape allows (absent when none). */
  readonly performanceAnomalies!: readonly PerformanceAnomaly[] | undefined;
  /** The quality gates the result failed (absent when all passed or gates are off). */
  readonly qualityGates!: readonly GateFailure[] | undefined;
  /** Why CPU K-means answered instead of the neuromorphic path, when it did. */
  readonly fallback!: FallbackReason | undefined;
  /** The operation's correlation ID. */
  readonly correlationId!: string | undefined;
  /** Under `privacy.epsilon`: what the DP release cost and left, and how it was made. */
  readonly privacy!: PrivacyResult | undefined;
  /** When k-anonymity ran: what it merged or suppressed (suppressed rows have label -1). */
  readonly anonymity!: AnonymityReport | undefined;

  constructor(fields: ClusteringResultFields) {
    Object.assign(this, fields);
  }

  /** True when the neuromorphic path failed and CPU K-means on the cleaned input answered. */
  get fallbackUsed(): boolean {
    return this.fallback !== undefined;
  }

  /** Members of every cluster (from the labels: empty clusters when the fit returned none). */
  getClusterAssignments(): ClusterAssignment[] {
    const out: ClusterAssignment[] = Array.from({ length: this.k }, (_, cluster) => ({
      cluster,
      size: 0,
      rows: [],
      ...(this.ids ? { ids: [] as string[] } : {}),
    }));
    this.labels.forEach((label, row) => {
      if (label < 0) return; // suppressed by k-anonymity
      const a = out[label]!;
      a.rows.push(row);
      a.ids?.push(this.ids![row]!);
    });
    return out.map((a) => ({ ...a, size: a.rows.length }));
  }

  /** Rows in each cluster. */
  sizes(): number[] {
    return this.clusterSizes ? [...this.clusterSizes] : clusterSizes(this.labels, this.k);
  }

  toJSON() {
    const inline = this.labels.length === this.rows;
    return {
      ...(inline ? { labels: Array.from(this.labels) } : {}),
      rows: this.rows,
      ...(this.labelsFile ? { labelsFile: this.labelsFile } : {}),
      ...(this.streamed ? { streamed: this.streamed } : {}),
      ...(this.ids ? { ids: [...this.ids] } : {}),
      k: this.k,
      method: this.method,
      backend: this.backend,
      ...(this.backendsTried.length > 1 || this.fallback ? { backendsTried: this.backendsTried } : {}),
      fallbackUsed: this.fallbackUsed,
      ...(this.fallback ? { fallback: this.fallback } : {}),
      ...(this.qualityGates ? { qualityGates: this.qualityGates } : {}),
      ...(this.performanceAnomalies ? { performanceAnomalies: this.performanceAnomalies } : {}),
      quality: this.quality,
      inputQuality: this.inputQuality,
      ...(this.external ? { external: this.external } : {}),
      ...(this.droppedRows && this.droppedRows.length > 0 ? { droppedRows: [...this.droppedRows] } : {}),
      timings: this.timings,
      seed: this.seed,
      ...(this.correlationId ? { correlationId: this.correlationId } : {}),
      ...(this.privacy ? { privacy: this.privacy } : {}),
      ...(this.anonymity ? { anonymity: this.anonymity } : {}),
    };
  }
}

/** The values of a dataset as read (before cleaning), as a matrix. */

/** The phases of operations: those of a fit's {@link Timings}, and a save's `persist`. */
export type Phase = Exclude<keyof Timings, 'total'> | 'persist';

/**
 * Times the phases of an operation, in seconds, each in its own trace span. A phase timed
 * `within` another (reduce within encode) is counted as itself, not also as the outer one.
 */
export class PhaseClock {
  private readonly start = performance.now();
  private readonly spent: Record<Phase, number> = {
    load: 0,
    validate: 0,
    encode: 0,
    reduce: 0,
    cluster: 0,
    score: 0,
    privacy: 0,
    persist: 0,
  };

  /** `live`: the operation's phase timings, kept up to date as each phase ends. */
  constructor(private readonly live?: Record<string, number>) {}

  time<T>(phase: Phase, work: () => Promise<T>, within?: Phase): Promise<T> {
    return inSpan(`neurocluster.phase.${phase}`, { 'neurocluster.phase': phase }, async () => {
      const t0 = performance.now();
      try {
        return await work();
      } catch (error) {
        if (isNeuroclusterError(error)) withContext(error, { phase });
        throw error;
      } finally {
        const seconds = (performance.now() - t0) / 1000;
        this.add(phase, seconds);
        if (within) this.add(within, -seconds);
      }
    });
  }

  private add(phase: Phase, seconds: number): void {
    this.spent[phase] += seconds;
    if (this.live) this.live[phase] = this.spent[phase];
  }

  /** A fit's timings (a fit has no persist phase). */
  timings(): Timings {
    const { persist: _persist, ...fit } = this.spent;
    return { ...fit, total: (performance.now() - this.start) / 1000 };
  }
}

/**
 * A fit's quality, k and smallest cluster in the metrics, by the method that answered (kmeans
 * after a fallback); also for a fit that failed its gates.
 */
export function observeFit(result: ClusteringResult, metrics: EngineMetrics): void {
  const labels = { method: result.fallback ? 'kmeans' : result.method };
  const set = (gauge: { set(l: typeof labels, v: number): void }, v: number | null | undefined) => {
    if (v !== null && v !== undefined && Number.isFinite(v)) gauge.set(labels, v);
  };
  set(metrics.kmeansClusters, result.k);
  set(metrics.silhouette, result.quality.silhouette);
  set(metrics.calinskiHarabasz, result.quality.calinskiHarabasz);
  set(metrics.daviesBouldin, result.quality.daviesBouldin);
  set(metrics.inertia, result.quality.inertia);
  set(metrics.adjustedRand, result.external?.ari);
  set(metrics.mutualInfo, result.external?.nmi);
  if (result.k > 0) set(metrics.smallestCluster, Math.min(...result.sizes()));
}

/** A gate's value for a message: four significant digits. */
export function formatGateValue(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(4);
}
