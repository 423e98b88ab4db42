/**
 * The service's API in process (fastify's inject, no socket): API keys, jobs from rows and from a
 * path inside the data roots, their results and labels (the same labels as the library gives),
 * paging, cancelling and deleting, errors as `{ error: { code, message, correlationId } }` with the
 * status of their code, the probes and the metrics.
 */
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { createLogger } from '../../src/observability/logger.js';
import { AuditLog } from '../../src/security/audit.js';
import { EncryptedFileRegistry } from '../../src/security/encrypted-files.js';
import { isEncrypted } from '../../src/security/envelope.js';
import { ApiKeys } from '../../src/service/api-keys.js';
import { JobStore } from '../../src/service/jobs.js';
import { Tenants } from '../../src/service/tenants.js';
import { openStore, storeFile } from '../../src/store/db.js';
import { ROOT, tempDir } from '../helpers.js';
import { type Harness, KMEANS, ROWS, settled, start, stop } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await start();
});
afterAll(async () => {
  await stop(h);
});

describe('the service API', () => {
  it('refuses /v1 without a key (401), with a bad one (401) and a revoked one (403)', async () => {
    const none = await h.service.app.inject({ method: 'GET', url: '/v1/jobs' });
    expect(none.statusCode).toBe(401);
    expect(none.json().error).toMatchObject({
      code: 'NEUROCLUSTER_ERR_UNAUTHORIZED',
      correlationId: none.headers['x-correlation-id'],
    });
    const bad = await h.service.app.inject({
      method: 'GET',
      url: '/v1/jobs',
      headers: { authorization: `${h.auth.authorization.slice(0, -2)}xx` },
    });
    expect(bad.statusCode).toBe(401);
    const keys = new ApiKeys(openStore(storeFile(h.home)));
    const { key } = keys.create('short-lived');
    const ok = await h.service.app.inject({
      method: 'GET',
      url: '/v1/jobs',
      headers: { authorization: `Bearer ${key}` },
    });
    expect(ok.statusCode).toBe(200);
    keys.revoke('short-lived');
    const revoked = await h.service.app.inject({
      method: 'GET',
      url: '/v1/jobs',
      headers: { authorization: `Bearer ${key}` },
    });
    expect(revoked.statusCode).toBe(403);
    expect(revoked.json().error.code).toBe('NEUROCLUSTER_ERR_SECURITY');
    expect(keys.list().map((k) => k.name)).toEqual(expect.arrayContaining(['tester', 'short-lived']));
    // The route matched decides, not the URL as written: an escaped /v1 is still /v1.
    for (const url of ['/%761/jobs', '/v1/%6aobs', '/%76%31/jobs?limit=1']) {
      const sneaky = await h.service.app.inject({ method: 'GET', url });
      expect(sneaky.statusCode, url).toBe(401);
    }
  });

  it('runs a job of rows to the labels the library gives, and keeps the correlation ID it was sent', async () => {
    const post = await h.service.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { ...h.auth, 'x-correlation-id': 'pipeline-run-7' },
      payload: { data: { columns: ['a', 'b'], rows: ROWS }, options: KMEANS },
    });
    expect(post.statusCode, post.body).toBe(202);
    expect(post.headers['x-correlation-id']).toBe('pipeline-run-7');
    const { id, state, links } = post.json();
    expect(state).toBe('queued');
    const job = await settled(h, id);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(job.correlationId).toBe('pipeline-run-7');
    const got = (await h.service.app.inject({ method: 'GET', url: links.self, headers: h.auth })).json();
    expect(got).toMatchObject({ id, state: 'succeeded', progress: { phase: 'done', done: 8, total: 8 } });
    expect(got.result.rows).toBe(8);
    expect(got.result.labels).toBeUndefined();
    const expected = await new NeuromorphicClusterer({
      config: KMEANS,
      logger: createLogger({ level: 'silent' }),
    }).fit(ROWS);
    const labels = await h.service.app.inject({ method: 'GET', url: links.labels, headers: h.auth });
    expect(labels.headers['content-type']).toMatch(/^text\/csv/);
    expect(labels.body).toBe(`label\n${Array.from(expected.labels).join('\n')}\n`);
    const result = (await h.service.app.inject({ method: 'GET', url: links.result, headers: h.auth })).json();
    expect(result.labels).toEqual(Array.from(expected.labels));
    // The job's model labels new rows: its own rows get its labels back.
    const predicted = await h.service.app.inject({
      method: 'POST',
      url: links.predict,
      headers: h.auth,
      payload: { data: { columns: ['a', 'b'], rows: [...ROWS].reverse() } },
    });
    expect(predicted.statusCode, predicted.body).toBe(200);
    expect(predicted.json()).toEqual({ rows: 8, labels: Array.from(expected.labels).reverse() });
    // Stored encrypted at rest: the job's files on disk are not the result.
    expect(readFileSync(join(h.service.jobs.dir(id), 'labels.csv')).toString('latin1')).not.toContain(
      'label',
    );
    // Audited with the key's name as actor and the request's correlation ID.
    const records = AuditLog.open({ enabled: true, retentionDays: 365, maxBytes: 1 << 26 }, h.home).tail(50);
    expect(records.filter((r) => r.resource === id).map((r) => [r.action, r.actor, r.correlationId])).toEqual(
      expect.arrayContaining([
        ['job.submit', 'tester', 'pipeline-run-7'],
        ['job.run', 'tester', 'pipeline-run-7'],
        ['job.labels', 'tester', expect.any(String)],
        ['job.predict', 'tester', expect.any(String)],
      ]),
    );
  });

  it('reads a source.path inside the data roots, and refuses one outside (403)', async () => {
    const file = join(h.data, 'iris.csv');
    copyFileSync(join(ROOT, 'examples/iris.csv'), file);
    const post = await h.service.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: h.auth,
      payload: { source: { path: file }, options: { ...KMEANS, data: { labelColumn: 'species' } } },
    });
    expect(post.statusCode, post.body).toBe(202);
    const job = await settled(h, post.json().id);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(job.summary?.rows).toBe(150);
    const outside = await h.service.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: h.auth,
      payload: { source: { path: join(h.home, 'neurocluster.db') } },
    });
    expect(outside.statusCode).toBe(403);
    expect(outside.json().error.code).toBe('NEUROCLUSTER_ERR_SECURITY_PATH');
  });

  it('takes a file as a multipart upload, read as the CLI reads its format', async () => {
    const form = new FormData();
    form.append(
      'options',
      JSON.stringify({ ...KMEANS, kmeans: { nClusters: 3 }, data: { labelColumn: 'species' } }),
    );
    form.append('file', new Blob([readFileSync(join(ROOT, 'examples/iris.csv'))]), 'iris.csv');
    const post = await h.service.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: h.auth,
      payload: form,
    });
    expect(post.statusCode, post.body).toBe(202);
    const job = await settled(h, post.json().id);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(job.summary).toMatchObject({ rows: 150, k: 3 });
    expect(job.input).toEqual({ kind: 'upload', file: 'input.csv' });
    const odd = new FormData();
    odd.append('file', new Blob(['a,b\n1,2\n']), 'data.exe');
    const refused = await h.service.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: h.auth,
      payload: odd,
    });
    expect(refused.statusCode).toBe(422);
    expect(refused.json().error.message).toMatch(/data\.exe" is not a file the service reads/);
  });

  it('checks a job’s options when it is accepted: bad values and sections a job may not set are 422', async () => {
    for (const options of [
      { kmeans: { nClusters: 0 } },
      { security: { dataRoots: ['/'] } },
      { privacy: { budget: { epsilon: 1000 } } },
      { service: { concurrency: 64 } },
      { privacy: { dataset: 'a-fresh-budget' } },
      { timeout: '100h' },
    ]) {
      const r = await h.service.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: h.auth,
        payload: { data: ROWS, options },
      });
      expect(r.statusCode, JSON.stringify(options)).toBe(422);
      expect(r.json().error.code).toBe('NEUROCLUSTER_ERR_CONFIG');
    }
    // A section's snake_case spelling is that section, as in a configuration file.
    const snake = await h.service.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: h.auth,
      payload: { data: ROWS, options: { ...KMEANS, quality_gates: { enabled: false } } },
    });
    expect(snake.statusCode, snake.body).toBe(202);
    const shape = await h.service.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: h.auth,
      payload: { rows: ROWS },
    });
    expect(shape.statusCode).toBe(422);
    const json = await h.service.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { ...h.auth, 'content-type': 'application/json' },
      payload: '{"data": [[1, 2]',
    });
    expect(json.statusCode).toBe(422);
  });

  it('a job whose data cannot be clustered fails with the engine’s code, and has no labels (409)', async () => {
    const post = await h.service.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: h.auth,
      payload: {
        data: [
          ['x', 'y'],
          ['z', 'w'],
        ],
        options: KMEANS,
      },
    });
    const job = await settled(h, post.json().id);
    expect(job.state).toBe('failed');
    expect(job.error?.code).toMatch(/^NEUROCLUSTER_ERR_DATA/);
    const labels = await h.service.app.inject({
      method: 'GET',
      url: `/v1/jobs/${job.id}/labels`,
      headers: h.auth,
    });
    expect(labels.statusCode).toBe(409);
    expect(labels.json().error.code).toBe('NEUROCLUSTER_ERR_CONFLICT');
  });

  it('pages the jobs newest first, by state, and deletes a finished job with its files', async () => {
    const first = await h.service.app.inject({ method: 'GET', url: '/v1/jobs?limit=2', headers: h.auth });
    const page = first.json();
    expect(page.jobs).toHaveLength(2);
    const second = (
      await h.service.app.inject({
        method: 'GET',
        url: `/v1/jobs?limit=2&cursor=${page.next}`,
        headers: h.auth,
      })
    ).json();
    const ids = [...page.jobs, ...second.jobs].map((j: { id: string }) => j.id);
    expect(new Set(ids).size).toBe(ids.length);
    const failed = (
      await h.service.app.inject({ method: 'GET', url: '/v1/jobs?state=failed', headers: h.auth })
    ).json();
    expect(failed.jobs.every((j: { state: string }) => j.state === 'failed')).toBe(true);
    const id = failed.jobs[0].id;
    const files = () =>
      new EncryptedFileRegistry(openStore(storeFile(h.home))).list().filter((f) => f.path.includes(id));
    expect(files().length).toBeGreaterThan(0);
    expect(
      (await h.service.app.inject({ method: 'DELETE', url: `/v1/jobs/${id}`, headers: h.auth })).statusCode,
    ).toBe(204);
    // Its files are gone from the record too: they no longer hold their key from being retired.
    expect(files()).toEqual([]);
    const gone = await h.service.app.inject({ method: 'GET', url: `/v1/jobs/${id}`, headers: h.auth });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe('NEUROCLUSTER_ERR_NOT_FOUND');
    const bad = await h.service.app.inject({ method: 'GET', url: '/v1/jobs?limit=0', headers: h.auth });
    expect(bad.statusCode).toBe(422);
  });

  it('describes every route it serves in /openapi.json, whose request schema takes what the route takes', async () => {
    const routes = h.service.routes;
    const doc = (await h.service.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(doc.openapi).toBe('3.1.0');
    const documented = Object.entries(doc.paths as Record<string, object>).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    );
    expect(routes.length).toBeGreaterThan(10);
    expect(documented.sort()).toEqual([...new Set(routes)].sort());
    const validate = new Ajv2020({ strict: false }).compile(doc.components.schemas.Submit);
    expect(validate({ data: { columns: ['a'], rows: [[1]] }, options: { kmeans: { nClusters: 2 } } })).toBe(
      true,
    );
    expect(validate({ source: { path: '/data/x.csv' } })).toBe(true);
    expect(validate({ rows: [[1]] })).toBe(false);
    const page = await h.service.app.inject({ method: 'GET', url: '/docs' });
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('<code>/v1/jobs/{id}/predict</code>');
  });

  it('answers the probes and the metrics, and an unknown route with a 404 in the error shape', async () => {
    expect((await h.service.app.inject({ method: 'GET', url: '/livez' })).statusCode).toBe(200);
    const ready = await h.service.app.inject({ method: 'GET', url: '/readyz' });
    expect([200, 503]).toContain(ready.statusCode);
    expect(ready.json().checks.length).toBeGreaterThan(0);
    const metrics = await h.service.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(
      /neurocluster_http_request_duration_seconds_count\{route="\/v1\/jobs",method="POST",status="202"\} \d+/,
    );
    expect(metrics.body).toMatch(/neurocluster_service_jobs\{state="succeeded"\} [1-9]/);
    expect(metrics.body).toMatch(/neurocluster_service_queue_depth \d+/);
    const missing = await h.service.app.inject({ method: 'GET', url: '/nowhere' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('NEUROCLUSTER_ERR_NOT_FOUND');
  });
});

describe('the service protects itself', () => {
  it('limits each key to service.rateLimit.max requests a window (429), and sends security headers', async () => {
    const limited = await start({ service: { rateLimit: { max: 3, window: '1m' } } });
    try {
      const other = new ApiKeys(openStore(storeFile(limited.home))).create('other').key;
      const codes: number[] = [];
      for (let i = 0; i < 4; i++)
        codes.push(
          (await limited.service.app.inject({ method: 'GET', url: '/v1/jobs', headers: limited.auth }))
            .statusCode,
        );
      expect(codes).toEqual([200, 200, 200, 429]);
      const over = await limited.service.app.inject({
        method: 'GET',
        url: '/v1/jobs',
        headers: limited.auth,
      });
      expect(over.json().error.code).toBe('NEUROCLUSTER_ERR_RATE_LIMIT');
      expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
      // Another key has its own count; the probes have none.
      const mine = await limited.service.app.inject({
        method: 'GET',
        url: '/v1/jobs',
        headers: { authorization: `Bearer ${other}` },
      });
      expect(mine.statusCode).toBe(200);
      for (let i = 0; i < 5; i++)
        expect((await limited.service.app.inject({ method: 'GET', url: '/livez' })).statusCode).toBe(200);
      expect(mine.headers['x-content-type-options']).toBe('nosniff');
      expect(mine.headers['content-security-policy']).toMatch(/default-src 'self'/);
    } finally {
      await stop(limited);
    }
  });

  it('sheds load past service.maxEventLoopDelay with 503 and Retry-After, and still answers /livez', async () => {
    const pressed = await start({ service: { maxEventLoopDelay: '1ms' } });
    try {
      // Block the event loop past the sampler's next reading (every second), which then sees it.
      const until = Date.now() + 1100;
      while (Date.now() < until) {}
      await new Promise((r) => setTimeout(r, 20));
      const shed = await pressed.service.app.inject({
        method: 'GET',
        url: '/v1/jobs',
        headers: pressed.auth,
      });
      expect(shed.statusCode).toBe(503);
      expect(shed.headers['retry-after']).toBeDefined();
      expect(shed.json().error.code).toBe('NEUROCLUSTER_ERR_RESOURCE_EXHAUSTED');
      expect((await pressed.service.app.inject({ method: 'GET', url: '/livez' })).statusCode).toBe(200);
    } finally {
      await stop(pressed);
    }
  });
});

describe('the service as a job runs', () => {
  it('streams the job as Server-Sent Events to its final state, then serves its plot', async () => {
    const live = await start({}, false);
    try {
      const post = await live.service.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: live.auth,
        payload: { data: ROWS, options: KMEANS },
      });
      const { id, links } = post.json();
      const events = live.service.app.inject({ method: 'GET', url: links.events, headers: live.auth });
      live.service.runner.start();
      const stream = await events;
      expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
      const frames = stream.body
        .trim()
        .split('\n\n')
        .map((frame) => {
          const [event, data] = frame.split('\n');
          expect(event).toBe('event: job');
          return JSON.parse(data!.slice('data: '.length)) as { id: string; state: string };
        });
      // The job as it was when the stream opened (queued, or already taken), then its changes, in order.
      const order = ['queued', 'running', 'succeeded'];
      const states = frames.map((f) => order.indexOf(f.state));
      expect(frames.every((f) => f.id === id)).toBe(true);
      expect(states).toEqual([...states].sort());
      expect(frames.length).toBeGreaterThan(1);
      expect(frames.at(-1)).toMatchObject({ id, state: 'succeeded' });
      const plot = await live.service.app.inject({ method: 'GET', url: links.plot, headers: live.auth });
      expect(plot.statusCode).toBe(200);
      expect(plot.headers['content-type']).toMatch(/^image\/svg\+xml/);
      expect(plot.body).toMatch(/<svg[\s\S]*<\/svg>\s*$/);
    } finally {
      await stop(live);
    }
  });
});

describe('the service when a worker thread dies', () => {
  it('fails the job it was running with NEUROCLUSTER_ERR_INTERNAL, and runs the next job on a new thread', async () => {
    const fragile = await start({}, false);
    try {
      const post = () =>
        fragile.service.app.inject({
          method: 'POST',
          url: '/v1/jobs',
          headers: fragile.auth,
          payload: {
            data: Array.from({ length: 2000 }, (_, i) => [Math.sin(i), Math.cos(i), i % 5]),
            options: { kmeans: { nClusters: 3 }, engine: { method: 'hybrid', backend: 'js' } },
          },
        });
      const first = (await post()).json().id;
      fragile.service.runner.start();
      for (let i = 0; i < 400 && fragile.service.jobs.get(first).state !== 'running'; i++)
        await new Promise((r) => setTimeout(r, 10));
      // The thread stops as a crash would stop it (the runner did not ask it to).
      const { slots } = fragile.service.runner as unknown as {
        slots: { worker: { terminate(): Promise<number> } }[];
      };
      await slots[0]!.worker.terminate();
      const failed = await settled(fragile, first);
      expect(failed.state).toBe('failed');
      expect(failed.error?.code).toBe('NEUROCLUSTER_ERR_INTERNAL');
      const second = (
        await fragile.service.app.inject({
          method: 'POST',
          url: '/v1/jobs',
          headers: fragile.auth,
          payload: { data: ROWS, options: KMEANS },
        })
      ).json().id;
      expect((await settled(fragile, second)).state).toBe('succeeded');
    } finally {
      await stop(fragile);
    }
  });
});

describe('tenants', () => {
  it('keep to their own jobs: another tenant’s job is 404 on every route, and absent from lists and events', async () => {
    new Tenants(openStore(storeFile(h.home))).create('team-b');
    const other = new ApiKeys(openStore(storeFile(h.home))).create('outsider', 'team-b').key;
    const theirs = { authorization: `Bearer ${other}` };
    const post = await h.service.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: h.auth,
      payload: { data: ROWS, options: KMEANS },
    });
    const { id, links } = post.json();
    expect((await settled(h, id)).state).toBe('succeeded');
    expect(h.service.jobs.get(id).tenant).toBe('default');
    for (const [method, url] of [
      ['GET', links.self],
      ['GET', links.result],
      ['GET', links.labels],
      ['GET', links.plot],
      ['GET', links.events],
      ['POST', links.predict],
      ['DELETE', links.self],
    ] as const) {
      const r = await h.service.app.inject({
        method,
        url,
        headers: theirs,
        ...(method === 'POST' ? { payload: { data: ROWS } } : {}),
      });
      expect(r.statusCode, `${method} ${url}`).toBe(404);
      expect(r.json().error.code).toBe('NEUROCLUSTER_ERR_NOT_FOUND');
    }
    const listed = (await h.service.app.inject({ method: 'GET', url: '/v1/jobs', headers: theirs })).json();
    expect(listed.jobs).toEqual([]);
    const status = (await h.service.app.inject({ method: 'GET', url: '/v1/status', headers: theirs })).json();
    expect(Object.values(status.jobs as Record<string, number>).every((n) => n === 0)).toBe(true);
    // Their own job is theirs: listed for them, not for the first tenant.
    const mine = (
      await h.service.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: theirs,
        payload: { data: ROWS, options: KMEANS },
      })
    ).json().id;
    expect((await settled(h, mine)).tenant).toBe('team-b');
    const ownList = (await h.service.app.inject({ method: 'GET', url: '/v1/jobs', headers: theirs })).json();
    expect(ownList.jobs.map((j: { id: string }) => j.id)).toEqual([mine]);
    const firstList = (
      await h.service.app.inject({ method: 'GET', url: '/v1/jobs?limit=500', headers: h.auth })
    ).json();
    expect(firstList.jobs.map((j: { id: string }) => j.id)).not.toContain(mine);
    // And the job still exists for its own tenant: nothing above touched it.
    expect((await h.service.app.inject({ method: 'GET', url: links.self, headers: h.auth })).statusCode).toBe(
      200,
    );
  });
});

describe('the job store', () => {
  it('queues a job cut off by a stop again, but fails one cut off three times', async () => {
    const home = tempDir();
    const jobs = new JobStore(openStore(storeFile(home)), join(home, 'jobs'));
    const id = randomUUID();
    jobs.accept(id, { kind: 'upload', file: 'input.json' }, {}, { name: 'tester', tenant: 'default' }, 'c1');
    for (let run = 1; run <= 3; run++) {
      expect(jobs.claim()?.attempts).toBe(run);
      const interrupted = jobs.requeueInterrupted();
      expect(interrupted).toEqual(run < 3 ? { requeued: 1, abandoned: 0 } : { requeued: 0, abandoned: 1 });
    }
    expect(jobs.get(id)).toMatchObject({ state: 'failed', error: { code: 'NEUROCLUSTER_ERR_INTERNAL' } });
  });

  it('refuses new jobs once it is shutting down (503), while the probes still answer', async () => {
    const closing = await start();
    await closing.service.shutdown();
    const refused = await closing.service.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: closing.auth,
      payload: { data: ROWS, options: KMEANS },
    });
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBeDefined();
    expect((await closing.service.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    expect((await closing.service.app.inject({ method: 'GET', url: '/livez' })).statusCode).toBe(200);
    await closing.service.app.close();
  });
});

describe('the service under its limits', () => {
  it('refuses a body over service.maxBodyBytes with 413, and cancels a queued job', async () => {
    // The runner starts after the jobs are in: both wait queued until then.
    const small = await start({ service: { maxBodyBytes: 2048, concurrency: 1, maxQueuedJobs: 2 } }, false);
    try {
      const big = await small.service.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: small.auth,
        payload: { data: Array.from({ length: 400 }, (_, i) => [i, i]) },
      });
      expect(big.statusCode).toBe(413);
      expect(big.json().error.code).toBe('NEUROCLUSTER_ERR_TOO_LARGE');
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const post = await small.service.app.inject({
          method: 'POST',
          url: '/v1/jobs',
          headers: small.auth,
          payload: { data: ROWS, options: KMEANS },
        });
        ids.push(post.json().id);
      }
      // Two waiting is as many as this service takes: a third is turned away, for now.
      const third = await small.service.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: small.auth,
        payload: { data: ROWS, options: { ...KMEANS, quality_gates: { enabled: false } } },
      });
      expect(third.statusCode).toBe(503);
      expect(third.json().error.message).toMatch(/service\.maxQueuedJobs/);
      const cancel = await small.service.app.inject({
        method: 'DELETE',
        url: `/v1/jobs/${ids[1]}`,
        headers: small.auth,
      });
      expect(cancel.statusCode).toBe(202);
      expect(cancel.json()).toMatchObject({
        state: 'cancelled',
        error: { code: 'NEUROCLUSTER_ERR_ABORTED' },
      });
      small.service.runner.start();
      expect((await settled(small, ids[0]!)).state).toBe('succeeded');
      expect(small.service.jobs.get(ids[1]!).state).toBe('cancelled');
    } finally {
      await stop(small);
    }
  });
});

describe('a job’s rows on their way in', () => {
  it('are held in the store, encrypted, with the job (no file yet), and written to its directory when it runs', async () => {
    const s = await start({}, false);
    try {
      const post = await s.service.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: s.auth,
        payload: { data: { columns: ['a', 'b'], rows: ROWS }, options: KMEANS },
      });
      expect(post.statusCode, post.body).toBe(202);
      const { id } = post.json();
      const dir = s.service.jobs.dir(id);
      expect(existsSync(dir)).toBe(false);
      const held = s.service.jobs.held(id)!;
      expect(isEncrypted(held)).toBe(true);
      expect(held.toString('latin1')).not.toContain('"a":');
      // Rows too large to hold (over 1 MiB encrypted) go to the job's directory at once.
      const many = Array.from({ length: 70_000 }, (_, i) => [i, i + 0.5]);
      const large = await s.service.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: s.auth,
        payload: { data: many, options: KMEANS },
      });
      expect(large.statusCode, large.body).toBe(202);
      const largeId = large.json().id;
      expect(s.service.jobs.held(largeId)).toBeUndefined();
      expect(isEncrypted(readFileSync(join(s.service.jobs.dir(largeId), 'input.json')))).toBe(true);
      await s.service.app.inject({ method: 'DELETE', url: `/v1/jobs/${largeId}`, headers: s.auth });

      await s.service.runner.start();
      const job = await settled(s, id);
      expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
      const input = join(realpathSync(dir), 'input.json');
      expect(readFileSync(input).equals(held)).toBe(true);
      expect(new EncryptedFileRegistry(openStore(storeFile(s.home))).list().map((f) => f.path)).toContain(
        input,
      );
      // Dropped once the job ended: the file is its input from then on.
      expect(s.service.jobs.held(id)).toBeUndefined();
    } finally {
      await stop(s);
    }
  });

  it('held, are run after a restart of a service stopped before it ran them', async () => {
    const first = await start({}, false);
    const post = await first.service.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: first.auth,
      payload: { data: ROWS, options: KMEANS },
    });
    const { id } = post.json();
    await stop(first);
    const again = await start({}, true, undefined, first.home);
    try {
      const job = await settled(again, id);
      expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
      expect(job.summary).toMatchObject({ rows: 8 });
    } finally {
      await stop(again);
    }
  });
});
