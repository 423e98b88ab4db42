/** What a caller may give a fit besides its data: {@link FitOptions}. */
import type { PrivacyCharge } from './private.js';
import type { SplitRanges } from './ranges.js';
import type { FitProgress, RowQuota } from './result.js';

export interface FitOptions {
  readonly signal?: AbortSignal;
  /** The operation's correlation ID (logs, errors); a new one when absent. */
  readonly correlationId?: string;
  /** Encoder chunks done, then K-means iterations, restarts or mini-batch steps. */
  readonly onProgress?: FitProgress;
  /**
   * Where to write the labels (`label`, or `id,label` per row), atomically. A streamed fit writes
   * it a chunk at a time; past `output.inlineLabelsMax` rows it is required.
   */
  readonly labelsOut?: string;
  /**
   * A cap on the rows this fit reads, its holder named in the error (a service tenant's
   * `maxRowsPerJob`): past it, the fit stops with NEUROCLUSTER_ERR_QUOTA as soon as the rows are
   * counted (a streamed fit: at the chunk that passes it).
   */
  readonly rowQuota?: RowQuota;
  /**
   * Where a streamed fit's passes over the file's ranges run when not in this process: a worker's
   * tasks on its queue (src/distributed/split.ts). Absent: here.
   */
  readonly split?: SplitRanges | undefined;
  /**
   * A private fit's budget, charged ahead of it for this data and release
   * (`NeuromorphicClusterer.chargePrivacy`, by a service on its own ledger): the fit charges
   * nothing, and refuses a charge made for other data or another epsilon.
   */
  readonly privacyCharge?: PrivacyCharge | undefined;
}
