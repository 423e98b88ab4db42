/**
 * What the service (src/distributed/dispatcher.ts) and `neurocluster worker`
 * (src/distributed/worker.ts) share: the BullMQ queue of jobs in Redis, its connection, what a
 * task holds and what it answers. See docs/distributed.md.
 *
 * A task holds where the job's input is and its checked configuration, never rows and never a
 * secret: the input is a file on storage both see (the job's directory or a path inside the data
 * roots), and the keyring comes to each process from its own environment. A task answers only its
 * outcome; the result, labels, plot and model are written encrypted to the job's directory.
 */
import { once } from 'node:events';
import { basename, isAbsolute } from 'node:path';
import type { ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { type Config, configSchema } from '../config/schema.js';
import { ConfigError, isNeuroclusterError, NeuroclusterError, UsageError } from '../core/errors.js';
import type { PrivacyCharge } from '../fit/private.js';

/** One job, as a worker runs it. */
export interface Task {
  readonly id: string;
  /** The file the job clusters (absolute). */
  readonly input: string;
  /** The job's directory, where the worker writes its result, labels, plot and model. */
  readonly dir: string;
  readonly config: Config;
  readonly correlationId: string;
  /** The tenant the job belongs to: its logs carry it. */
  readonly tenant: string;
  /** The rows the job may read (its tenant's maxRowsPerJob), when it has a limit. */
  readonly maxRows?: number | undefined;
  /** A private job's budget, charged by the service (src/distributed/dispatcher.ts). */
  readonly privacyCharge?: PrivacyCharge | undefined;
}

/** The name, in the job's directory, of a private job's charge, kept by the service. */
export const CHARGE_FILE = 'privacy-charge.enc';

const absolute = z.string().refine(isAbsolute, 'not an absolute path');
const taskSchema = z.strictObject({
  id: z.uuid(),
  input: absolute,
  dir: absolute,
  config: z.unknown(),
  correlationId: z.string().min(1).max(128),
  tenant: z.string().min(1).max(64),
  maxRows: z.int().min(0).optional(),
  privacyCharge: z
    .strictObject({
      kind: z.enum(['pure', 'zcdp']),
      cost: z.string().regex(/^[1-9][0-9]*$/),
      report: z.strictObject({
        dataset: z.string().min(1),
        epsilon: z.number().positive(),
        delta: z.number().optional(),
        mechanism: z.enum(['laplace', 'gaussian']),
        spent: z.number(),
        remaining: z.number(),
        budget: z.number(),
      }),
    })
    .optional(),
});

/** What a zod check found wrong, `path: message` each, at most `most` of them. */
function issuesOf(error: z.ZodError, most = Number.POSITIVE_INFINITY): string {
  return error.issues
    .slice(0, most)
    .map((i) => `${i.path.join('.')}: ${i.message}`)
    .join('; ');
}

/**
 * A task's data checked against its `schema`, then its configuration against this version's (a
 * service of another version, or a task written by something else): a ConfigError naming `what`
 * and what is wrong otherwise.
 */
export function checkedTask<T extends { config: unknown }>(
  schema: z.ZodType<T>,
  data: unknown,
  what: string,
): Omit<T, 'config'> & { config: Config } {
  const task = schema.safeParse(data);
  if (!task.success) throw new ConfigError(`${what} is not one this worker runs: ${issuesOf(task.error)}`);
  const config = configSchema.safeParse(task.data.config);
  if (!config.success)
    throw new ConfigError(
      `${what}'s configuration is not this version's (is the service another version?): ${issuesOf(config.error, 3)}`,
    );
  return { ...task.data, config: config.data };
}

/**
 * A task as a worker takes it from Redis, checked: its shape, its job's own directory, and its
 * configuration against this version's schema (a service of another version, or a task written
 * by something else, is a NEUROCLUSTER_ERR_CONFIG failure of the job, not a crash of the worker).
 */
export function readTask(data: unknown): Task {
  const { privacyCharge, ...rest } = checkedTask(taskSchema, data, 'the task');
  if (basename(rest.dir) !== rest.id)
    throw new ConfigError(`the task's directory ${rest.dir} is not the directory of job ${rest.id}`);
  // Never charged to the worker's own ledger: the service's is the one that holds the budget.
  if (rest.config.privacy.epsilon !== undefined && !privacyCharge)
    throw new ConfigError(
      'the task of a differentially private job carries no charge: its budget is charged by the service before it is queued (is the service another version?)',
    );
  return {
    ...rest,
    ...(privacyCharge
      ? {
          privacyCharge: {
            ...privacyCharge,
            report: { ...privacyCharge.report, delta: privacyCharge.report.delta },
          },
        }
      : {}),
  };
}

/** A task's answer: the job's outcome. A crash or a stall is not an answer: BullMQ runs it again. */
export type TaskOutcome =
  | { readonly state: 'succeeded'; readonly rows: number }
  | { readonly state: 'failed'; readonly error: { readonly code: string; readonly message: string } };

/** The name a job's task is added under (one kind of task for now: a whole job). */
export const JOB_TASK = 'job';

/** The Redis channel on which the service asks the workers to stop a job. */
export function cancelChannel(queueName: string): string {
  return `neurocluster:${queueName}:cancel`;
}

/**
 * The queue URL given (`--queue`, else NEUROCLUSTER_QUEUE), checked; undefined when none is.
 * Refused unless it is redis:// or rediss:// (TLS).
 */
export function queueUrl(given: string | undefined): string | undefined {
  const raw = (given ?? '').trim();
  if (raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--queue: ${redacted(raw)} is not a URL (redis://[user:password@]host:port[/db])`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    throw new UsageError(`--queue: ${redacted(raw)} is not redis:// or rediss:// (TLS)`);
  return raw;
}

/** The URL without its password, for logs and messages. */
export function redacted(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    // ioredis also takes the password as a query parameter.
    for (const key of [...url.searchParams.keys()])
      if (/pass|secret|token/i.test(key)) url.searchParams.set(key, '***');
    return url.toString();
  } catch {
    return '<a URL that cannot be read>';
  }
}

/**
 * BullMQ's connection options for a queue URL (ioredis reads the user, password, database and
 * `rediss:` for TLS from it). `wait`: commands wait for a lost connection to come back, as BullMQ
 * asks of its workers and event readers. `fail-fast`: commands fail at once while Redis is away,
 * for a producer that has something better to do (answer a scrape, try the dispatch again later).
 */
export function connectionOf(url: string, mode: 'wait' | 'fail-fast'): ConnectionOptions {
  return mode === 'wait'
    ? { url, maxRetriesPerRequest: null }
    : { url, maxRetriesPerRequest: 1, enableOfflineQueue: false };
}

/**
 * `ready` (connections being made), or NEUROCLUSTER_ERR_IO when the queue's Redis has not answered
 * within `ms` (`distributed.connectTimeout`): a start fails with what to check instead of waiting
 * for ever.
 */
export async function reachable<T>(ready: Promise<T>, url: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new NeuroclusterError(
            'NEUROCLUSTER_ERR_IO',
            `the queue's Redis at ${redacted(url)} did not answer in ${ms / 1000} s: is it running, and are the URL, the password and TLS (rediss://) right?`,
          ),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([ready, late]);
  } catch (cause) {
    if (isNeuroclusterError(cause)) throw cause;
    throw new NeuroclusterError(
      'NEUROCLUSTER_ERR_IO',
      `the queue's Redis at ${redacted(url)} cannot be used: ${(cause as Error).message}`,
      { cause },
    );
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A handler for a connection's `error` events that logs each distinct message once per
 * `quietMs`, with how many times it came meanwhile: Redis away makes the client fail every few
 * milliseconds while it retries, and one line says so.
 */
export function connectionErrors(
  log: (message: string) => void,
  what: string,
  quietMs = 30_000,
): (error: Error) => void {
  const last = new Map<string, { at: number; repeats: number }>();
  return (error) => {
    const now = Date.now();
    const seen = last.get(error.message);
    if (seen && now - seen.at < quietMs) {
      seen.repeats++;
      return;
    }
    const again = seen && seen.repeats > 0 ? ` (${seen.repeats} more time(s) since it was last logged)` : '';
    last.set(error.message, { at: now, repeats: 0 });
    log(`${what}: ${error.message}${again}`);
  };
}

/**
 * Connects a client made with `lazyConnect` and resolves once it is ready, however many tries it
 * takes (ioredis's own `connect()` gives up at the first refusal; a Redis that starts after its
 * clients is common on a cluster). {@link reachable} bounds the wait.
 */
export async function readyClient(client: Redis): Promise<void> {
  if (client.status === 'ready') return;
  const ready = once(client, 'ready');
  client.connect().catch(() => undefined);
  await ready;
}
