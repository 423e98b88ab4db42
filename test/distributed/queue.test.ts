import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { keyringFile } from '../../src/config/home.js';
import { configSchema } from '../../src/config/schema.js';
import { queueUrl, readTask, redacted } from '../../src/distributed/queue.js';
import { ApiKeys } from '../../src/service/api-keys.js';
import type { Job } from '../../src/service/jobs.js';
import { Tenants } from '../../src/service/tenants.js';
import { openStore, storeFile } from '../../src/store/db.js';
import { runCli, tempDir } from '../helpers.js';
import { type Harness, KMEANS, ROWS, settled, start, stop } from '../service/harness.js';
import { type RedisServer, redisAvailable, redisRequired, startRedis } from './redis.js';
import { killAll, labelsOf, startWorker, submit, until, type WorkerProcess } from './workers.js';

describe('the queue URL', () => {
  it('takes redis:// and rediss:// only, and never shows a password', () => {
    expect(queueUrl(undefined)).toBeUndefined();
    expect(queueUrl(' ')).toBeUndefined();
    expect(queueUrl('redis://h:6379')).toBe('redis://h:6379');
    expect(queueUrl('rediss://u:pw@h:6380/2')).toBe('rediss://u:pw@h:6380/2');
    expect(() => queueUrl('http://u:secret@h')).toThrow(/is not redis:\/\/ or rediss:\/\/ \(TLS\)/);
    expect(() => queueUrl('http://u:secret@h')).not.toThrow(/secret/);
    expect(() => queueUrl('not a url')).toThrow(/is not a URL/);
    expect(redacted('redis://u:secret@h:1/0')).toBe('redis://u:***@h:1/0');
    expect(redacted('redis://h:1/0?password=secret&db=2')).toBe('redis://h:1/0?password=***&db=2');
  });
});

describe('a task, as a worker reads it', () => {
  const dir = '/var/lib/neurocluster/service/jobs/3b241101-e2bb-4255-8caf-4136c566a962';
  const task = {
    id: '3b241101-e2bb-4255-8caf-4136c566a962',
    input: `${dir}/input.json`,
    dir,
    config: configSchema.parse({}),
    correlationId: 'c-1',
    tenant: 'default',
  };

  it("is taken when it is this version's, and refused with what is wrong otherwise", () => {
    expect(readTask(task)).toEqual(task);
    expect(() => readTask({ ...task, dir: '/elsewhere' })).toThrow(/is not the directory of job/);
    expect(() => readTask({ ...task, input: 'relative.csv' })).toThrow(/input: not an absolute path/);
    expect(() => readTask({ ...task, config: { ...task.config, newSection: {} } })).toThrow(
      /configuration is not this version's/,
    );
    expect(() => readTask({ ...task, extra: 1 })).toThrow(/not one this worker runs/);
    expect(readTask({ ...task, maxRows: 1000 })).toEqual({ ...task, maxRows: 1000 });
    // A private job's task without the service's charge is never run (never charged to the worker's ledger).
    const privateConfig = { ...task.config, privacy: { ...task.config.privacy, epsilon: 1 } };
    expect(() => readTask({ ...task, config: privateConfig })).toThrow(/carries no charge/);
    const { tenant: _tenant, ...withoutTenant } = task;
    expect(() => readTask(withoutTenant)).toThrow(/not one this worker runs/);
  });
});

describe('a start without its Redis', () => {
  it('fails with NEUROCLUSTER_ERR_IO and exits, for the worker and the service alike, naming no password', () => {
    // Port 1 on loopback: nothing listens there.
    for (const args of [
      ['worker', '--queue', 'redis://:hunter2@127.0.0.1:1'],
      ['serve', '--port', '0', '--queue', 'redis://:hunter2@127.0.0.1:1'],
    ]) {
      const started = Date.now();
      const r = runCli(args, { home: tempDir(), env: { NEUROCLUSTER_DISTRIBUTED__CONNECT_TIMEOUT: '3s' } });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/NEUROCLUSTER_ERR_IO: the queue's Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 /);
      expect(r.stderr).not.toContain('hunter2');
      expect(Date.now() - started).toBeLessThan(15_000);
    }
  }, 40_000);
});

if (redisRequired) it('redis-server is installed (REQUIRE_REDIS=1)', () => expect(redisAvailable).toBe(true));

/** Four blobs of rows, long enough (hybrid on the plain backend, 4,000 x 8) to be caught running. */
function slowCsv(path: string): void {
  let text = 'a,b,c,d,e,f,g,h\n';
  let x = 12345;
  const next = () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
  for (let i = 0; i < 4000; i++)
    text += `${Array.from({ length: 8 }, (_, j) => ((i % 4) * 2 + (j % 3) + next()).toFixed(4)).join(',')}\n`;
  writeFileSync(path, text);
}
const SLOW_OPTIONS = { kmeans: { nClusters: 4 }, engine: { method: 'hybrid', backend: 'js', seed: 5 } };

describe.skipIf(!redisAvailable)('jobs on a queue, run by `neurocluster worker` processes', () => {
  let redis: RedisServer;
  let h: Harness | undefined;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    await killAll(workers);
    if (h) await stop(h);
    h = undefined;
    // A fresh queue for the next test.
    await withQueue((queue) => queue.obliterate({ force: true }));
  });
  afterAll(async () => {
    await redis?.stop();
  });

  const worker = (home: string) => startWorker(redis.url, home, workers);

  /** `work` with a BullMQ handle on the tests' queue (to look at tasks as Redis has them), closed after. */
  async function withQueue<T>(work: (queue: Queue) => Promise<T>): Promise<T> {
    const queue = new Queue('neurocluster', { connection: { url: redis.url } });
    try {
      return await work(queue);
    } finally {
      await queue.close();
    }
  }

  /** The body of a slow job, by the path of its file in the data roots (written once). */
  function slowJob(harness: Harness) {
    const path = join(harness.data, 'blobs.csv');
    if (!existsSync(path)) slowCsv(path);
    return { source: { path }, options: SLOW_OPTIONS };
  }

  /** A slow job submitted, once a worker runs it. */
  async function runningSlowJob(harness: Harness): Promise<string> {
    const id = await submit(harness, slowJob(harness));
    await until(() => harness.service.jobs.get(id).state === 'running', 20_000, 'the job to start');
    return id;
  }

  it("runs a job on a worker process: the same labels as the service's own pool, progress and metrics", async () => {
    const pool = await start();
    const reference = await settled(pool, await submit(pool, { data: ROWS, options: KMEANS }));
    const expected = await labelsOf(pool, reference.id);
    await stop(pool);

    h = await start({}, true, redis.url);
    const w = await worker(h.home);
    const id = await submit(h, { data: ROWS, options: KMEANS });
    const job = await settled(h, id);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(job.progress).toEqual({ phase: 'done', done: ROWS.length, total: ROWS.length });
    expect(job.summary).toMatchObject({ rows: ROWS.length, k: 2 });
    expect(await labelsOf(h, id)).toBe(expected);
    // The worker logged the task under the job's correlation ID.
    expect(w.stderr()).toContain(job.correlationId);
    const metrics = (await h.service.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/^neurocluster_distributed_workers 1$/m);
    expect(metrics).toMatch(/^neurocluster_distributed_tasks\{state="waiting"\} 0$/m);
    // The dashboard's status names the queue's worker.
    const status = (await h.service.app.inject({ url: '/v1/status', headers: h.auth })).json();
    expect(status.workers).toEqual({
      where: 'queue',
      count: 1,
      busy: 0,
      list: [{ addr: expect.stringMatching(/^127\.0\.0\.1:\d+$/), ageSeconds: expect.any(Number) }],
    });
    // The task is gone from Redis once the store has the outcome.
    await withQueue((queue) =>
      until(async () => (await queue.getJob(id)) === undefined, 5000, 'the task to be removed'),
    );
  }, 60_000);

  it('a worker killed with SIGKILL mid-job: another takes the task, and the labels are the same', async () => {
    h = await start({}, true, redis.url);
    // The reference: the same job on one worker, undisturbed.
    const first = await worker(h.home);
    const reference = await settled(h, await submit(h, slowJob(h)), 60_000);
    expect(reference.state, JSON.stringify(reference.error)).toBe('succeeded');
    const expected = await labelsOf(h, reference.id);

    const second = await worker(h.home);
    const id = await runningSlowJob(h);
    const holder = [first, second].find((w) => w.stderr().includes(`"job":"${id}"`))!;
    expect(holder).toBeDefined();
    holder.child.kill('SIGKILL');
    await holder.exited;
    const job: Job = await settled(h, id, 90_000);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(await labelsOf(h, id)).toBe(expected);
    const metrics = (await h.service.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/^neurocluster_distributed_stalled_tasks_total [1-9]/m);
    expect(metrics).toMatch(/^neurocluster_distributed_task_retries_total [1-9]/m);
  }, 150_000);

  it('Redis stopped and started again mid-job (append-only file on): the job still succeeds', async () => {
    h = await start({}, true, redis.url);
    await worker(h.home);
    const id = await runningSlowJob(h);
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1000));
    await redis.restart();
    const job = await settled(h, id, 90_000);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect((await labelsOf(h, id)).trim().split('\n')).toHaveLength(4001);
  }, 120_000);

  it('runs a differentially private job: the service charges its own ledger once, before the task, and the worker none', async () => {
    h = await start({}, true, redis.url);
    // The worker on a home of its own (its own ledger), with the service's keyring.
    const own = tempDir();
    await startWorker(redis.url, own, workers, {
      env: { NEUROCLUSTER_KEYRING: keyringFile({ NEUROCLUSTER_HOME: h.home }) },
    });
    // Two blobs of 20 rows inside the public bounds; epsilon 6 of the default budget of 10.
    const rows = Array.from({ length: 40 }, (_, i) =>
      i < 20 ? [1 + (i % 5) / 10, 2] : [8, 8 + (i % 5) / 10],
    );
    const options = {
      kmeans: { nClusters: 2 },
      engine: { method: 'kmeans', seed: 1 },
      privacy: { epsilon: 6, bounds: '0:10' },
    };
    const id = await submit(h, { data: rows, options });
    const job = await settled(h, id, 60_000);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect((job.summary as { privacy: { spent: number } }).privacy.spent).toBeCloseTo(6, 6);
    const budgets = async () =>
      (await h!.service.app.inject({ url: '/v1/status', headers: h!.auth })).json().budgets as {
        spent: number;
      }[];
    expect((await budgets()).map((b) => b.spent)).toEqual([expect.closeTo(6, 6)]);
    const charges = (home: string) =>
      (openStore(storeFile(home)).prepare('SELECT COUNT(*) AS n FROM privacy_charges').get() as { n: number })
        .n;
    expect(charges(own)).toBe(0);
    expect(charges(h.home)).toBe(1);
    // The same data again: past the budget, refused by the service; no worker runs it.
    const again = await settled(h, await submit(h, { data: rows, options }), 60_000);
    expect(again.state).toBe('failed');
    expect(again.error?.code).toBe('NEUROCLUSTER_ERR_PRIVACY_BUDGET');
    expect((await budgets()).map((b) => b.spent)).toEqual([expect.closeTo(6, 6)]);
    expect(charges(own)).toBe(0);
  });

  it('tenants take turns on the queue: a task is ranked by its job’s place in its tenant’s line', async () => {
    h = await start({}, true, redis.url);
    const harness = h;
    const db = openStore(storeFile(h.home));
    new Tenants(db).create('team-b');
    const b = { ...h, auth: { authorization: `Bearer ${new ApiKeys(db).create('b', 'team-b').key}` } };
    const a: string[] = [];
    for (let i = 0; i < 5; i++) a.push(await submit(h, { data: ROWS, options: KMEANS }));
    const one = await submit(b, { data: ROWS, options: KMEANS });
    const priorities = await withQueue(async (queue) => {
      const tasks = async () => Promise.all([...a, one].map((id) => queue.getJob(id)));
      await until(async () => (await tasks()).every(Boolean), 5000, 'the tasks');
      return (await tasks()).map((task) => task!.opts.priority);
    });
    expect(priorities).toEqual([1, 2, 3, 4, 5, 1]);
    // One worker, one task at a time: team-b's job runs before the second of the first tenant's.
    await worker(h.home);
    for (const id of [...a, one]) {
      const job = await settled(harness, id, 60_000);
      expect(job.state, `job ${id}: ${JSON.stringify(job.error)}`).toBe('succeeded');
    }
    const started = (id: string) => harness.service.jobs.get(id).startedAt!;
    expect(started(one) < started(a[1]!)).toBe(true);
  }, 90_000);

  it('a cancelled job that no worker took is taken off the queue', async () => {
    h = await start({}, true, redis.url);
    const harness = h;
    const id = await submit(h, { data: ROWS, options: KMEANS });
    await withQueue(async (queue) => {
      await until(async () => (await queue.getJob(id)) !== undefined, 5000, 'the task');
      const r = await harness.service.app.inject({
        method: 'DELETE',
        url: `/v1/jobs/${id}`,
        headers: harness.auth,
      });
      expect(r.statusCode).toBe(202);
      expect(harness.service.jobs.get(id).state).toBe('cancelled');
      await until(async () => (await queue.getJob(id)) === undefined, 5000, 'the task to leave the queue');
    });
  }, 30_000);

  it('a running job cancelled: its worker stops it, the job is cancelled and can then be deleted', async () => {
    h = await start({}, true, redis.url);
    const harness = h;
    const w = await worker(h.home);
    const id = await runningSlowJob(h);
    const r = await h.service.app.inject({ method: 'DELETE', url: `/v1/jobs/${id}`, headers: h.auth });
    expect(r.statusCode).toBe(202);
    expect(h.service.jobs.get(id).state).toBe('cancelled');
    await until(() => w.stderr().includes('task cancelled by its caller'), 10_000, 'the worker to stop it');
    await until(() => !harness.service.runner.holds(id), 10_000, 'the task to end');
    const deleted = await h.service.app.inject({ method: 'DELETE', url: `/v1/jobs/${id}`, headers: h.auth });
    expect(deleted.statusCode).toBe(204);
  }, 60_000);

  it('a task Redis lost is put on the queue again by the sweep, and the job succeeds', async () => {
    h = await start({}, true, redis.url);
    const id = await submit(h, { data: ROWS, options: KMEANS });
    await withQueue(async (queue) => {
      await until(async () => (await queue.getJob(id)) !== undefined, 5000, 'the task');
      // As if Redis had lost it (a crash between fsyncs, a failover).
      await (await queue.getJob(id))!.remove();
    });
    await worker(h.home);
    const job = await settled(h, id);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
  }, 30_000);

  it('a job that finished while the service was down is read from the queue at its next start', async () => {
    const first = await start({}, true, redis.url);
    const id = await submit(first, { data: ROWS, options: KMEANS });
    await withQueue(async (queue) => {
      await until(async () => (await queue.getJob(id)) !== undefined, 5000, 'the task');
      await stop(first);
      expect(first.service.jobs.get(id).state).toBe('queued');
      await worker(first.home);
      await until(
        async () => (await queue.getJob(id))?.finishedOn !== undefined,
        30_000,
        'the task to finish',
      );
    });
    // The next start, on the same home: the store learns the outcome from the queue.
    h = await start({}, true, redis.url, first.home);
    const job = await settled(h, id);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect((await labelsOf(h, id)).split('\n').length).toBeGreaterThan(ROWS.length);
  }, 60_000);
});
