/**
 * What the service's routes share: its configuration and runtime, the job store, the runner, the
 * API keys, the audit log, the open event streams, and how a job is shown.
 */
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { RequestError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Runtime } from '../runtime/runtime.js';
import type { AuditEvent } from '../security/audit-record.js';
import type { EncryptedFileRegistry } from '../security/encrypted-files.js';
import type { Keyring } from '../security/keyring.js';
import type { Caller } from './api-keys.js';
import type { Job, JobStore } from './jobs.js';
import type { Runner } from './runner.js';
import type { Tenants } from './tenants.js';

export interface ServiceContext {
  readonly config: Config;
  readonly runtime: Runtime;
  readonly logger: Logger;
  readonly keyring: Keyring;
  readonly jobs: JobStore;
  /** The tenants: their quotas and what they use of them. */
  readonly tenants: Tenants;
  readonly runner: Runner;
  /** The record of encrypted files of this home's store (keys rotate and retire read it). */
  readonly files: EncryptedFileRegistry;
  /** The open event streams' closers: a shutdown ends them, or the server would wait on them. */
  readonly streams: Set<() => void>;
  /** True from SIGTERM on: no new jobs, readiness fails. */
  draining(): boolean;
  /**
   * Appends an audit record under the request's correlation ID, with the other requests' of the
   * same turn (a group commit); settles once it is on disk (at once when the log is off).
   */
  audit(event: AuditEvent, correlationId: string): Promise<void>;
  /**
   * A job's configuration: the service's, then its options; its own uploads inside its roots, its
   * privacy budgets its tenant's.
   */
  configOf(job: Pick<Job, 'input' | 'options' | 'tenant'>): Config;
}

/** The request's caller; a /v1 route without one is refused (never answered as anybody). */
export function caller(request: FastifyRequest): Caller {
  if (!request.caller) throw new RequestError('NEUROCLUSTER_ERR_UNAUTHORIZED', 'an API key is required');
  return request.caller;
}

/** A job as the API shows it: its state and progress, its result without labels, its links. */
export function view(job: Job) {
  return {
    id: job.id,
    state: job.state,
    ...(job.progress ? { progress: job.progress } : {}),
    createdAt: job.createdAt,
    ...(job.startedAt ? { startedAt: job.startedAt } : {}),
    ...(job.endedAt ? { endedAt: job.endedAt } : {}),
    ...(job.summary ? { result: job.summary } : {}),
    ...(job.error ? { error: job.error } : {}),
    links: {
      self: `/v1/jobs/${job.id}`,
      result: `/v1/jobs/${job.id}/result`,
      labels: `/v1/jobs/${job.id}/labels`,
      plot: `/v1/jobs/${job.id}/plot.svg`,
      predict: `/v1/jobs/${job.id}/predict`,
      events: `/v1/jobs/${job.id}/events`,
    },
  };
}
