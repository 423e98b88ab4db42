/**
 * `npm run bench:service [-- --jobs 200 --clients 20 --fault kernel-throw@0.3 --concurrency 1
 * --livez-rate 1000 --livez-seconds 3]`: the service under load, on loopback only, bounded in
 * count and time. Each phase runs a real `neurocluster serve` process on a fresh home:
 *
 * 0. alone: one client submits 50 jobs one after another: what one accept costs, unqueued;
 * 1. load: `--clients` clients submit `--jobs` iris-sized jobs (150 x 4, `hybrid`) with
 *    NEUROCLUSTER_FAULT set, each on a keep-alive connection it opened first; every job must reach
 *    `succeeded` (the fallback answers faulted ones); the statuses seen (5xx only as 503 with
 *    Retry-After), POST /v1/jobs latency p50/p99;
 * 2. livez: GET /livez at `--livez-rate` requests per second for `--livez-seconds`, latency p99;
 *    then, as the reference on this machine, the same requests to a bare node:http server (one
 *    line of JSON for every request, nothing else) in a process of its own: what the client, the
 *    loopback and the scheduler cost any server here;
 * 3. kill: the load again, each client connecting with its first submission (their latency until
 *    the kill is reported too, beside the bare server's on new connections with a core kept busy),
 *    the service killed with SIGKILL once half the jobs were accepted, then started again: every
 *    accepted job must reach a final state.
 *
 * The client is node:http with keep-alive connections: lean, because on a small machine the
 * client's own CPU is taken from the server it measures (fetch costs several times more a request).
 *
 * One JSON object on stdout; exit 1 when a job is lost or a target is missed.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiKeys } from '../src/service/api-keys.js';
import { openStore, storeFile } from '../src/store/db.js';
import { irisJob, killAll, quantile, startCli, startNode } from './processes.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '200' },
    clients: { type: 'string', default: '20' },
    fault: { type: 'string', default: 'kernel-throw@0.3' },
    concurrency: { type: 'string', default: '1' },
    'livez-rate': { type: 'string', default: '1000' },
    'livez-seconds': { type: 'string', default: '3' },
  },
});
const JOBS = Number(values.jobs);
const CLIENTS = Number(values.clients);
const body = irisJob();

interface Server {
  child: ChildProcess;
  url: string;
  exited: Promise<unknown>;
}

async function serve(home: string): Promise<Server> {
  const p = await startCli<{ url: string }>(['serve', '--port', '0'], {
    NEUROCLUSTER_HOME: home,
    NEUROCLUSTER_FAULT: values.fault,
    NEUROCLUSTER_SERVICE__CONCURRENCY: values.concurrency,
    // Retries back off briefly: the fallback, not the wait, is what is measured.
    NEUROCLUSTER_RETRY__BASE_DELAY: '10ms',
    NEUROCLUSTER_RETRY__MAX_DELAY: '20ms',
    NEUROCLUSTER_SERVICE__RATE_LIMIT__MAX: '1000000',
  });
  return { child: p.child, url: p.line.url, exited: p.exited };
}

const round = (ms: number) => Number(ms.toFixed(2));

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: string;
}

/** One request on the keep-alive pool; the whole answer read. */
function send(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; agent?: Agent } = {},
): Promise<Answer> {
  return new Promise((resolveAnswer, reject) => {
    const req = httpRequest(
      url,
      { agent: options.agent ?? agent, method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () =>
          resolveAnswer({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/**
 * The reference for the probe: a bare node:http server answering every request with one JSON line
 * (after BARE_WORK_MS milliseconds of work, none by default).
 */
const BARE_SERVER = `
const work = Number(process.env.BARE_WORK_MS || 0);
const server = require('node:http').createServer((_req, res) => {
  for (const start = performance.now(); performance.now() - start < work; );
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.end('{"status":"ok"}');
});
server.listen(0, '127.0.0.1', () =>
  console.log(JSON.stringify({ url: 'http://127.0.0.1:' + server.address().port })));
`;

/**
 * Submits `count` jobs from `clients` clients; `onAccepted` may stop the load (it returns false).
 * `warm`: each client opens its connection first (a GET /livez, not timed), as a pipeline's
 * keep-alive client has it open; otherwise each connects with its first submission, while the
 * others' are served.
 */
async function load(
  server: () => Server,
  auth: string,
  count: number,
  {
    clients = CLIENTS,
    warm = false,
    onAccepted = () => true,
  }: {
    clients?: number;
    warm?: boolean;
    onAccepted?: (accepted: number) => boolean;
  } = {},
): Promise<{ ids: string[]; latencies: number[]; statuses: Record<string, number>; bad5xx: number }> {
  const ids: string[] = [];
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let bad5xx = 0;
  let next = 0;
  let going = true;
  const client = async () => {
    if (warm) await send(`${server().url}/livez`);
    while (going && next < count) {
      next++;
      const t0 = performance.now();
      let r: Answer;
      try {
        r = await send(`${server().url}/v1/jobs`, {
          method: 'POST',
          headers: { authorization: auth, 'content-type': 'application/json' },
          body,
        });
      } catch {
        statuses.refused = (statuses.refused ?? 0) + 1;
        continue;
      }
      latencies.push(performance.now() - t0);
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      if (r.status >= 500 && !(r.status === 503 && r.retryAfter)) bad5xx++;
      const answer = JSON.parse(r.body) as { id?: string };
      if (r.status === 202 && answer.id) {
        ids.push(answer.id);
        if (!onAccepted(ids.length)) going = false;
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  return { ids, latencies: latencies.sort((a, b) => a - b), statuses, bad5xx };
}

/** Waits until every job is final (or `ms` pass); the count in each state. */
async function settle(server: Server, auth: string, ids: readonly string[], ms: number) {
  const deadline = Date.now() + ms;
  let states: Record<string, number> = {};
  while (Date.now() < deadline) {
    states = {};
    for (const id of ids) {
      const r = await send(`${server.url}/v1/jobs/${id}`, { headers: { authorization: auth } });
      const { state } = JSON.parse(r.body) as { state: string };
      states[state] = (states[state] ?? 0) + 1;
    }
    if ((states.succeeded ?? 0) + (states.failed ?? 0) + (states.cancelled ?? 0) === ids.length) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return states;
}

async function stop(server: Server, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  server.child.kill(signal);
  await server.exited;
}

/** GET `url` at `rate` requests a second for `seconds`, each sent when due whatever came back. */
async function probe(url: string, rate: number, seconds: number) {
  const latencies: number[] = [];
  const total = rate * seconds;
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(
      (async () => {
        const start = performance.now();
        await send(url);
        latencies.push(performance.now() - start);
      })(),
    );
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    requests: total,
    achievedRate: Math.round(total / elapsed),
    p50Ms: round(quantile(latencies, 0.5)),
    p99Ms: round(quantile(latencies, 0.99)),
  };
}

/**
 * What connections opened under load cost any server on this machine: the bare server doing 1.5 ms
 * of work a request (about what an accept costs the service) while another process keeps a core
 * busy (as a job's fit does), `CLIENTS` clients each opening its connection with the first of its
 * ten requests; the first requests' latency against the others'.
 */
async function coldReference() {
  const busy = await startNode(['-e', 'console.log("{}"); for (;;) {}'], {}, 'a busy core');
  const bare = await startNode<{ url: string }>(
    ['-e', BARE_SERVER],
    { BARE_WORK_MS: '1.5' },
    'the bare server',
  );
  const cold = new Agent({ keepAlive: true, maxSockets: 256 });
  try {
    const first: number[] = [];
    const rest: number[] = [];
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        for (let i = 0; i < 10; i++) {
          const start = performance.now();
          await send(bare.line.url, { agent: cold });
          (i === 0 ? first : rest).push(performance.now() - start);
        }
      }),
    );
    first.sort((a, b) => a - b);
    rest.sort((a, b) => a - b);
    return { firstP99Ms: round(quantile(first, 0.99)), restP99Ms: round(quantile(rest, 0.99)) };
  } finally {
    cold.destroy();
    await stop({ child: bare.child, url: bare.line.url, exited: bare.exited });
    await stop({ child: busy.child, url: '', exited: busy.exited });
  }
}

const homes: string[] = [];
function freshHome(): { home: string; auth: string } {
  const home = mkdtempSync(join(tmpdir(), 'neurocluster-bench-service-'));
  homes.push(home);
  const { key } = new ApiKeys(openStore(storeFile(home))).create('bench');
  return { home, auth: `Bearer ${key}` };
}

try {
  // 1. Load with faults.
  const a = freshHome();
  let server = await serve(a.home);
  const alone = await load(() => server, a.auth, 50, { clients: 1 });
  await settle(server, a.auth, alone.ids, 600_000);
  const t0 = performance.now();
  const loaded = await load(() => server, a.auth, JOBS, { warm: true });
  const states = await settle(server, a.auth, loaded.ids, 600_000);
  const loadSeconds = (performance.now() - t0) / 1000;
  // 2. The liveness probe at a fixed rate, the jobs done; then the bare server, the same way.
  const rate = Number(values['livez-rate']);
  const seconds = Number(values['livez-seconds']);
  const livez = await probe(`${server.url}/livez`, rate, seconds);
  await stop(server);
  const bare = await startNode<{ url: string }>(['-e', BARE_SERVER], {}, 'the bare server');
  const reference = await probe(`${bare.line.url}/`, rate, seconds);
  await stop({ child: bare.child, url: bare.line.url, exited: bare.exited });
  const coldConnections = await coldReference();
  // 3. Killed half-way, started again.
  const b = freshHome();
  server = await serve(b.home);
  const first = server;
  const killedAt: number[] = [];
  const killed = await load(() => server, b.auth, JOBS, {
    onAccepted: (accepted) => {
      if (accepted === Math.floor(JOBS / 2)) {
        killedAt.push(accepted);
        first.child.kill('SIGKILL');
        return false;
      }
      return true;
    },
  });
  await first.exited;
  server = await serve(b.home);
  const afterKill = await settle(server, b.auth, killed.ids, 600_000);
  await stop(server);

  const final = (s: Record<string, number>) => (s.succeeded ?? 0) + (s.failed ?? 0) + (s.cancelled ?? 0);
  const result = {
    alone: {
      jobs: alone.ids.length,
      postP50Ms: round(quantile(alone.latencies, 0.5)),
      postP99Ms: round(quantile(alone.latencies, 0.99)),
    },
    load: {
      jobs: JOBS,
      clients: CLIENTS,
      fault: values.fault,
      accepted: loaded.ids.length,
      states,
      statuses: loaded.statuses,
      unexpected5xx: loaded.bad5xx,
      postP50Ms: round(quantile(loaded.latencies, 0.5)),
      postP99Ms: round(quantile(loaded.latencies, 0.99)),
      seconds: Number(loadSeconds.toFixed(1)),
    },
    livez: { ...livez, reference, p99Ratio: Number((livez.p99Ms / reference.p99Ms).toFixed(2)) },
    kill: {
      accepted: killed.ids.length,
      killedAfter: killedAt[0],
      states: afterKill,
      lost: killed.ids.length - final(afterKill),
      // Until the kill, on connections each client opened with its first submission.
      postP50Ms: round(quantile(killed.latencies, 0.5)),
      postP99Ms: round(quantile(killed.latencies, 0.99)),
      // The same kind of connections on the bare server, with a core busy.
      reference: coldConnections,
    },
    targets: {
      allSucceeded: (states.succeeded ?? 0) === JOBS,
      no5xx: loaded.bad5xx === 0,
      postP99Under50Ms: quantile(loaded.latencies, 0.99) <= 50,
      livezP99Under5Ms: livez.p99Ms <= 5,
      noneLostAfterKill: final(afterKill) === killed.ids.length,
    },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (!Object.values(result.targets).every(Boolean)) process.exitCode = 1;
} finally {
  // A phase that threw leaves its server running; none outlives the bench.
  await killAll();
  for (const home of homes) rmSync(home, { recursive: true, force: true });
}
