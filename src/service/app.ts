/**
 * The service's HTTP API (fastify): jobs under `/v1` behind API keys, the probes and the metrics.
 * See docs/service.md for every route. Errors are `{ error: { code, message, correlationId } }`
 * with the status of the code; every response carries `x-correlation-id` (the request's when it
 * sent a usable one).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import helmet from '@fastify/helmet';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { resolveConfigChecked } from '../config/load.js';
import { type Config, durationMs } from '../config/schema.js';
import type { ErrorCode } from '../core/error-codes.js';
import {
  ConfigError,
  isNeuroclusterError,
  type NeuroclusterError,
  QuotaError,
  RequestError,
  ResourceExhaustedError,
  toNeuroclusterError,
} from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Runtime } from '../runtime/runtime.js';
import { AuditLog } from '../security/audit.js';
import type { AuditEvent } from '../security/audit-record.js';
import { EncryptedFileRegistry } from '../security/encrypted-files.js';
import type { Keyring } from '../security/keyring.js';
import { openStore, storeFile } from '../store/db.js';
import { ApiKeys, type Caller } from './api-keys.js';
import { AuditGroup } from './audit-group.js';
import type { ServiceContext } from './context.js';
import { type Job, JobStore } from './jobs.js';
import { eventRoutes } from './routes/events.js';
import { jobRoutes } from './routes/jobs.js';
import { operationRoutes } from './routes/operations.js';
import { JobRunner, type Runner, type RunnerDeps } from './runner.js';
import { Tenants, tenantNamespace } from './tenants.js';

/** The HTTP status of each request-level code; any other code is a 500 (or 503, below). */
const STATUS: Partial<Record<ErrorCode, number>> = {
  NEUROCLUSTER_ERR_USAGE: 400,
  NEUROCLUSTER_ERR_INVALID_ARGUMENT: 400,
  NEUROCLUSTER_ERR_UNAUTHORIZED: 401,
  NEUROCLUSTER_ERR_SECURITY: 403,
  NEUROCLUSTER_ERR_SECURITY_PATH: 403,
  NEUROCLUSTER_ERR_PRIVACY_BUDGET: 403,
  NEUROCLUSTER_ERR_NOT_FOUND: 404,
  NEUROCLUSTER_ERR_CONFLICT: 409,
  NEUROCLUSTER_ERR_TOO_LARGE: 413,
  NEUROCLUSTER_ERR_RATE_LIMIT: 429,
  NEUROCLUSTER_ERR_QUOTA: 429,
  NEUROCLUSTER_ERR_CONFIG: 422,
  NEUROCLUSTER_ERR_DATA_FORMAT: 422,
  NEUROCLUSTER_ERR_DATA_VALUE: 422,
  NEUROCLUSTER_ERR_DATA_SHAPE: 422,
  NEUROCLUSTER_ERR_DATA_READ: 422,
  NEUROCLUSTER_ERR_RESOURCE_EXHAUSTED: 503,
  NEUROCLUSTER_ERR_CIRCUIT_OPEN: 503,
};

export function statusOf(error: NeuroclusterError): number {
  return STATUS[error.code] ?? 500;
}

export interface ServiceOptions {
  /** The service's configuration: its `service` section, and the base every job's options go on. */
  readonly config: Config;
  readonly runtime: Runtime;
  readonly logger: Logger;
  readonly keyring: Keyring;
  /**
   * Makes the runner of the jobs (the queue's, src/distributed/dispatcher.ts, for `serve --queue`);
   * the service's own pool of worker threads when absent.
   */
  readonly runner?: ((deps: RunnerDeps) => Runner) | undefined;
  /** TLS key and certificate (PEM); plain HTTP without. */
  readonly tls?: { readonly key: Buffer; readonly cert: Buffer };
}

export interface Service {
  readonly app: FastifyInstance;
  /** Every route it serves, as `METHOD /path` (HEAD aside): what /openapi.json must describe. */
  readonly routes: readonly string[];
  readonly jobs: JobStore;
  readonly runner: Runner;
  /** Readiness fails from here on, and running jobs get `service.shutdownGrace` to finish. */
  shutdown(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    correlationId: string;
    caller?: Caller;
    startedAt: bigint;
  }
}

const CORRELATION = /^[A-Za-z0-9._:-]{1,128}$/;

/** A route of the API (behind keys and the rate limit): judged by the route fastify matched. */
function isApiRoute(request: FastifyRequest): boolean {
  return request.routeOptions.url?.startsWith('/v1/') === true;
}

export async function buildService(o: ServiceOptions): Promise<Service> {
  const { config, runtime, logger, keyring } = o;
  const home = runtime.home;
  const db = openStore(storeFile(home));
  const jobs = new JobStore(db, join(home, 'service', 'jobs'));
  const keys = new ApiKeys(db);
  const tenants = new Tenants(db);
  // The record of encrypted files of this home's store (keys rotate and retire read it).
  const files = new EncryptedFileRegistry(db);
  const auditLog = config.audit.enabled ? AuditLog.open(config.audit, home, undefined, keyring) : undefined;
  const metrics = runtime.metrics;
  metrics.watch({
    jobs,
    ...(config.metrics.tenantLabels
      ? { tenantJobs: { byTenant: () => jobs.byTenant(), maxTenants: config.metrics.maxTenantLabels } }
      : {}),
  });
  let draining = false;
  /** The open event streams' closers: a shutdown ends them, or the server would wait on them. */
  const streams = new Set<() => void>();

  // Records of concurrent requests are written together (a group commit: one fsync for all).
  const group = new AuditGroup(auditLog);
  const audit = (event: AuditEvent, correlationId: string) => group.append(event, correlationId);

  /**
   * A job's configuration: the service's, then its options; its own uploads are inside its roots.
   * Checked when the job is accepted and again when it starts, and pipelines send the same few
   * option documents again and again: the last ones checked are kept (the service's own
   * configuration does not change while it runs).
   */
  const checked = new Map<string, Config>();
  const configOf = (job: Pick<Job, 'input' | 'options' | 'tenant'>): Config => {
    const name = JSON.stringify([job.input.kind, job.tenant, job.options]);
    const known = checked.get(name);
    if (known) return known;
    const roots = config.security.dataRoots;
    const own = {
      ...(job.input.kind === 'upload' && roots.length > 0
        ? { security: { dataRoots: [...roots, jobs.root] } }
        : {}),
      privacy: { namespace: tenantNamespace(job.tenant) },
    };
    const resolved = resolveConfigChecked([config, job.options, own]).config;
    if (checked.size >= 256) checked.delete(checked.keys().next().value as string);
    checked.set(name, resolved);
    return resolved;
  };

  const onStart = (job: Job) =>
    metrics.serviceJobWait.observe(
      (Date.parse(job.startedAt ?? job.createdAt) - Date.parse(job.createdAt)) / 1000,
    );
  const onFinal = (job: Job) =>
    audit(
      {
        action: 'job.run',
        resource: job.id,
        outcome: job.state === 'succeeded' ? 'success' : 'failure',
        actor: job.actor,
        details: { tenant: job.tenant, state: job.state, ...(job.error ? { code: job.error.code } : {}) },
      },
      job.correlationId,
    ).catch((error: unknown) =>
      logger.error(
        { correlationId: job.correlationId, job: job.id },
        `job.run not audited: ${(error as Error).message}`,
      ),
    );
  // Jobs run in the service's own pool, or on workers anywhere through a queue (docs/distributed.md).
  const deps: RunnerDeps = {
    store: jobs,
    config,
    logger,
    metrics,
    configOf,
    maxRowsOf: (job) => tenants.quotasOf(job.tenant, config.service.quotas).maxRowsPerJob,
    files,
    keyring,
    onStart,
    onFinal,
    env: runtime.environment(),
  };
  const runner: Runner = o.runner
    ? o.runner(deps)
    : new JobRunner({ ...deps, concurrency: config.service.concurrency });

  const app = Fastify({
    bodyLimit: config.service.maxBodyBytes,
    ...(o.tls ? { https: { key: o.tls.key, cert: o.tls.cert } } : {}),
    // Fastify's own logger stays off: requests are logged here, with the correlation ID.
    logger: false,
  });

  // Security headers on every answer (a JSON API: no inline content is allowed anywhere).
  await app.register(helmet, {
    global: true,
    // The dashboard shows a job's plot from a blob: URL (fetched with the key).
    contentSecurityPolicy: { directives: { imgSrc: ["'self'", 'data:', 'blob:'] } },
  });
  // Per key (its id, read without verifying: a forged one only limits itself), else per address.
  await app.register(rateLimit, {
    max: config.service.rateLimit.max,
    timeWindow: durationMs(config.service.rateLimit.window),
    allowList: (request) => !isApiRoute(request),
    keyGenerator: (request) =>
      /^Bearer\s+nck_([0-9a-f]{16})_/i.exec(request.headers.authorization ?? '')?.[1] ?? request.ip,
    errorResponseBuilder: (_request, context) =>
      new RequestError(
        'NEUROCLUSTER_ERR_RATE_LIMIT',
        `more than ${context.max} requests in ${context.after}: try again after ${context.ttl} ms`,
      ),
  });
  // Load shedding: past the event-loop delay, 503 with Retry-After (the liveness probe still answers).
  await app.register(underPressure, {
    maxEventLoopDelay: durationMs(config.service.maxEventLoopDelay),
    retryAfter: 10,
    // A rejection goes to the error handler: the error shape, 503 and Retry-After.
    pressureHandler: async (request, _reply, type) => {
      if (request.routeOptions.url !== '/livez')
        throw new ResourceExhaustedError(`the service is under pressure (${type}): try again later`);
    },
  });
  await app.register(multipart, {
    limits: { fileSize: config.service.maxBodyBytes, files: 1, fields: 4, fieldSize: 1024 * 1024 },
  });

  const routes: string[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) if (method !== 'HEAD') routes.push(`${method} ${route.url}`);
  });

  app.decorateRequest('correlationId', '');
  app.decorateRequest('startedAt', 0n);

  app.addHook('onRequest', async (request, reply) => {
    request.startedAt = process.hrtime.bigint();
    const given = request.headers['x-correlation-id'];
    request.correlationId = typeof given === 'string' && CORRELATION.test(given) ? given : randomUUID();
    reply.header('x-correlation-id', request.correlationId);
    // By the route matched (its pattern), never by the raw URL: `/%761/jobs` routes to /v1/jobs too.
    if (isApiRoute(request)) request.caller = keys.verify(request.headers.authorization);
  });

  app.addHook('onResponse', async (request, reply) => {
    const seconds = Number(process.hrtime.bigint() - request.startedAt) / 1e9;
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequestDuration.observe(
      { route, method: request.method, status: String(reply.statusCode) },
      seconds,
    );
  });

  app.setErrorHandler(async (raw: Error & { code?: string; statusCode?: number }, request, reply) => {
    let error: NeuroclusterError;
    if (isNeuroclusterError(raw)) error = raw;
    else if (raw.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || raw.code === 'FST_REQ_FILE_TOO_LARGE')
      error = new RequestError(
        'NEUROCLUSTER_ERR_TOO_LARGE',
        `the body is over service.maxBodyBytes (${config.service.maxBodyBytes} bytes)`,
      );
    else if (raw instanceof z.ZodError)
      error = new ConfigError(
        `the request does not match its schema: ${raw.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`,
      );
    else if (raw.statusCode !== undefined && raw.statusCode < 500)
      error = new ConfigError(`the request cannot be read: ${raw.message}`, { cause: raw });
    else error = toNeuroclusterError(raw);
    const status = statusOf(error);
    if (status >= 500)
      logger.error({ correlationId: request.correlationId, code: error.code }, error.message);
    if (status === 503) reply.header('retry-after', '5');
    if (error instanceof QuotaError && error.retryAfterSeconds !== undefined)
      reply.header('retry-after', String(error.retryAfterSeconds));
    // An internal error's text is the server's (a stack's words, a path): the log has it.
    const message =
      error.code === 'NEUROCLUSTER_ERR_INTERNAL'
        ? 'an internal error: the service log has it under this correlation ID'
        : error.message;
    await reply
      .status(status)
      .send({ error: { code: error.code, message, correlationId: request.correlationId } });
  });

  app.setNotFoundHandler(async (request) => {
    throw new RequestError(
      'NEUROCLUSTER_ERR_NOT_FOUND',
      `no route ${request.method} ${request.url.split('?')[0]}`,
    );
  });

  const ctx: ServiceContext = {
    config,
    runtime,
    logger,
    keyring,
    jobs,
    tenants,
    runner,
    files,
    streams,
    draining: () => draining,
    audit,
    configOf,
  };
  jobRoutes(app, ctx);
  eventRoutes(app, ctx);
  operationRoutes(app, ctx);

  return {
    app,
    routes,
    jobs,
    runner,
    async shutdown() {
      draining = true;
      await runner.drain(durationMs(config.service.shutdownGrace));
      await group.drain();
      for (const close of [...streams]) close();
    },
  };
}
