/**
 * The service's HTTP API (fastify): jobs under `/v1` behind API keys, the probes and the metrics.
 * See docs/service.md for every route. Errors are `{ error: { code, message, correlationId } }`
 * with the status of the code; every response carries `x-correlation-id` (the request's when it
 * sent a usable one).
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { extname, isAbsolute, join } from 'node:path';
import helmet from '@fastify/helmet';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { NeuromorphicClusterer } from '../clusterer.js';
import { resolveConfigChecked } from '../config/load.js';
import { type Config, durationMs } from '../config/schema.js';
import { withCorrelationId } from '../core/context.js';
import type { ErrorCode } from '../core/error-codes.js';
import {
  ConfigError,
  isNeuroclusterError,
  NeuroclusterError,
  RequestError,
  ResourceExhaustedError,
  SecurityError,
  toNeuroclusterError,
} from '../core/errors.js';
import { healthz, liveness, readiness } from '../observability/health.js';
import type { Logger } from '../observability/logger.js';
import type { Runtime } from '../runtime/runtime.js';
import { selectionContext } from '../runtime/runtime.js';
import { AuditLog } from '../security/audit.js';
import type { AuditEvent } from '../security/audit-record.js';
import { EncryptedFileRegistry, writeEncryptedFile } from '../security/encrypted-files.js';
import { readFileDecrypted } from '../security/envelope.js';
import type { Keyring } from '../security/keyring.js';
import { checkDataPath } from '../security/secure-load.js';
import { openStore, storeFile } from '../store/db.js';
import { ApiKeys, type Caller } from './api-keys.js';
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from './dashboard.js';
import { FINAL_STATES, type Job, type JobInput, JobStore } from './jobs.js';
import { docsPage, openApiDocument } from './openapi.js';
import { JobRunner, LABELS_FILE, MODEL_FILE, mergedMetrics, PLOT_FILE, RESULT_FILE } from './runner.js';
import { listQuery, predictBody, type rowsData, submitBody, UPLOAD_EXTENSIONS } from './schemas.js';

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

/** The sections a job's options may set: the work, never the service's security or accounting. */
const JOB_SECTIONS = new Set([
  'engine',
  'data',
  'encoders',
  'kmeans',
  'stream',
  'output',
  'qualityGates',
  'privacy',
  'timeout',
  'fallback',
]);

/** Refuses options that reach past the job: the data roots, the audit log, a privacy budget, ... */
export function checkJobOptions(options: Record<string, unknown>): void {
  // The snake_case spelling of a section (quality_gates) is the section, as in a configuration file.
  const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const refused = Object.keys(options).filter((k) => !JOB_SECTIONS.has(camel(k)));
  const privacy = options.privacy as Record<string, unknown> | undefined;
  // A budget of its own, or a dataset name of its choosing (a fresh name is a fresh budget).
  for (const key of ['budget', 'dataset'])
    if (privacy && typeof privacy === 'object' && key in privacy) refused.push(`privacy.${key}`);
  if (refused.length > 0)
    throw new ConfigError(
      `options: ${refused.join(', ')} cannot be set by a job (allowed: ${[...JOB_SECTIONS].join(', ')}; privacy.budget and privacy.dataset excepted)`,
    );
}

/** Refuses a job configuration looser than the service's: a longer deadline, smaller released clusters. */
export function checkJobLimits(job: Config, service: Config): void {
  const problems: string[] = [];
  if (durationMs(job.timeout) > durationMs(service.timeout))
    problems.push(`timeout: ${job.timeout} is longer than the service's ${service.timeout}`);
  const floor = service.privacy.minClusterSize;
  const own = job.privacy.minClusterSize;
  if (floor !== undefined && (own === undefined || own < floor))
    problems.push(`privacy.minClusterSize: ${own} is below the service's ${floor}`);
  if (problems.length > 0) throw new ConfigError(`options: ${problems.join('; ')}`);
}

/** Rows sent as JSON, as the file the job reads: named cells when columns were given. */
function rowsDocument(data: { data: z.infer<typeof rowsData> }): unknown[] {
  const d = data.data;
  if (Array.isArray(d)) return d;
  return d.rows.map((row, i) => {
    if (row.length !== d.columns.length)
      throw new ConfigError(`data.rows[${i}] has ${row.length} cells for ${d.columns.length} columns`);
    return Object.fromEntries(d.columns.map((c, j) => [c, row[j]]));
  });
}

export interface ServiceOptions {
  /** The service's configuration: its `service` section, and the base every job's options go on. */
  readonly config: Config;
  readonly runtime: Runtime;
  readonly logger: Logger;
  readonly keyring: Keyring;
  /** TLS key and certificate (PEM); plain HTTP without. */
  readonly tls?: { readonly key: Buffer; readonly cert: Buffer };
}

export interface Service {
  readonly app: FastifyInstance;
  /** Every route it serves, as `METHOD /path` (HEAD aside): what /openapi.json must describe. */
  readonly routes: readonly string[];
  readonly jobs: JobStore;
  readonly runner: JobRunner;
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
  // The record of encrypted files of this home's store (keys rotate and retire read it).
  const files = new EncryptedFileRegistry(db);
  const auditLog = config.audit.enabled ? AuditLog.open(config.audit, home, undefined, keyring) : undefined;
  const metrics = runtime.metrics;
  metrics.watch({ jobs });
  let draining = false;
  /** The open event streams' closers: a shutdown ends them, or the server would wait on them. */
  const streams = new Set<() => void>();

  const audit = (event: AuditEvent, correlationId: string) =>
    withCorrelationId(correlationId, () => auditLog?.append(event));

  /** A job's configuration: the service's, then its options; its own uploads are inside its roots. */
  const configOf = (job: Pick<Job, 'input' | 'options'>): Config => {
    const roots = config.security.dataRoots;
    const own =
      job.input.kind === 'upload' && roots.length > 0
        ? { security: { dataRoots: [...roots, jobs.root] } }
        : {};
    return resolveConfigChecked([config, job.options, own]).config;
  };

  const runner = new JobRunner({
    store: jobs,
    env: runtime.environment(),
    logger,
    concurrency: config.service.concurrency,
    configOf,
    onStart: (job) =>
      metrics.serviceJobWait.observe(
        (Date.parse(job.startedAt ?? job.createdAt) - Date.parse(job.createdAt)) / 1000,
      ),
    onFinal: (job) =>
      audit(
        {
          action: 'job.run',
          resource: job.id,
          outcome: job.state === 'succeeded' ? 'success' : 'failure',
          actor: job.actor,
          details: { state: job.state, ...(job.error ? { code: job.error.code } : {}) },
        },
        job.correlationId,
      ),
  });

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

  const view = (job: Job) => ({
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
  });

  /** The request's caller; a /v1 route without one is refused (never answered as anybody). */
  const caller = (request: FastifyRequest): Caller => {
    if (!request.caller) throw new RequestError('NEUROCLUSTER_ERR_UNAUTHORIZED', 'an API key is required');
    return request.caller;
  };

  /** One of a succeeded job's stored files, decrypted; one that cannot be read is a 500 that names no path. */
  const stored = async (id: string, file: string): Promise<Buffer> => {
    try {
      return await readFileDecrypted(join(jobs.dir(id), file), () => keyring);
    } catch (cause) {
      logger.error({ job: id }, `cannot read the job's ${file}: ${(cause as Error).message}`);
      throw new NeuroclusterError('NEUROCLUSTER_ERR_INTERNAL', `the job's ${file} cannot be read`, { cause });
    }
  };

  /** The job of the route's `:id`, once it succeeded (409 before, with its state). */
  const succeeded = (id: string): Job => {
    const job = jobs.get(id);
    if (job.state !== 'succeeded')
      throw new RequestError('NEUROCLUSTER_ERR_CONFLICT', `job ${id} is ${job.state}: it has no result`);
    return job;
  };

  /** A job's input from a JSON body: rows, stored encrypted in the job's directory, or a checked path. */
  const jsonInput = async (body: z.infer<typeof submitBody>, id: string): Promise<JobInput> => {
    if ('source' in body) {
      const roots = config.security.dataRoots;
      if (!isAbsolute(body.source.path))
        throw new ConfigError(`source.path: "${body.source.path}" is not an absolute path`);
      if (roots.length === 0)
        throw new SecurityError(
          'source.path: the service reads files only inside security.dataRoots, and none are set',
          {
            path: true,
          },
        );
      try {
        checkDataPath(body.source.path, roots);
      } catch (cause) {
        // Where a path resolves to is the server's business: the caller hears only that it is outside.
        throw new SecurityError('source.path is outside the data roots', { path: true, cause });
      }
      return { kind: 'path', path: body.source.path };
    }
    const input = { kind: 'upload', file: 'input.json' } as const;
    await writeEncryptedFile(
      join(jobs.dir(id), input.file),
      JSON.stringify(rowsDocument(body)),
      keyring,
      files,
    );
    return input;
  };

  /** A job's input from a multipart body: its `file` part (stored encrypted) and `options` part. */
  const multipartInput = async (
    request: FastifyRequest,
    id: string,
  ): Promise<{ input: JobInput; options: Record<string, unknown> }> => {
    let input: JobInput | undefined;
    let options: Record<string, unknown> = {};
    for await (const part of request.parts()) {
      if (part.type === 'file' && part.fieldname === 'file') {
        const ext = extname(part.filename ?? '').toLowerCase();
        if (!UPLOAD_EXTENSIONS.has(ext))
          throw new ConfigError(
            `file: "${part.filename}" is not a file the service reads (${[...UPLOAD_EXTENSIONS].join(' ')})`,
          );
        input = { kind: 'upload', file: `input${ext}` };
        await writeEncryptedFile(join(jobs.dir(id), input.file), await part.toBuffer(), keyring, files);
      } else if (part.type === 'field' && part.fieldname === 'options') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(String(part.value));
        } catch (cause) {
          throw new ConfigError(`options: not JSON: ${(cause as Error).message}`, { cause });
        }
        options = z.record(z.string(), z.unknown()).parse(parsed);
      } else {
        throw new ConfigError(`a part named "${part.fieldname}" is not one of the job's (file, options)`);
      }
    }
    if (!input) throw new ConfigError('file: the multipart body has no file part');
    return { input, options };
  };

  app.post('/v1/jobs', async (request, reply) => {
    if (draining)
      throw new ResourceExhaustedError('the service is shutting down: submit the job to its next start');
    if (jobs.queued() >= config.service.maxQueuedJobs)
      throw new ResourceExhaustedError(
        `${config.service.maxQueuedJobs} jobs are waiting (service.maxQueuedJobs): submit this one later`,
      );
    const actor = caller(request).name;
    const id = jobs.reserve();
    let job: Job;
    try {
      let input: JobInput;
      let options: Record<string, unknown>;
      if (request.isMultipart()) ({ input, options } = await multipartInput(request, id));
      else {
        const body = submitBody.parse(request.body);
        checkJobOptions(body.options);
        input = await jsonInput(body, id);
        options = body.options;
      }
      checkJobOptions(options);
      // The options are checked as the job will run them: a bad one is a 422 now, not a failed job.
      checkJobLimits(configOf({ input, options }), config);
      job = jobs.accept(id, input, options, actor, request.correlationId);
    } catch (error) {
      jobs.discard(id);
      throw error;
    }
    // Accepted: from here the job is the runner's, whatever else fails.
    try {
      audit(
        { action: 'job.submit', resource: id, outcome: 'success', actor, details: { input: job.input.kind } },
        request.correlationId,
      );
    } catch (error) {
      logger.error(
        { correlationId: request.correlationId, job: id },
        `job.submit not audited: ${(error as Error).message}`,
      );
    }
    runner.pump();
    return reply.status(202).send({ id, state: job.state, links: view(job).links });
  });

  app.get('/v1/jobs', async (request) => {
    const query = listQuery.parse(request.query);
    const page = jobs.list(query);
    return { jobs: page.jobs.map(view), ...(page.next ? { next: page.next } : {}) };
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (request) => view(jobs.get(request.params.id)));

  app.get<{ Params: { id: string } }>('/v1/jobs/:id/result', async (request, reply) => {
    const job = succeeded(request.params.id);
    const text = await stored(job.id, RESULT_FILE);
    audit(
      { action: 'job.result', resource: job.id, outcome: 'success', actor: caller(request).name },
      request.correlationId,
    );
    return reply.type('application/json').send(text);
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id/labels', async (request, reply) => {
    const job = succeeded(request.params.id);
    const text = await stored(job.id, LABELS_FILE);
    audit(
      { action: 'job.labels', resource: job.id, outcome: 'success', actor: caller(request).name },
      request.correlationId,
    );
    return reply.type('text/csv; charset=utf-8').send(text);
  });

  /** Labels new rows with the job's model: `{ data }` as a job's, answered `{ rows, labels }`. */
  app.post<{ Params: { id: string } }>('/v1/jobs/:id/predict', async (request) => {
    const job = succeeded(request.params.id);
    const body = predictBody.parse(request.body);
    const dir = jobs.dir(job.id);
    // Read as the job's own input was: a file of the rows (encrypted), with the job's data options.
    const rowsFile = join(dir, `predict-${randomUUID()}.json`);
    await writeEncryptedFile(rowsFile, JSON.stringify(rowsDocument(body)), keyring, files);
    try {
      const jobConfig = configOf(job);
      const clusterer = await NeuromorphicClusterer.load(join(dir, MODEL_FILE), {
        logger: logger.child({ correlationId: request.correlationId, job: job.id }),
        runtime,
        data: jobConfig.data,
        security:
          jobConfig.security.dataRoots.length > 0
            ? { dataRoots: [...jobConfig.security.dataRoots, dir] }
            : {},
      });
      const labels = await clusterer.predict(rowsFile, { correlationId: request.correlationId });
      audit(
        {
          action: 'job.predict',
          resource: job.id,
          outcome: 'success',
          actor: caller(request).name,
          details: { rows: labels.length },
        },
        request.correlationId,
      );
      return { rows: labels.length, labels: Array.from(labels) };
    } finally {
      await rm(rowsFile, { force: true });
    }
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id/plot.svg', async (request, reply) => {
    const job = succeeded(request.params.id);
    const svg = await stored(job.id, PLOT_FILE);
    return reply.type('image/svg+xml').send(svg);
  });

  /**
   * Server-Sent Events: the job as it is now (`event: job`), again at most every 100 ms while its
   * state or progress changes, and a last one in its final state, after which the stream ends.
   */
  app.get<{ Params: { id: string } }>('/v1/jobs/:id/events', async (request, reply) => {
    const id = jobs.get(request.params.id).id;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-correlation-id': request.correlationId,
    });
    let timer: NodeJS.Timeout | undefined;
    const close = () => {
      clearTimeout(timer);
      jobs.changes.off('change', onChange);
      streams.delete(close);
      res.end();
    };
    const send = () => {
      timer = undefined;
      let job: Job;
      try {
        job = jobs.get(id);
      } catch {
        // Deleted meanwhile: nothing more will come.
        close();
        return;
      }
      res.write(`event: job\ndata: ${JSON.stringify(view(job))}\n\n`);
      if (FINAL_STATES.includes(job.state)) close();
    };
    const onChange = (changed: string) => {
      if (changed === id && !timer) timer = setTimeout(send, 100);
    };
    jobs.changes.on('change', onChange);
    streams.add(close);
    request.raw.on('close', close);
    send();
  });

  /**
   * Every job's changes as Server-Sent Events (what the dashboard follows): `event: job` with the
   * job as GET /v1/jobs/:id gives it, at most one frame per job per 100 ms, `{ id, deleted: true }`
   * for a job deleted. The stream lasts until the client goes or the service stops.
   */
  app.get('/v1/events', async (request, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-correlation-id': request.correlationId,
    });
    res.write(': following every job\n\n');
    const due = new Map<string, NodeJS.Timeout>();
    const send = (id: string) => {
      due.delete(id);
      let frame: unknown;
      try {
        frame = view(jobs.get(id));
      } catch {
        frame = { id, deleted: true };
      }
      res.write(`event: job\ndata: ${JSON.stringify(frame)}\n\n`);
    };
    const onChange = (id: string) => {
      if (!due.has(id)) due.set(id, setTimeout(send, 100, id));
    };
    const close = () => {
      for (const timer of due.values()) clearTimeout(timer);
      jobs.changes.off('change', onChange);
      streams.delete(close);
      res.end();
    };
    jobs.changes.on('change', onChange);
    streams.add(close);
    request.raw.on('close', close);
  });

  /** What the dashboard shows beside the jobs: jobs by state, the fallback rate, breakers, budgets. */
  app.get('/v1/status', async () => {
    const recent = jobs.list({ state: 'succeeded', limit: 100 }).jobs;
    const fallbacks = recent.filter((j) => j.summary?.fallbackUsed === true).length;
    return {
      jobs: jobs.counts(),
      fallback: { jobs: recent.length, fallbacks, rate: recent.length === 0 ? 0 : fallbacks / recent.length },
      breakers: runtime.breakers(config).list(),
      budgets: runtime.privacyAccountant(config).list(),
    };
  });

  app.get('/dashboard', async (_request, reply) =>
    reply.type('text/html; charset=utf-8').send(DASHBOARD_HTML),
  );
  app.get('/dashboard/app.js', async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').send(DASHBOARD_JS),
  );
  app.get('/dashboard/app.css', async (_request, reply) =>
    reply.type('text/css; charset=utf-8').send(DASHBOARD_CSS),
  );

  app.delete<{ Params: { id: string } }>('/v1/jobs/:id', async (request, reply) => {
    const job = jobs.get(request.params.id);
    const actor = caller(request).name;
    if (FINAL_STATES.includes(job.state)) {
      if (runner.holds(job.id))
        throw new RequestError(
          'NEUROCLUSTER_ERR_CONFLICT',
          `job ${job.id} is still stopping: delete it in a moment`,
        );
      jobs.remove(job.id);
      audit({ action: 'job.delete', resource: job.id, outcome: 'success', actor }, request.correlationId);
      return reply.status(204).send();
    }
    runner.cancel(job.id);
    audit({ action: 'job.cancel', resource: job.id, outcome: 'success', actor }, request.correlationId);
    return reply.status(202).send(view(jobs.get(job.id)));
  });

  const readinessDeps = () => ({
    registry: runtime.registry,
    backend: config.engine.backend,
    selection: selectionContext(config.engine, Number.POSITIVE_INFINITY),
    breakers: runtime.breakers(config),
    monitor: runtime.resourceMonitor(config),
    home,
  });
  const probe = async (reply: FastifyReply, report: { status: string }) =>
    reply.status(report.status === 'fail' ? 503 : 200).send(report);

  app.get('/livez', async (_request, reply) => probe(reply, await liveness()));
  app.get('/readyz', async (_request, reply) => {
    if (draining)
      return reply
        .status(503)
        .send({ status: 'fail', checks: [{ name: 'service', status: 'fail', message: 'shutting down' }] });
    return probe(reply, await readiness(readinessDeps()));
  });
  app.get('/healthz', async (_request, reply) => probe(reply, await healthz(readinessDeps())));
  const document = openApiDocument();
  const page = docsPage(document);
  app.get('/openapi.json', async () => document);
  app.get('/docs', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page));

  app.get('/metrics', async (_request, reply) => {
    runtime.breakers(config);
    runtime.resourceMonitor(config);
    // The jobs' engine metrics (operations, kernels, fallbacks) are counted in the worker threads.
    const text = await mergedMetrics(await metrics.registry.getMetricsAsJSON(), await runner.workerMetrics());
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
  });

  return {
    app,
    routes,
    jobs,
    runner,
    async shutdown() {
      draining = true;
      await runner.drain(durationMs(config.service.shutdownGrace));
      for (const close of [...streams]) close();
    },
  };
}
