/**
 * The service's tenants, in the store: the teams one service is shared by. Every API key belongs
 * to one (`default` unless told), every job to its key's tenant, and a tenant sees only its own.
 *
 * Each tenant has quotas: the service's (`service.quotas`), over which a tenant's own overrides
 * go (`neurocluster tenants set`). A request past one is refused with NEUROCLUSTER_ERR_QUOTA (429),
 * with Retry-After where waiting helps (active jobs, jobs per hour). A tenant's files are wrapped
 * with a key of its own in the keyring; deleting the tenant revokes its API keys, destroys those
 * keys (no copy of its files can be read any more) and removes its jobs with their stored files.
 * docs/tenancy.md says what is isolated and what is not.
 */
import { QuotaError, UsageError } from '../core/errors.js';
import type { Keyring } from '../security/keyring.js';
import { type Db, statement } from '../store/db.js';
import type { JobStore } from './jobs.js';

/** A tenant's limits; an absent one is no limit. */
export interface Quotas {
  /** Jobs queued or running at once. */
  readonly maxActiveJobs?: number | undefined;
  /** Jobs accepted in any hour. */
  readonly maxJobsPerHour?: number | undefined;
  /** Rows in one job's data. */
  readonly maxRowsPerJob?: number | undefined;
  /** Bytes of uploads and results kept for its jobs (encrypted, as stored). */
  readonly maxStoredBytes?: number | undefined;
}

export const QUOTA_NAMES = ['maxActiveJobs', 'maxJobsPerHour', 'maxRowsPerJob', 'maxStoredBytes'] as const;

export interface TenantInfo {
  readonly name: string;
  readonly createdAt: string;
  /** Its own quotas: these win over the service's. */
  readonly quotas: Quotas;
}

/** What a tenant uses of its quotas now. */
export interface TenantUsage {
  readonly activeJobs: number;
  readonly jobsLastHour: number;
  readonly storedBytes: number;
  /** When the oldest of the last hour's jobs was accepted (the hour's count drops after it). */
  readonly oldestInHour?: string;
}

export const DEFAULT_TENANT = 'default';

/** The namespace of a tenant's privacy budgets (`privacy.namespace`): its budgets are its own. */
export function tenantNamespace(tenant: string): string {
  return `tenant:${tenant}`;
}

/**
 * A tenant's budgets among all the store keeps, each named by its dataset alone (the namespace
 * taken off): what the tenant is shown of them.
 */
export function tenantBudgets<B extends { readonly dataset: string }>(
  all: readonly B[],
  tenant: string,
): B[] {
  const prefix = `${tenantNamespace(tenant)}/`;
  return all
    .filter((b) => b.dataset.startsWith(prefix))
    .map((b) => ({ ...b, dataset: b.dataset.slice(prefix.length) }));
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const HOUR_MS = 3_600_000;

interface Row {
  name: string;
  created_at: string;
  quotas: string;
}

const info = (row: Row): TenantInfo => ({
  name: row.name,
  createdAt: row.created_at,
  quotas: JSON.parse(row.quotas) as Quotas,
});

export function checkTenantName(name: string, flag = 'tenant'): void {
  if (!NAME.test(name))
    throw new UsageError(`${flag}: "${name}" is not a tenant name (letters, digits, . _ -; at most 64)`);
}

export class Tenants {
  constructor(private readonly db: Db) {}

  list(): TenantInfo[] {
    return (statement(this.db, 'SELECT * FROM tenants ORDER BY name').all() as Row[]).map(info);
  }

  get(name: string): TenantInfo | undefined {
    const row = statement(this.db, 'SELECT * FROM tenants WHERE name = ?').get(name) as Row | undefined;
    return row ? info(row) : undefined;
  }

  /** The tenant, or a usage error that says how to make it. */
  need(name: string): TenantInfo {
    const tenant = this.get(name);
    if (!tenant)
      throw new UsageError(
        `no tenant is named "${name}": \`neurocluster tenants create ${name}\` makes it (tenants list shows them)`,
      );
    return tenant;
  }

  /**
   * Makes a tenant, with a key of its own in `keyring` that its files will be wrapped with (none
   * where the keyring is read-only, from the environment: its files then use the current key).
   */
  create(name: string, keyring?: Keyring): TenantInfo & { readonly keyId?: string } {
    checkTenantName(name, 'name');
    if (this.get(name)) throw new UsageError(`a tenant named "${name}" exists (tenants list shows them)`);
    const keyId = keyring?.file ? (keyring.tenantKeyId(name) ?? keyring.rotateTenant(name)) : undefined;
    const changes = statement(this.db, 'INSERT OR IGNORE INTO tenants (name, created_at) VALUES (?, ?)').run(
      name,
      new Date().toISOString(),
    ).changes;
    if (changes === 0) throw new UsageError(`a tenant named "${name}" exists (tenants list shows them)`);
    return { ...this.need(name), ...(keyId === undefined ? {} : { keyId }) };
  }

  /** Sets (a number) or clears (null) the tenant's own quotas; the others stay as they were. */
  set(name: string, changes: { readonly [K in keyof Quotas]?: number | null }): TenantInfo {
    return this.db.transaction(() => {
      const quotas: Record<string, number> = { ...this.need(name).quotas } as Record<string, number>;
      for (const key of QUOTA_NAMES) {
        const value = changes[key];
        if (value === undefined) continue;
        if (value === null) delete quotas[key];
        else if (!Number.isSafeInteger(value) || value < 0)
          throw new UsageError(`${key}: ${value} is not a whole number of at least 0`);
        else quotas[key] = value;
      }
      statement(this.db, 'UPDATE tenants SET quotas = ? WHERE name = ?').run(JSON.stringify(quotas), name);
      return this.need(name);
    })();
  }

  /**
   * Deletes a tenant: its API keys revoked, its keys in `keyring` destroyed (crypto-shredding: no
   * copy of its files can be read any more), its jobs removed with their stored files. Refused while
   * one of its jobs runs (its worker would write its results after the removal): cancel it or wait.
   * `default` is not deleted (keys without a tenant belong to it); its keys are revoked one by one.
   * Each step is one a second run finishes: the tenant goes last.
   */
  delete(
    name: string,
    jobs: JobStore,
    keyring?: Keyring,
  ): {
    readonly keysRevoked: number;
    readonly jobsRemoved: number;
    readonly keysDestroyed: readonly string[];
  } {
    if (name === DEFAULT_TENANT)
      throw new UsageError(
        'the default tenant is not deleted: revoke its keys (api-keys revoke) and delete its jobs instead',
      );
    const keysRevoked = this.db.transaction(() => {
      this.need(name);
      const running = (
        statement(this.db, `SELECT COUNT(*) AS n FROM jobs WHERE tenant = ? AND state = 'running'`).get(
          name,
        ) as { n: number }
      ).n;
      if (running > 0)
        throw new UsageError(
          `tenant "${name}" has ${running} running job(s): cancel them (DELETE /v1/jobs/:id) or let them end, then delete it`,
        );
      // Its waiting jobs are not started any more (they are removed below).
      statement(
        this.db,
        `UPDATE jobs SET state = 'cancelled', ended_at = ? WHERE tenant = ? AND state = 'queued'`,
      ).run(new Date().toISOString(), name);
      return statement(
        this.db,
        'UPDATE api_keys SET revoked_at = ? WHERE tenant = ? AND revoked_at IS NULL',
      ).run(new Date().toISOString(), name).changes;
    })();
    // No request of it is taken from here; its keys go before its files, so that a failure
    // between the two leaves files nobody can read, never keys that read files.
    const keysDestroyed = keyring?.file ? keyring.destroyTenant(name) : [];
    const ids = (
      statement(this.db, 'SELECT id FROM jobs WHERE tenant = ?').all(name) as { id: string }[]
    ).map((r) => r.id);
    for (const id of ids) jobs.remove(id);
    statement(this.db, 'DELETE FROM tenants WHERE name = ?').run(name);
    return { keysRevoked, jobsRemoved: ids.length, keysDestroyed };
  }

  /** The quotas that hold for a tenant: its own over the service's. */
  quotasOf(name: string, service: Quotas): Quotas {
    return { ...service, ...(this.get(name)?.quotas ?? {}) };
  }

  /** What a tenant uses of its quotas now: each count read from its own index. */
  usage(name: string, now = Date.now()): TenantUsage {
    const hour = this.lastHour(name, now);
    return {
      activeJobs: this.activeJobs(name),
      jobsLastHour: hour.count,
      storedBytes: this.storedBytes(name),
      ...(hour.oldest ? { oldestInHour: hour.oldest } : {}),
    };
  }

  private activeJobs(name: string): number {
    return (
      statement(
        this.db,
        `SELECT COUNT(*) AS n FROM jobs WHERE tenant = ? AND state IN ('queued', 'running')`,
      ).get(name) as { n: number }
    ).n;
  }

  private lastHour(name: string, now: number): { count: number; oldest: string | null } {
    const since = new Date(now - HOUR_MS).toISOString();
    return statement(
      this.db,
      'SELECT COUNT(*) AS count, MIN(created_at) AS oldest FROM jobs WHERE tenant = ? AND created_at > ?',
    ).get(name, since) as { count: number; oldest: string | null };
  }

  private storedBytes(name: string): number {
    return (
      statement(this.db, 'SELECT COALESCE(SUM(stored_bytes), 0) AS n FROM jobs WHERE tenant = ?').get(
        name,
      ) as {
        n: number;
      }
    ).n;
  }

  /**
   * Refuses a new job of `name` past one of its quotas (NEUROCLUSTER_ERR_QUOTA), with how long to
   * wait where waiting helps; `rows` and `bytes` are the new job's, when known.
   */
  admit(name: string, service: Quotas, job: { rows?: number; bytes?: number } = {}, now = Date.now()): void {
    // Only the quotas set are counted: a service without quotas pays one lookup a submission.
    const q = this.quotasOf(name, service);
    const who = `tenant "${name}"`;
    if (q.maxActiveJobs !== undefined) {
      const active = this.activeJobs(name);
      if (active >= q.maxActiveJobs)
        throw new QuotaError(
          `${who} has ${active} jobs queued or running, its quota (maxActiveJobs ${q.maxActiveJobs}): submit this one when one ends`,
          { retryAfterSeconds: 5 },
        );
    }
    if (q.maxJobsPerHour !== undefined) {
      const hour = this.lastHour(name, now);
      if (hour.count >= q.maxJobsPerHour) {
        const drops = hour.oldest ? Date.parse(hour.oldest) + HOUR_MS - now : HOUR_MS;
        throw new QuotaError(
          `${who} submitted ${hour.count} jobs in the last hour, its quota (maxJobsPerHour ${q.maxJobsPerHour})`,
          { retryAfterSeconds: Math.max(1, Math.ceil(drops / 1000)) },
        );
      }
    }
    if (job.rows !== undefined && q.maxRowsPerJob !== undefined && job.rows > q.maxRowsPerJob)
      throw new QuotaError(
        `the job has ${job.rows} rows, over ${who}'s quota (maxRowsPerJob ${q.maxRowsPerJob}): send fewer`,
      );
    if (q.maxStoredBytes !== undefined) {
      const kept = this.storedBytes(name);
      if (kept >= q.maxStoredBytes || kept + (job.bytes ?? 0) > q.maxStoredBytes)
        throw new QuotaError(
          `${who} keeps ${kept} bytes of jobs' files${job.bytes ? ` and this job brings ${job.bytes}` : ''}, over its quota (maxStoredBytes ${q.maxStoredBytes}): delete finished jobs (DELETE /v1/jobs/:id) to make room`,
        );
    }
  }
}
