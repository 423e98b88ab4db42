/**
 * `npm run bench:fairness [-- --jobs 200 --concurrency 1]`: fair scheduling across tenants, on a
 * real `neurocluster serve` on loopback, on a fresh home removed at the end. Tenant `a` submits
 * `--jobs` iris-sized jobs (150 x 4, `hybrid`); once they run, tenant `b` submits one.
 * Measured: how long b's job waited to start, against how long one of a's jobs runs (the median),
 * and how many of a's jobs started while b's waited. The target: none did (b's job starts when the
 * job running as it came ends: within the time of one job).
 *
 * One JSON object on stdout; exit 1 when a job of a started before b's, or a job failed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiKeys } from '../src/service/api-keys.js';
import { Tenants } from '../src/service/tenants.js';
import { openStore, storeFile } from '../src/store/db.js';
import { irisJob, killAll, quantile, startCli, stopCli } from './processes.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '1' },
  },
});
const JOBS = Number(values.jobs);
const body = irisJob();

interface JobView {
  id: string;
  state: string;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
}

const home = mkdtempSync(join(tmpdir(), 'neurocluster-bench-fairness-'));
try {
  const db = openStore(storeFile(home));
  const keys = new ApiKeys(db);
  new Tenants(db).create('a');
  new Tenants(db).create('b');
  const auth = {
    a: `Bearer ${keys.create('a-key', 'a').key}`,
    b: `Bearer ${keys.create('b-key', 'b').key}`,
  };
  const server = await startCli<{ url: string }>(['serve', '--port', '0'], {
    NEUROCLUSTER_HOME: home,
    NEUROCLUSTER_SERVICE__CONCURRENCY: values.concurrency,
    NEUROCLUSTER_SERVICE__RATE_LIMIT__MAX: '1000000',
  });
  const url = server.line.url;
  const call = async (path: string, authorization: string, init: RequestInit = {}) => {
    const r = await fetch(`${url}${path}`, {
      ...init,
      headers: { authorization, 'content-type': 'application/json' },
    });
    if (!r.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${r.status} ${await r.text()}`);
    return r.json() as Promise<Record<string, unknown>>;
  };
  const submit = async (authorization: string) =>
    (await call('/v1/jobs', authorization, { method: 'POST', body })).id as string;
  const get = async (id: string, authorization: string) =>
    (await call(`/v1/jobs/${id}`, authorization)) as unknown as JobView;

  const a: string[] = [];
  for (let i = 0; i < JOBS; i++) a.push(await submit(auth.a));
  // Once a's jobs run (a few done: the run time is known), b's one comes.
  for (;;) {
    const states = await Promise.all(a.slice(0, 5).map((id) => get(id, auth.a)));
    if (states.every((j) => j.state === 'succeeded')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const one = await submit(auth.b);
  let b: JobView;
  for (;;) {
    b = await get(one, auth.b);
    if (['succeeded', 'failed', 'cancelled'].includes(b.state)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const aJobs = await Promise.all(a.map((id) => get(id, auth.a)));
  await stopCli(server);

  const ms = (iso: string | undefined) => (iso === undefined ? Number.NaN : Date.parse(iso));
  const runs = aJobs
    .filter((j) => j.state === 'succeeded')
    .map((j) => ms(j.endedAt) - ms(j.startedAt))
    .sort((x, y) => x - y);
  const waited = ms(b.startedAt) - ms(b.createdAt);
  const startedWhileWaiting = aJobs.filter(
    (j) =>
      j.startedAt !== undefined && ms(j.startedAt) > ms(b.createdAt) && ms(j.startedAt) < ms(b.startedAt),
  ).length;
  const queuedWhenItCame = aJobs.filter(
    (j) => j.startedAt === undefined || ms(j.startedAt) > ms(b.createdAt),
  ).length;
  const medianRun = quantile(runs, 0.5);
  const result = {
    tenantA: { jobs: JOBS, queuedWhenBCame: queuedWhenItCame, medianRunMs: medianRun },
    tenantB: { state: b.state, waitedMs: waited, waitOverMedianRun: Number((waited / medianRun).toFixed(2)) },
    aJobsStartedWhileBWaited: startedWhileWaiting,
    targets: { bStartsNext: startedWhileWaiting === 0, bSucceeded: b.state === 'succeeded' },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (!Object.values(result.targets).every(Boolean)) process.exitCode = 1;
} finally {
  await killAll();
  rmSync(home, { recursive: true, force: true });
}
