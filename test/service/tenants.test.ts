/**
 * Tenants in the service: each tenant's quotas (the service's, its own over them) refuse a job past
 * one with 429 NEUROCLUSTER_ERR_QUOTA, with Retry-After where waiting helps, and never touch
 * another tenant; jobs start fairly across tenants, in the store and on a running service.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decryptBuffer, wrappedWith } from '../../src/security/envelope.js';
import { Keyring } from '../../src/security/keyring.js';
import { ApiKeys } from '../../src/service/api-keys.js';
import { JobStore } from '../../src/service/jobs.js';
import { Tenants } from '../../src/service/tenants.js';
import { openStore, storeFile } from '../../src/store/db.js';
import { tempDir } from '../helpers.js';
import { type Harness, KMEANS, ROWS, settled, start, stop } from './harness.js';

/** The keyring of the harness's home, as the CLI opens it. */
const keyringOf = (h: Harness) => Keyring.open({ env: { NEUROCLUSTER_HOME: h.home }, warn: () => {} });

/** A second tenant on the harness's home (with a key of its own in the keyring), and an API key. */
function otherTenant(h: Harness, name = 'team-b'): { authorization: string } {
  const db = openStore(storeFile(h.home));
  new Tenants(db).create(name, keyringOf(h));
  return { authorization: `Bearer ${new ApiKeys(db).create(`${name}-key`, name).key}` };
}

const submit = (h: Harness, headers: { authorization: string }, data: unknown = ROWS) =>
  h.service.app.inject({ method: 'POST', url: '/v1/jobs', headers, payload: { data, options: KMEANS } });

describe('tenant quotas', () => {
  it('refuse active jobs past maxActiveJobs with 429 and Retry-After, for that tenant only, and a tenant’s own quota wins', async () => {
    const h = await start({ service: { quotas: { maxActiveJobs: 2 } } }, false);
    try {
      const b = otherTenant(h);
      for (let i = 0; i < 2; i++) expect((await submit(h, h.auth)).statusCode).toBe(202);
      const third = await submit(h, h.auth);
      expect(third.statusCode).toBe(429);
      expect(third.headers['retry-after']).toBe('5');
      expect(third.json().error).toMatchObject({ code: 'NEUROCLUSTER_ERR_QUOTA' });
      expect(third.json().error.message).toMatch(
        /tenant "default" has 2 jobs queued or running.*maxActiveJobs 2/,
      );
      // Nothing of the refused job stays: two jobs, two directories.
      expect(h.service.jobs.list({ limit: 10 }).jobs).toHaveLength(2);
      // Another tenant has its own count.
      expect((await submit(h, b)).statusCode).toBe(202);
      // Its own quota over the service's.
      new Tenants(openStore(storeFile(h.home))).set('default', { maxActiveJobs: 3 });
      expect((await submit(h, h.auth)).statusCode).toBe(202);
      expect((await submit(h, h.auth)).statusCode).toBe(429);
    } finally {
      await stop(h);
    }
  });

  it('refuse too many rows (no Retry-After: waiting does not help), too many jobs in an hour, and stored bytes past the quota', async () => {
    const h = await start({ service: { quotas: { maxRowsPerJob: 8, maxJobsPerHour: 2 } } }, false);
    try {
      const rows = await submit(h, h.auth, [...ROWS, [5, 5]]);
      expect(rows.statusCode).toBe(429);
      expect(rows.headers['retry-after']).toBeUndefined();
      expect(rows.json().error.message).toMatch(
        /the job has 9 rows, over tenant "default"'s quota \(maxRowsPerJob 8\)/,
      );
      expect((await submit(h, h.auth)).statusCode).toBe(202);
      expect((await submit(h, h.auth)).statusCode).toBe(202);
      const hour = await submit(h, h.auth);
      expect(hour.statusCode).toBe(429);
      expect(hour.json().error.message).toMatch(/submitted 2 jobs in the last hour/);
      // The hour's count drops when the oldest job turns one hour old: about an hour from now.
      expect(Number(hour.headers['retry-after'])).toBeGreaterThan(3500);
      expect(Number(hour.headers['retry-after'])).toBeLessThanOrEqual(3600);

      const tenants = new Tenants(openStore(storeFile(h.home)));
      const stored = tenants.usage('default').storedBytes;
      expect(stored).toBeGreaterThan(0);
      tenants.set('default', { maxJobsPerHour: 100, maxStoredBytes: stored + 10 });
      const bytes = await submit(h, h.auth);
      expect(bytes.statusCode).toBe(429);
      expect(bytes.json().error.message).toMatch(
        /over its quota \(maxStoredBytes \d+\): delete finished jobs/,
      );
      tenants.set('default', { maxStoredBytes: null });
      expect((await submit(h, h.auth)).statusCode).toBe(202);
    } finally {
      await stop(h);
    }
  });

  it('stop a job whose file has more rows than maxRowsPerJob as it reads them (NEUROCLUSTER_ERR_QUOTA)', async () => {
    const h = await start({ service: { quotas: { maxRowsPerJob: 8 } } });
    try {
      const file = join(h.data, 'nine.csv');
      writeFileSync(file, `x,y\n${[...ROWS, [5, 5]].map((r) => r.join(',')).join('\n')}\n`);
      const r = await h.service.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: h.auth,
        payload: { source: { path: file }, options: KMEANS },
      });
      expect(r.statusCode, r.body).toBe(202);
      const job = await settled(h, r.json().id);
      expect(job.state).toBe('failed');
      expect(job.error).toEqual({
        code: 'NEUROCLUSTER_ERR_QUOTA',
        message: expect.stringMatching(
          /the data has 9 rows, over tenant "default"'s quota \(maxRowsPerJob 8\)/,
        ),
      });
      // Eight rows are within it.
      writeFileSync(file, `x,y\n${ROWS.map((row) => row.join(',')).join('\n')}\n`);
      const ok = await h.service.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: h.auth,
        payload: { source: { path: file }, options: KMEANS },
      });
      expect((await settled(h, ok.json().id)).state).toBe('succeeded');
    } finally {
      await stop(h);
    }
  });

  it('count a job’s results in its stored bytes once it ends', async () => {
    const h = await start();
    try {
      const id = (await submit(h, h.auth)).json().id;
      const upload = new Tenants(openStore(storeFile(h.home))).usage('default').storedBytes;
      expect((await settled(h, id)).state).toBe('succeeded');
      // The result, labels, plot and model join the upload.
      expect(new Tenants(openStore(storeFile(h.home))).usage('default').storedBytes).toBeGreaterThan(upload);
    } finally {
      await stop(h);
    }
  });
});

describe('tenant keys', () => {
  it('wrap a tenant’s stored files with its own key; deleting the tenant destroys it, and a copy made before cannot be read', async () => {
    const h = await start();
    try {
      const b = otherTenant(h);
      const own = keyringOf(h).tenantKeyId('team-b');
      expect(own).toBeDefined();
      const id = (await submit(h, b)).json().id;
      expect((await settled(h, id)).state).toBe('succeeded');
      const dir = h.service.jobs.dir(id);
      const stored = readdirSync(dir).sort();
      expect(stored).toEqual(['input.json', 'labels.csv', 'model.json', 'plot.svg', 'result.json']);
      for (const file of stored) expect(wrappedWith(readFileSync(join(dir, file))), file).toBe(own);
      // The default tenant's files keep the current key.
      const mine = (await submit(h, h.auth)).json().id;
      expect((await settled(h, mine)).state).toBe('succeeded');
      expect(wrappedWith(readFileSync(join(h.service.jobs.dir(mine), 'result.json')))).toBe(
        keyringOf(h).current().id,
      );

      // A backup of the result, then the tenant deleted.
      const backup = readFileSync(join(dir, 'result.json'));
      expect(JSON.parse(decryptBuffer(backup, keyringOf(h)).toString()).k).toBe(2);
      const db = openStore(storeFile(h.home));
      const removed = new Tenants(db).delete('team-b', h.service.jobs, keyringOf(h));
      expect(removed).toEqual({ keysRevoked: 1, jobsRemoved: 1, keysDestroyed: [own] });
      expect(existsSync(dir)).toBe(false);
      expect(
        keyringOf(h)
          .list()
          .some((k) => k.tenant === 'team-b'),
      ).toBe(false);
      expect(() => decryptBuffer(backup, keyringOf(h))).toThrow(/is not in the keyring/);
      // Its key answers 403 now; the other tenant's jobs are untouched.
      expect((await submit(h, b)).statusCode).toBe(403);
      expect(h.service.jobs.get(mine).state).toBe('succeeded');
    } finally {
      await stop(h);
    }
  });
});

describe('tenant metrics', () => {
  const series = async (h: Harness) =>
    (await h.service.app.inject({ url: '/metrics' })).body
      .split('\n')
      .filter((line) => line.startsWith('neurocluster_service_tenant_jobs{'));

  it('label jobs by tenant only where metrics.tenantLabels allows it, the busiest named and the rest as other', async () => {
    const off = await start({}, false);
    try {
      await submit(off, off.auth);
      expect(await series(off)).toEqual([]);
    } finally {
      await stop(off);
    }
    const h = await start({ metrics: { tenantLabels: true, maxTenantLabels: 1 } }, false);
    try {
      const b = otherTenant(h);
      const c = otherTenant(h, 'team-c');
      for (let i = 0; i < 3; i++) await submit(h, h.auth);
      await submit(h, b);
      await submit(h, c);
      const lines = await series(h);
      expect(lines).toContain('neurocluster_service_tenant_jobs{tenant="default",state="queued"} 3');
      expect(lines).toContain('neurocluster_service_tenant_jobs{tenant="other",state="queued"} 2');
      expect(lines.some((l) => l.includes('team-b') || l.includes('team-c'))).toBe(false);
    } finally {
      await stop(h);
    }
  });
});

describe('tenant privacy budgets', () => {
  it('are each tenant’s own: the same data from two tenants is charged to two budgets, each shown only its own', async () => {
    const h = await start();
    try {
      const b = otherTenant(h);
      // Two blobs of 20 rows, inside the public bounds.
      const rows = Array.from({ length: 40 }, (_, i) =>
        i < 20 ? [1 + (i % 5) / 10, 2] : [8, 8 + (i % 5) / 10],
      );
      const options = {
        kmeans: { nClusters: 2 },
        engine: { method: 'kmeans', seed: 1 },
        privacy: { epsilon: 1, bounds: '0:10' },
      };
      for (const auth of [h.auth, b]) {
        const r = await h.service.app.inject({
          method: 'POST',
          url: '/v1/jobs',
          headers: auth,
          payload: { data: rows, options },
        });
        expect(r.statusCode, r.body).toBe(202);
        expect((await settled(h, r.json().id)).state).toBe('succeeded');
      }
      const budgets = async (auth: { authorization: string }) =>
        (await h.service.app.inject({ url: '/v1/status', headers: auth })).json().budgets as {
          dataset: string;
          spent: number;
        }[];
      const [mine, theirs] = [await budgets(h.auth), await budgets(b)];
      expect(mine).toHaveLength(1);
      expect(theirs).toHaveLength(1);
      // One content hash, two budgets: each spent once.
      expect(mine[0]!.dataset).toMatch(/^sha256:/);
      expect(theirs[0]!.dataset).toBe(mine[0]!.dataset);
      expect(mine[0]!.spent).toBeCloseTo(1, 6);
      expect(theirs[0]!.spent).toBeCloseTo(1, 6);
      // A job may not name another namespace.
      const sneaky = await h.service.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: b,
        payload: {
          data: rows,
          options: { ...options, privacy: { ...options.privacy, namespace: 'tenant:default' } },
        },
      });
      expect(sneaky.statusCode).toBe(422);
      expect(sneaky.json().error.message).toMatch(/privacy\.namespace/);
    } finally {
      await stop(h);
    }
  });
});

describe('fair scheduling', () => {
  it('takes turns across tenants in the store: one tenant’s 200 queued jobs do not hold another’s one back', async () => {
    const home = tempDir();
    const db = openStore(storeFile(home));
    new Tenants(db).create('a');
    new Tenants(db).create('b');
    const jobs = new JobStore(db, join(home, 'jobs'));
    const accept = async (tenant: string) => {
      const id = randomUUID();
      return jobs.accept(id, { kind: 'upload', file: 'input.json' }, {}, { name: tenant, tenant }, id).id;
    };
    const a: string[] = [];
    for (let i = 0; i < 200; i++) a.push(await accept('a'));
    expect(jobs.claim()?.id).toBe(a[0]);
    const b = await accept('b');
    // a's first still runs: b has none running, so its one job is next, then a's line goes on.
    expect(jobs.claim()?.id).toBe(b);
    expect(jobs.claim()?.id).toBe(a[1]);
    // With none running, the tenant served longest ago goes first.
    for (const job of jobs.list({ state: 'running', limit: 10 }).jobs) jobs.finish(job.id, 'succeeded');
    const b2 = await accept('b');
    expect(jobs.claim()?.id).toBe(b2);
    expect(jobs.claim()?.id).toBe(a[2]);
  });

  it('starts a tenant’s one job within the time of one job while another has 200 queued, on a running service', async () => {
    const h = await start({ service: { concurrency: 1 } }, false);
    try {
      const b = otherTenant(h);
      const a: string[] = [];
      for (let i = 0; i < 200; i++) a.push((await submit(h, h.auth)).json().id);
      await h.service.runner.start();
      const one = (await submit(h, b)).json().id;
      const job = await settled(h, one, 30_000);
      expect(job.state).toBe('succeeded');
      // Started before all but the jobs of a that had started when it came: at most one (one slot).
      const startedBefore = a
        .map((id) => h.service.jobs.get(id))
        .filter((j) => j.startedAt !== undefined && j.startedAt < job.startedAt!);
      const startedWhenSubmitted = startedBefore.filter((j) => j.startedAt! <= job.createdAt);
      expect(startedBefore.length - startedWhenSubmitted.length).toBeLessThanOrEqual(1);
      expect(startedBefore.length).toBeLessThan(200);
    } finally {
      await stop(h);
    }
  });
});
