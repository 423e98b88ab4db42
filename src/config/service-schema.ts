/**
 * The configuration of the service and its workers: `serve` (where it listens, what a request may
 * carry, the tenants' quotas), the queue `serve --queue` and `neurocluster worker` share, and the
 * service's metrics. Sections of the one configuration document (schema.ts).
 */
import { z } from 'zod';
import { durationSchema as duration } from './duration.js';

/** `neurocluster serve`: where it listens, how many jobs run at once, what a request may carry. */
export const serviceSchema = z.strictObject({
  host: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe('address to listen on; a non-loopback one needs TLS (--tls-cert, --tls-key) or --insecure'),
  port: z.int().min(0).max(65535).default(8080).describe('port to listen on (0: any free port)'),
  concurrency: z.int().min(1).max(256).default(1).describe('jobs run at once by the in-process pool'),
  maxBodyBytes: z
    .int()
    .min(1024)
    .default(100 * 1024 * 1024)
    .describe('largest request body; a larger one is refused with 413'),
  shutdownGrace: duration('30s').describe(
    'on SIGTERM or SIGINT, how long running jobs may take to finish; those cut off run again at the next start',
  ),
  rateLimit: z
    .strictObject({
      max: z
        .int()
        .min(1)
        .default(1200)
        .describe('requests one API key (or one address without a key) may make per window'),
      window: duration('1m').describe('the rate limit window'),
    })
    .default({ max: 1200, window: '1m' })
    .describe('per-key rate limit of the /v1 routes (429 past it, with Retry-After)'),
  maxQueuedJobs: z
    .int()
    .min(1)
    .default(10_000)
    .describe('jobs accepted and not yet started; past it new jobs get 503 with Retry-After'),
  maxEventLoopDelay: duration('1s').describe(
    'load shedding: past this event-loop delay, requests (all but /livez) get 503 with Retry-After',
  ),
  quotas: z
    .strictObject({
      maxActiveJobs: z.int().min(0).optional().describe("a tenant's jobs queued or running at once"),
      maxJobsPerHour: z.int().min(0).optional().describe('jobs a tenant may submit in any hour'),
      maxRowsPerJob: z.int().min(0).optional().describe("rows in one job's data"),
      maxStoredBytes: z
        .int()
        .min(0)
        .optional()
        .describe("bytes of a tenant's stored uploads and results (encrypted, as kept)"),
    })
    .default({})
    .describe(
      "every tenant's quotas (none set: no limit); `neurocluster tenants set` overrides them for one. Past one: 429 NEUROCLUSTER_ERR_QUOTA",
    ),
});

/**
 * Jobs on BullMQ queues in Redis, run by `neurocluster worker` processes (docs/distributed.md).
 * The Redis URL is not here: it may hold a password, and a job's configuration travels in its
 * task. It comes from `--queue` or NEUROCLUSTER_QUEUE.
 */
export const distributedSchema = z.strictObject({
  queueName: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, - and _ (at most 64)')
    .default('neurocluster')
    .describe('the BullMQ queue the service and its workers share'),
  attempts: z
    .int()
    .min(1)
    .max(20)
    .default(3)
    .describe(
      'runs a task gets when its worker dies or stalls; a job that fails on its data or options is not run again',
    ),
  lockDuration: duration('30s').describe(
    "how long a worker's hold on a task lasts without renewal (it renews it at half): past it, the task is stalled",
  ),
  stalledInterval: duration('30s').describe(
    'how often workers look for stalled tasks (a worker that died) and give them to another worker',
  ),
  maxStalledCount: z
    .int()
    .min(0)
    .max(20)
    .default(1)
    .describe('times a task may stall and run again before it fails'),
  connectTimeout: duration('15s').describe(
    "how long `serve --queue` and `worker` wait for the queue's Redis at start before they fail",
  ),
  keepFinished: duration('168h').describe(
    'how long Redis keeps a finished task for a service that was down when it finished to read it',
  ),
  splitRows: z
    .int()
    .min(1)
    .default(1_000_000)
    .describe(
      "rows of a job's file past which its passes are split into tasks of taskRows rows that every worker takes (NPY, CSV, JSON Lines or Parquet: the formats that stream)",
    ),
  taskRows: z
    .int()
    .min(1)
    .default(262_144)
    .describe(
      'rows of a range of the file that one task of a split job reads; a streamed fit groups its sums by the same ranges, so both give the same labels',
    ),
});

/** Prometheus metrics: the service's per-tenant series, off by default (cardinality). */
export const metricsSchema = z.strictObject({
  tenantLabels: z
    .boolean()
    .default(false)
    .describe(
      "the service's jobs by tenant (neurocluster_service_tenant_jobs): off by default, a label value per tenant",
    ),
  maxTenantLabels: z
    .int()
    .min(1)
    .max(1000)
    .default(50)
    .describe('with tenantLabels, the busiest tenants named; the rest are summed as tenant="other"'),
});
