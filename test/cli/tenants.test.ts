/**
 * `neurocluster tenants`: made, listed with their quotas and usage, their quotas set and dropped,
 * and deleted: keys revoked, jobs and their files removed, audited; `default` is not deleted, and a
 * tenant with a running job is not either.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { chargeRelease } from '../../src/security/privacy/api.js';
import { ApiKeys } from '../../src/service/api-keys.js';
import { JobStore } from '../../src/service/jobs.js';
import { openStore, storeFile } from '../../src/store/db.js';
import { runCli, tempDir } from '../helpers.js';

const json = (args: string[], home: string) => {
  const r = runCli([...args, '--json'], { home });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
};

describe('neurocluster tenants', () => {
  it('creates, lists, sets quotas, and deletes a tenant with its keys and jobs, audited', async () => {
    const home = tempDir();
    const made = json(['tenants', 'create', 'team-a'], home);
    expect(made).toMatchObject({ name: 'team-a', quotas: {}, keyId: expect.stringMatching(/^k\d{8}-/) });
    const tenantKeys = () =>
      json(['keys', 'list'], home).keys.filter((k: { tenant?: string }) => k.tenant === 'team-a');
    expect(tenantKeys()).toEqual([expect.objectContaining({ id: made.keyId, current: true })]);
    expect(runCli(['tenants', 'create', 'team-a'], { home }).stderr).toMatch(
      /a tenant named "team-a" exists/,
    );
    expect(runCli(['tenants', 'create', 'no/slash'], { home }).stderr).toMatch(/is not a tenant name/);

    const set = json(
      ['tenants', 'set', 'team-a', '--max-active-jobs', '3', '--max-stored-bytes', '1000'],
      home,
    );
    expect(set.quotas).toEqual({ maxActiveJobs: 3, maxStoredBytes: 1000 });
    expect(json(['tenants', 'set', 'team-a', '--max-stored-bytes', 'none'], home).quotas).toEqual({
      maxActiveJobs: 3,
    });
    expect(runCli(['tenants', 'set', 'team-a', '--max-active-jobs', '-1'], { home }).code).toBe(2);
    expect(runCli(['tenants', 'set', 'nobody', '--max-active-jobs', '1'], { home }).stderr).toMatch(
      /no tenant is named "nobody"/,
    );

    // A key and two jobs of the tenant, one with a stored file.
    const db = openStore(storeFile(home));
    const key = new ApiKeys(db).create('etl', 'team-a');
    const jobs = new JobStore(db, join(home, 'service', 'jobs'));
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const id = randomUUID();
      mkdirSync(jobs.dir(id), { recursive: true });
      writeFileSync(join(jobs.dir(id), 'input.json'), '[[1,2]]');
      jobs.accept(
        id,
        { kind: 'upload', file: 'input.json' },
        {},
        { name: 'etl', tenant: 'team-a' },
        `c${i}`,
        7,
      );
      ids.push(id);
    }
    const listed = json(['tenants', 'list'], home).tenants;
    expect(listed.map((t: { name: string }) => t.name)).toEqual(['default', 'team-a']);
    expect(listed[1].usage).toMatchObject({ activeJobs: 2, jobsLastHour: 2, storedBytes: 14 });

    // Its own key rotated (an unknown tenant's refused).
    expect(runCli(['keys', 'rotate', '--tenant', 'nobody'], { home }).stderr).toMatch(
      /no tenant is named "nobody"/,
    );
    const rotated = json(['keys', 'rotate', '--tenant', 'team-a'], home);
    expect(rotated).toMatchObject({ tenant: 'team-a', from: made.keyId, to: expect.stringMatching(/^k/) });
    expect(tenantKeys().map((k: { id: string; current: boolean }) => [k.id, k.current])).toEqual([
      [made.keyId, false],
      [rotated.to, true],
    ]);

    // Not while one of its jobs runs.
    jobs.claim();
    const busy = runCli(['tenants', 'delete', 'team-a'], { home });
    expect(busy.code).toBe(2);
    expect(busy.stderr).toMatch(/tenant "team-a" has 1 running job/);
    jobs.finish(jobs.list({ state: 'running', limit: 1 }).jobs[0]!.id, 'succeeded');

    expect(json(['tenants', 'delete', 'team-a'], home)).toEqual({
      name: 'team-a',
      keysRevoked: 1,
      jobsRemoved: 2,
      keysDestroyed: [made.keyId, rotated.to],
    });
    expect(tenantKeys()).toEqual([]);
    for (const id of ids) expect(existsSync(jobs.dir(id))).toBe(false);
    expect(jobs.list({ tenant: 'team-a', limit: 10 }).jobs).toEqual([]);
    expect(() => new ApiKeys(db).verify(`Bearer ${key.key}`)).toThrow(/was revoked/);
    expect(json(['tenants', 'list'], home).tenants.map((t: { name: string }) => t.name)).toEqual(['default']);
    expect(runCli(['tenants', 'delete', 'default'], { home }).stderr).toMatch(
      /the default tenant is not deleted/,
    );

    expect(runCli(['audit', 'verify'], { home }).code).toBe(0);
    const actions = readFileSync(join(home, 'audit', 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map(
        (line) => JSON.parse(line) as { action: string; resource: string; details: Record<string, unknown> },
      )
      .filter((r) => r.action.startsWith('tenant.'));
    expect(actions.map((r) => [r.action, r.resource])).toEqual([
      ['tenant.create', 'team-a'],
      ['tenant.set', 'team-a'],
      ['tenant.set', 'team-a'],
      ['tenant.delete', 'team-a'],
    ]);
    expect(actions[0]!.details).toMatchObject({ tenant: 'team-a', keyId: made.keyId });
    expect(actions.at(-1)!.details).toMatchObject({
      tenant: 'team-a',
      keysRevoked: 1,
      jobsRemoved: 2,
      keysDestroyed: [made.keyId, rotated.to],
    });
  });
  it('privacy status --tenant shows a tenant’s budgets by its own dataset names, and no other’s', () => {
    const home = tempDir();
    const runtime = createRuntime({ env: { ...process.env, NEUROCLUSTER_HOME: home } });
    const accountant = runtime.privacyAccountant(resolveConfig({}));
    chargeRelease(accountant, 'tenant:team-a/payroll', 0.5, undefined, 'test');
    chargeRelease(accountant, 'tenant:team-b/payroll', 2, undefined, 'test');
    const mine = json(['privacy', 'status', '--tenant', 'team-a'], home).datasets;
    expect(mine).toEqual([expect.objectContaining({ dataset: 'payroll', spent: 0.5 })]);
    expect(json(['privacy', 'status', '--tenant', 'team-a', '--dataset', 'payroll'], home)).toMatchObject({
      dataset: 'payroll',
      spent: 0.5,
    });
    // Without --tenant, the operator sees every budget by its full name.
    expect(
      json(['privacy', 'status'], home)
        .datasets.map((d: { dataset: string }) => d.dataset)
        .sort(),
    ).toEqual(['tenant:team-a/payroll', 'tenant:team-b/payroll']);
  });
});
