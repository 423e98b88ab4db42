/**
 * The job routes: submit (JSON rows, a path inside the data roots, or a multipart file), list,
 * read, result, labels, plot, predict with the job's model, cancel and delete.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { extname, isAbsolute, join } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { NeuromorphicClusterer } from '../../clusterer.js';
import { type Config, durationMs } from '../../config/schema.js';
import {
  ConfigError,
  NeuroclusterError,
  RequestError,
  ResourceExhaustedError,
  SecurityError,
} from '../../core/errors.js';
import { writeEncryptedBytes, writeEncryptedFile } from '../../security/encrypted-files.js';
import { encryptBuffer, readFileDecrypted } from '../../security/envelope.js';
import { checkDataPath } from '../../security/secure-load.js';
import { caller, type ServiceContext, view } from '../context.js';
import {
  FINAL_STATES,
  type Job,
  type JobInput,
  LABELS_FILE,
  MODEL_FILE,
  PLOT_FILE,
  RESULT_FILE,
} from '../jobs.js';
import { listQuery, predictBody, type rowsData, submitBody, UPLOAD_EXTENSIONS } from '../schemas.js';

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
  // A budget of its own, a dataset name of its choosing (a fresh name is a fresh budget), or
  // another tenant's budgets.
  for (const key of ['budget', 'dataset', 'namespace'])
    if (privacy && typeof privacy === 'object' && key in privacy) refused.push(`privacy.${key}`);
  if (refused.length > 0)
    throw new ConfigError(
      `options: ${refused.join(', ')} cannot be set by a job (allowed: ${[...JOB_SECTIONS].join(', ')}; privacy.budget, privacy.dataset and privacy.namespace excepted)`,
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

/** A job as its request brings it: its input, options, rows (when sent as JSON) and bytes stored. */
interface Submission {
  readonly input: JobInput;
  readonly options: Record<string, unknown>;
  readonly rows?: number;
  readonly bytes: number;
  /** The input's bytes, encrypted, held in the store with the job instead of written now. */
  readonly held?: Buffer;
}

/**
 * Rows sent as JSON up to this size (encrypted) are held in the store with the job, so that
 * accepting it writes no file; larger ones are written to the job's directory at once.
 */
const HELD_MAX_BYTES = 1 << 20;

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

/** What a succeeded job keeps to be read: the route under /v1/jobs/:id, its file, its type, its audit action. */
const STORED_OUTPUTS = [
  { route: 'result', file: RESULT_FILE, type: 'application/json', action: 'job.result' },
  { route: 'labels', file: LABELS_FILE, type: 'text/csv; charset=utf-8', action: 'job.labels' },
  { route: 'plot.svg', file: PLOT_FILE, type: 'image/svg+xml', action: 'job.plot' },
] as const;

export function jobRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const { config, runtime, logger, keyring, jobs, runner, files, tenants } = ctx;

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
  const succeeded = (id: string, request: FastifyRequest): Job => {
    const job = jobs.get(id, caller(request).tenant);
    if (job.state !== 'succeeded')
      throw new RequestError('NEUROCLUSTER_ERR_CONFLICT', `job ${id} is ${job.state}: it has no result`);
    return job;
  };

  /**
   * A job's input from a JSON body: rows, encrypted (with how many and the bytes kept), held for
   * the store or, over {@link HELD_MAX_BYTES}, written to the job's directory; or a checked path.
   */
  const jsonInput = async (
    body: z.infer<typeof submitBody>,
    id: string,
    tenant: string,
  ): Promise<Submission> => {
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
      return { input: { kind: 'path', path: body.source.path }, options: body.options, bytes: 0 };
    }
    const input = { kind: 'upload', file: 'input.json' } as const;
    const rows = rowsDocument(body);
    const sealed = encryptBuffer(Buffer.from(JSON.stringify(rows)), keyring.forTenant(tenant));
    const submission = { input, options: body.options, rows: rows.length, bytes: sealed.length };
    if (sealed.length <= HELD_MAX_BYTES) return { ...submission, held: sealed };
    await writeEncryptedBytes(join(jobs.dir(id), input.file), sealed, files);
    return submission;
  };

  /** A job's input from a multipart body: its `file` part (stored encrypted) and `options` part. */
  const multipartInput = async (request: FastifyRequest, id: string, tenant: string): Promise<Submission> => {
    let input: JobInput | undefined;
    let options: Record<string, unknown> = {};
    let bytes = 0;
    for await (const part of request.parts()) {
      if (part.type === 'file' && part.fieldname === 'file') {
        const ext = extname(part.filename ?? '').toLowerCase();
        if (!UPLOAD_EXTENSIONS.has(ext))
          throw new ConfigError(
            `file: "${part.filename}" is not a file the service reads (${[...UPLOAD_EXTENSIONS].join(' ')})`,
          );
        input = { kind: 'upload', file: `input${ext}` };
        const sealed = encryptBuffer(await part.toBuffer(), keyring.forTenant(tenant));
        await writeEncryptedBytes(join(jobs.dir(id), input.file), sealed, files);
        bytes = sealed.length;
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
    return { input, options, bytes };
  };

  app.post('/v1/jobs', async (request, reply) => {
    if (ctx.draining())
      throw new ResourceExhaustedError('the service is shutting down: submit the job to its next start');
    if (jobs.queued() >= config.service.maxQueuedJobs)
      throw new ResourceExhaustedError(
        `${config.service.maxQueuedJobs} jobs are waiting (service.maxQueuedJobs): submit this one later`,
      );
    const { name: actor, tenant } = caller(request);
    // The tenant's quotas: its jobs now before the body is stored, the job's rows and bytes after.
    tenants.admit(tenant, config.service.quotas);
    const id = randomUUID();
    let job: Job;
    try {
      const { input, options, rows, bytes, held } = request.isMultipart()
        ? await multipartInput(request, id, tenant)
        : await jsonInput(submitBody.parse(request.body), id, tenant);
      tenants.admit(tenant, config.service.quotas, { ...(rows === undefined ? {} : { rows }), bytes });
      // Whatever the body, the options are checked once, as the job will run them: a bad one is a
      // 422 now (its stored input discarded below), not a failed job later.
      checkJobOptions(options);
      const jobConfig = ctx.configOf({ input, options, tenant });
      checkJobLimits(jobConfig, config);
      job = jobs.accept(id, input, options, caller(request), request.correlationId, bytes, held);
    } catch (error) {
      jobs.discard(id);
      throw error;
    }
    // Accepted: from here the job is the runner's, whatever else fails.
    try {
      await ctx.audit(
        {
          action: 'job.submit',
          resource: id,
          outcome: 'success',
          actor,
          details: { tenant, input: job.input.kind },
        },
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
    const page = jobs.list({ ...query, tenant: caller(request).tenant });
    return { jobs: page.jobs.map(view), ...(page.next ? { next: page.next } : {}) };
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (request) =>
    view(jobs.get(request.params.id, caller(request).tenant)),
  );

  // A succeeded job's stored outputs, each read decrypted and audited as read.
  for (const output of STORED_OUTPUTS) {
    app.get<{ Params: { id: string } }>(`/v1/jobs/:id/${output.route}`, async (request, reply) => {
      const job = succeeded(request.params.id, request);
      const bytes = await stored(job.id, output.file);
      await ctx.audit(
        {
          action: output.action,
          resource: job.id,
          outcome: 'success',
          actor: caller(request).name,
          details: { tenant: job.tenant },
        },
        request.correlationId,
      );
      return reply.type(output.type).send(bytes);
    });
  }

  /** Labels new rows with the job's model: `{ data }` as a job's, answered `{ rows, labels }`. */
  app.post<{ Params: { id: string } }>('/v1/jobs/:id/predict', async (request) => {
    const job = succeeded(request.params.id, request);
    const body = predictBody.parse(request.body);
    const dir = jobs.dir(job.id);
    // Read as the job's own input was: a file of the rows (encrypted), with the job's data options.
    const rowsFile = join(dir, `predict-${randomUUID()}.json`);
    await writeEncryptedFile(
      rowsFile,
      JSON.stringify(rowsDocument(body)),
      keyring.forTenant(job.tenant),
      files,
    );
    try {
      const jobConfig = ctx.configOf(job);
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
      await ctx.audit(
        {
          action: 'job.predict',
          resource: job.id,
          outcome: 'success',
          actor: caller(request).name,
          details: { tenant: job.tenant, rows: labels.length },
        },
        request.correlationId,
      );
      return { rows: labels.length, labels: Array.from(labels) };
    } finally {
      await rm(rowsFile, { force: true });
    }
  });

  app.delete<{ Params: { id: string } }>('/v1/jobs/:id', async (request, reply) => {
    const job = jobs.get(request.params.id, caller(request).tenant);
    const actor = caller(request).name;
    if (FINAL_STATES.includes(job.state)) {
      if (runner.holds(job.id))
        throw new RequestError(
          'NEUROCLUSTER_ERR_CONFLICT',
          `job ${job.id} is still stopping: delete it in a moment`,
        );
      jobs.remove(job.id);
      await ctx.audit(
        {
          action: 'job.delete',
          resource: job.id,
          outcome: 'success',
          actor,
          details: { tenant: job.tenant },
        },
        request.correlationId,
      );
      return reply.status(204).send();
    }
    runner.cancel(job.id);
    await ctx.audit(
      { action: 'job.cancel', resource: job.id, outcome: 'success', actor, details: { tenant: job.tenant } },
      request.correlationId,
    );
    return reply.status(202).send(view(jobs.get(job.id)));
  });
}
