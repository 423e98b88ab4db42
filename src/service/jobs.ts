/**
 * The service's jobs: their rows in the store (state, progress, summary, error) and their files,
 * each job's in a directory of its own under `$NEUROCLUSTER_HOME/service/jobs/<id>/` (mode 0700):
 * the uploaded rows, the result and the labels, encrypted at rest with the keyring. Rows sent in a
 * request's JSON are held in the store, encrypted, with the job's row (one commit accepts the
 * job, no file is written on the request's thread), and written to the job's directory by what
 * runs it ({@link JobStore.held}); they are dropped once the job ends.
 *
 * A job is `queued`, then `running` (claimed by one runner, in the order jobs were accepted), then
 * `succeeded`, `failed` or `cancelled`. A job still `running` when its process stopped is queued
 * again by the next start ({@link JobStore.requeueInterrupted}): an accepted job always reaches a
 * final state.
 */
import { EventEmitter } from 'node:events';
import { existsSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RequestError } from '../core/errors.js';
import { EncryptedFileRegistry, writeEncryptedBytes } from '../security/encrypted-files.js';
import { type Db, statement } from '../store/db.js';

/** A succeeded job's files in its directory (each encrypted): what the worker writes, the routes read. */
export const RESULT_FILE = 'result.json';
export const LABELS_FILE = 'labels.csv';
export const PLOT_FILE = 'plot.svg';
export const MODEL_FILE = 'model.json';

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];

/** What a job clusters: rows or a file it was sent (its `file`, in its directory), or a file the service reads. */
export type JobInput =
  | { readonly kind: 'upload'; readonly file: string }
  | { readonly kind: 'path'; readonly path: string };

export interface JobProgress {
  readonly phase: string;
  readonly done: number;
  readonly total: number;
}

export interface Job {
  readonly id: string;
  readonly state: JobState;
  readonly input: JobInput;
  /** The job's configuration document (checked when it was accepted). */
  readonly options: Record<string, unknown>;
  /** The API key's name that submitted it, and that key's tenant (the only one that sees it). */
  readonly actor: string;
  readonly tenant: string;
  readonly correlationId: string;
  readonly progress?: JobProgress;
  /** The result without its labels, once it succeeded. */
  readonly summary?: Record<string, unknown>;
  readonly error?: { readonly code: string; readonly message: string };
  readonly attempts: number;
  readonly createdAt: string;
  readonly startedAt?: string;
  readonly endedAt?: string;
}

interface Row {
  seq: number;
  id: string;
  state: JobState;
  input: string;
  options: string;
  actor: string;
  tenant: string;
  correlation_id: string;
  progress: string | null;
  summary: string | null;
  error_code: string | null;
  error_message: string | null;
  attempts: number;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
}

function toJob(row: Row): Job {
  return {
    id: row.id,
    state: row.state,
    input: JSON.parse(row.input) as JobInput,
    options: JSON.parse(row.options) as Record<string, unknown>,
    actor: row.actor,
    tenant: row.tenant,
    correlationId: row.correlation_id,
    ...(row.progress ? { progress: JSON.parse(row.progress) as JobProgress } : {}),
    ...(row.summary ? { summary: JSON.parse(row.summary) as Record<string, unknown> } : {}),
    ...(row.error_code ? { error: { code: row.error_code, message: row.error_message ?? '' } } : {}),
    attempts: row.attempts,
    createdAt: row.created_at,
    ...(row.started_at ? { startedAt: row.started_at } : {}),
    ...(row.ended_at ? { endedAt: row.ended_at } : {}),
  };
}

const now = () => new Date().toISOString();

/**
 * Readies a job's directory before the job runs: its input written there when it was held in the
 * store ({@link JobStore.held}), the directory made (owner-only) otherwise. Called by what runs
 * the job: its worker thread, or the queue's dispatcher before workers read the input.
 */
export async function prepareJobDir(
  dir: string,
  input: string,
  held: Uint8Array | undefined,
  registry?: EncryptedFileRegistry,
): Promise<void> {
  if (held) await writeEncryptedBytes(input, held, registry);
  else await mkdir(dir, { recursive: true, mode: 0o700 });
}

/** The id of a job's held input among the store's encrypted records. */
const heldId = (id: string) => `job-input:${id}`;

export class JobStore {
  /** Emits `change` with a job's id whenever its state or progress changes (the events route). */
  readonly changes = new EventEmitter().setMaxListeners(0);
  private readonly records: EncryptedFileRegistry;

  constructor(
    private readonly db: Db,
    /** Where the jobs' directories are: `$NEUROCLUSTER_HOME/service/jobs`. */
    readonly root: string,
  ) {
    this.records = new EncryptedFileRegistry(db);
  }

  /** The directory of a job's files (owner-only; made by the first write of one of them). */
  dir(id: string): string {
    return join(this.root, id);
  }

  /** The file a job clusters: its upload, in its directory, or the path it named. */
  inputPath(job: Pick<Job, 'id' | 'input'>): string {
    return job.input.kind === 'path' ? job.input.path : join(this.dir(job.id), job.input.file);
  }

  /**
   * Accepts a job: it is queued behind the others. Its input is in its directory already, or is
   * `held` (its upload's bytes, encrypted), kept in the store in the same commit as the job.
   */
  accept(
    id: string,
    input: JobInput,
    options: Record<string, unknown>,
    caller: { readonly name: string; readonly tenant: string },
    correlationId: string,
    /** What it stores already (its upload, encrypted), for the tenant's stored-bytes quota. */
    storedBytes = 0,
    held?: Uint8Array,
  ): Job {
    this.db.transaction(() => {
      statement(
        this.db,
        `INSERT INTO jobs (id, state, input, options, actor, tenant, correlation_id, created_at, stored_bytes)
           VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        id,
        JSON.stringify(input),
        JSON.stringify(options),
        caller.name,
        caller.tenant,
        correlationId,
        now(),
        storedBytes,
      );
      if (held) this.records.keep(heldId(id), held);
    })();
    return this.get(id);
  }

  /**
   * The job's input held in the store (encrypted), which whatever runs the job writes to
   * {@link inputPath} first; none once the job has ended, or when its input is a file already.
   */
  held(id: string): Buffer | undefined {
    return this.records.record(heldId(id));
  }

  /**
   * The job, or 404; asked for on a tenant's behalf, another tenant's job is 404 too (its id is
   * not disclosed by a different answer).
   */
  get(id: string, tenant?: string): Job {
    const row = statement(this.db, 'SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    if (!row || (tenant !== undefined && row.tenant !== tenant))
      throw new RequestError('NEUROCLUSTER_ERR_NOT_FOUND', `no job ${id}`);
    return toJob(row);
  }

  /**
   * A page of jobs, newest first: at most `limit`, in `state` when given, older than the job whose
   * cursor is `cursor`; `next` is the cursor of the page after it, absent on the last page.
   */
  list(options: { state?: JobState; tenant?: string; limit: number; cursor?: string }): {
    jobs: Job[];
    next?: string;
  } {
    const before = options.cursor === undefined ? Number.MAX_SAFE_INTEGER : Number(options.cursor);
    const state = options.state ?? null;
    const tenant = options.tenant ?? null;
    const rows = statement(
      this.db,
      `SELECT * FROM jobs WHERE seq < ? AND (? IS NULL OR state = ?) AND (? IS NULL OR tenant = ?)
         ORDER BY seq DESC LIMIT ?`,
    ).all(before, state, state, tenant, tenant, options.limit + 1) as Row[];
    const page = rows.slice(0, options.limit);
    const last = page.at(-1);
    return {
      jobs: page.map(toJob),
      ...(rows.length > options.limit && last ? { next: String(last.seq) } : {}),
    };
  }

  /** How many jobs are in each state (of one tenant, when given). */
  counts(tenant?: string): Record<JobState, number> {
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const { state, n } of statement(
      this.db,
      'SELECT state, COUNT(*) AS n FROM jobs WHERE (? IS NULL OR tenant = ?) GROUP BY state',
    ).all(tenant ?? null, tenant ?? null) as {
      state: JobState;
      n: number;
    }[])
      counts[state] = n;
    return counts;
  }

  /** How many jobs are in each state, by tenant (the tenants that have jobs). */
  byTenant(): Record<string, Record<JobState, number>> {
    const out: Record<string, Record<JobState, number>> = {};
    for (const { tenant, state, n } of statement(
      this.db,
      'SELECT tenant, state, COUNT(*) AS n FROM jobs GROUP BY tenant, state',
    ).all() as { tenant: string; state: JobState; n: number }[]) {
      out[tenant] ??= Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
      out[tenant][state] = n;
    }
    return out;
  }

  /** How many jobs wait to start (from the state index: no scan of the table). */
  queued(): number {
    return (
      statement(this.db, `SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued'`).get() as { n: number }
    ).n;
  }

  /**
   * Takes a queued job for running (one transaction: two runners never take the same), fairly
   * across tenants: of the tenants with jobs waiting, the one with the fewest running, then the
   * one served longest ago, gets its oldest job. One tenant's thousand queued jobs wait behind
   * another's one, which runs next.
   */
  claim(): Job | undefined {
    const job = this.db.transaction(() => {
      const row = statement(
        this.db,
        `WITH waiting AS (
             SELECT tenant, MIN(seq) AS seq FROM jobs WHERE state = 'queued' GROUP BY tenant
           ), running AS (
             SELECT tenant, COUNT(*) AS n FROM jobs WHERE state = 'running' GROUP BY tenant
           )
           SELECT waiting.seq AS seq, waiting.tenant AS tenant FROM waiting
             LEFT JOIN running USING (tenant) LEFT JOIN tenants ON tenants.name = waiting.tenant
           ORDER BY COALESCE(running.n, 0), COALESCE(tenants.served, 0), waiting.seq LIMIT 1`,
      ).get() as { seq: number; tenant: string } | undefined;
      if (!row) return undefined;
      statement(
        this.db,
        `UPDATE jobs SET state = 'running', started_at = ?, attempts = attempts + 1, progress = NULL WHERE seq = ?`,
      ).run(now(), row.seq);
      this.served(row.tenant);
      return toJob(statement(this.db, 'SELECT * FROM jobs WHERE seq = ?').get(row.seq) as Row);
    })();
    if (job) this.changes.emit('change', job.id);
    return job;
  }

  /**
   * Jobs not final, oldest first, accepted after the job of sequence `after`, with their sequence
   * numbers: what the queue dispatcher puts on the queue (src/distributed/dispatcher.ts).
   */
  unfinished(after = 0, limit = 1000): { seq: number; job: Job }[] {
    const rows = statement(
      this.db,
      `SELECT * FROM jobs WHERE seq > ? AND state IN ('queued', 'running') ORDER BY seq LIMIT ?`,
    ).all(after, limit) as Row[];
    return rows.map((row) => ({ seq: row.seq, job: toJob(row) }));
  }

  /** Marks a tenant served now: the next claims prefer the others (the tenants' turns). */
  private served(tenant: string): void {
    statement(
      this.db,
      'UPDATE tenants SET served = (SELECT COALESCE(MAX(served), 0) + 1 FROM tenants) WHERE name = ?',
    ).run(tenant);
  }

  /**
   * A job's place in its tenant's line: 1 + its tenant's jobs not final accepted before it. A
   * queue ranks tasks by it (the lowest first), so that tenants take turns there too.
   */
  rank(job: Pick<Job, 'id' | 'tenant'>): number {
    const row = statement(
      this.db,
      `SELECT COUNT(*) AS n FROM jobs WHERE tenant = ? AND state IN ('queued', 'running')
           AND seq < (SELECT seq FROM jobs WHERE id = ?)`,
    ).get(job.tenant, job.id) as { n: number };
    return row.n + 1;
  }

  /** A queued job taken by a worker elsewhere (a queue's): running now; false when it was not queued. */
  started(id: string): boolean {
    const changed =
      statement(
        this.db,
        `UPDATE jobs SET state = 'running', started_at = ?, attempts = attempts + 1, progress = NULL
           WHERE id = ? AND state = 'queued'`,
      ).run(now(), id).changes === 1;
    if (changed) this.changes.emit('change', id);
    return changed;
  }

  progress(id: string, progress: JobProgress): void {
    statement(this.db, `UPDATE jobs SET progress = ? WHERE id = ? AND state = 'running'`).run(
      JSON.stringify(progress),
      id,
    );
    this.changes.emit('change', id);
  }

  /** Moves a running job to its final state; false when it was not running (cancelled meanwhile). */
  finish(
    id: string,
    state: 'succeeded' | 'failed' | 'cancelled',
    outcome: { summary?: Record<string, unknown>; error?: { code: string; message: string } } = {},
  ): boolean {
    const bytes = this.bytesOf(id);
    const changed = this.db.transaction(() => {
      const ended =
        statement(
          this.db,
          `UPDATE jobs SET state = ?, ended_at = ?, summary = ?, error_code = ?, error_message = ?, stored_bytes = ?
             WHERE id = ? AND state IN ('queued', 'running')`,
        ).run(
          state,
          now(),
          outcome.summary ? JSON.stringify(outcome.summary) : null,
          outcome.error?.code ?? null,
          outcome.error?.message ?? null,
          bytes,
          id,
        ).changes === 1;
      // Its input is in its directory by now, or it never ran and will not.
      if (ended) this.records.drop(heldId(id));
      return ended;
    })();
    if (changed) this.changes.emit('change', id);
    return changed;
  }

  /**
   * Jobs left `running` by a process that stopped: queued again, ahead of newer ones, unless they
   * were taken `maxAttempts` times already (a job that takes its process down each time it runs
   * must not take every next start down too): those fail.
   */
  requeueInterrupted(maxAttempts = 3): { requeued: number; abandoned: number } {
    return this.db.transaction(() => {
      const abandoned = statement(
        this.db,
        `UPDATE jobs SET state = 'failed', ended_at = ?, error_code = 'NEUROCLUSTER_ERR_INTERNAL',
             error_message = 'its run was cut off ' || attempts || ' times (the service stopped or was killed): not run again'
           WHERE state = 'running' AND attempts >= ?`,
      ).run(now(), maxAttempts).changes;
      const requeued = statement(
        this.db,
        `UPDATE jobs SET state = 'queued', progress = NULL WHERE state = 'running'`,
      ).run().changes;
      return { requeued, abandoned };
    })();
  }

  /** The bytes a job's directory holds now (its upload and its results). */
  private bytesOf(id: string): number {
    const dir = this.dir(id);
    let bytes = 0;
    try {
      for (const entry of readdirSync(dir, { withFileTypes: true }))
        if (entry.isFile()) bytes += statSync(join(dir, entry.name)).size;
    } catch {
      // No directory (a job of a path, removed meanwhile): nothing kept.
    }
    return bytes;
  }

  /** Removes a finished job: its row and its files. */
  remove(id: string): void {
    this.db.transaction(() => {
      statement(this.db, 'DELETE FROM jobs WHERE id = ?').run(id);
      this.records.drop(heldId(id));
    })();
    this.removeFiles(id);
    this.changes.emit('change', id);
  }

  /** Removes the directory of a job that was never accepted (its request failed). */
  discard(id: string): void {
    this.removeFiles(id);
  }

  /**
   * A job's files, and their entries in the record of encrypted files (which `keys retire` checks:
   * a file gone must not keep its key from being retired).
   */
  private removeFiles(id: string): void {
    const dir = this.dir(id);
    if (!existsSync(dir)) return;
    const prefix = `${realpathSync(dir)}/`;
    statement(this.db, 'DELETE FROM encrypted_files WHERE substr(path, 1, length(?)) = ?').run(
      prefix,
      prefix,
    );
    rmSync(dir, { recursive: true, force: true });
  }
}
