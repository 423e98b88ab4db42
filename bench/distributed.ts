/**
 * `npm run bench:distributed [-- --rows 20000 --jobs 8 --method hybrid --k 8 --lock 10s --stalled 5s
 * --split-rows N --wasm-threads T]`:
 * `neurocluster serve --queue` with `neurocluster worker` processes on a real redis-server, all on
 * loopback, on a fresh temporary directory removed at the end. `--jobs` jobs, each the same file of
 * Gaussian blobs (float32 NPY, 16 columns), are submitted at once, by path, and timed until every
 * one has succeeded:
 *
 * 1. reference: the single-process CLI (`neurocluster cluster`) on the file, once: its labels;
 * 2. one worker;
 * 3. two workers: the speed-up over one;
 * 4. two workers, one killed with SIGKILL once half the jobs have succeeded: every job must still
 *    succeed, the time lost is compared with the stall settings (`--lock`, `--stalled`).
 *
 * Every job's labels must equal the reference's. One JSON object on stdout; exit 1 when a job fails
 * or its labels differ.
 *
 * Without `--split-rows` a job is one task: this measures throughput over jobs. With it (below
 * `--rows`; `--jobs 1`), each job is split into range tasks of `distributed.taskRows` rows that
 * every worker takes: this measures one job over one and two workers, and in step 4 kills the job's
 * coordinator (the first worker: the only one when the job is submitted, the second joins once it
 * runs) half-way through the two-worker time; `stalledJobTasks` shows the service saw its task
 * stall. `lostSeconds` is then the time past what the survivor alone needs for the rest of the
 * job: the lost work and the stall. `--wasm-threads` caps each process's WASM threads (one per
 * core by default), so that on a small machine one worker does not already fill every core.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeBlobsNpy } from '../src/bench/workloads.js';
import { ApiKeys } from '../src/service/api-keys.js';
import { openStore, storeFile } from '../src/store/db.js';
import { CLI, killAll, type Started, startCli, stopCli } from './processes.js';
import { type RedisServer, startRedis } from './redis.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '20000' },
    jobs: { type: 'string', default: '8' },
    method: { type: 'string', default: 'hybrid' },
    k: { type: 'string', default: '8' },
    lock: { type: 'string', default: '10s' },
    stalled: { type: 'string', default: '5s' },
    'split-rows': { type: 'string' },
    'wasm-threads': { type: 'string' },
  },
});
const SPLIT_ROWS = values['split-rows'];
const ROWS = Number(values.rows);
const JOBS = Number(values.jobs);
const dir = mkdtempSync(join(tmpdir(), 'neurocluster-bench-distributed-'));

const jobOptions = {
  kmeans: { nClusters: Number(values.k) },
  engine: { method: values.method, seed: 0 },
  // A split job of more rows than the default holds inline: its labels come back in its result.
  output: { inlineLabelsMax: Math.max(ROWS, 1_000_000) },
};
/** What every process of the bench (the CLI, the service, the workers) reads besides its own. */
const common: Record<string, string> = {
  ...(values['wasm-threads'] ? { NEUROCLUSTER_WASM_THREADS: values['wasm-threads'] } : {}),
  ...(SPLIT_ROWS ? { NEUROCLUSTER_DISTRIBUTED__SPLIT_ROWS: SPLIT_ROWS } : {}),
};

/** Labels as the CSV the service and the CLI write: one per row after the header. */
const labelsOf = (csv: string) => csv.trim().split('\n').slice(1).join(',');

interface Phase {
  readonly workers: number;
  readonly seconds: number;
  readonly succeeded: number;
  readonly sameLabels: number;
  /** Tasks of the jobs' queue found stalled (their worker killed), as the service counted them. */
  readonly stalledJobTasks: number;
  /** Jobs succeeded (or, for a split job, seconds gone) when the first worker was killed. */
  readonly killedAfter?: number;
}

/** One phase: a fresh home and queue, `workers` workers, the jobs submitted at once and awaited. */
async function phase(
  name: string,
  queue: string,
  file: string,
  reference: string,
  workers: number,
  /** Kill the first worker once half the jobs succeeded, or after this many seconds. */
  kill?: 'half-the-jobs' | number,
): Promise<Phase> {
  const home = join(dir, name);
  mkdirSync(home);
  writeFileSync(join(home, 'config.yaml'), `security:\n  dataRoots: [${JSON.stringify(dir)}]\n`);
  const { key } = new ApiKeys(openStore(storeFile(home))).create('bench');
  const auth = { authorization: `Bearer ${key}` };
  const env = {
    ...common,
    NEUROCLUSTER_HOME: home,
    NEUROCLUSTER_DISTRIBUTED__QUEUE_NAME: name,
    NEUROCLUSTER_DISTRIBUTED__LOCK_DURATION: values.lock,
    NEUROCLUSTER_DISTRIBUTED__STALLED_INTERVAL: values.stalled,
  };
  const service = await startCli<{ url: string }>(['serve', '--port', '0', '--queue', queue], env);
  const startWorker = async () => pool.push(await startCli(['worker', '--queue', queue], env));
  const pool: Started<unknown>[] = [];
  // A split job: the first worker alone when it is submitted, so that worker is its coordinator
  // (the one step 4 kills); the others join while it reads the file.
  const first = SPLIT_ROWS ? 1 : workers;
  for (let i = 0; i < first; i++) await startWorker();
  const t0 = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < JOBS; i++) {
    const r = await fetch(`${service.line.url}/v1/jobs`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ source: { path: file }, options: jobOptions }),
    });
    if (r.status !== 202) throw new Error(`POST /v1/jobs: ${r.status} ${await r.text()}`);
    ids.push(((await r.json()) as { id: string }).id);
  }
  let killedAfter: number | undefined;
  const states = new Map<string, string>();
  for (;;) {
    for (const id of ids) {
      const r = await fetch(`${service.line.url}/v1/jobs/${id}`, { headers: auth });
      states.set(id, ((await r.json()) as { state: string }).state);
    }
    if (pool.length < workers && [...states.values()].some((s) => s !== 'queued'))
      while (pool.length < workers) await startWorker();
    const final = [...states.values()].filter((s) => ['succeeded', 'failed', 'cancelled'].includes(s));
    const succeeded = [...states.values()].filter((s) => s === 'succeeded').length;
    const due =
      kill === 'half-the-jobs'
        ? succeeded >= JOBS / 2
        : kill !== undefined && performance.now() - t0 >= kill * 1000;
    if (due && killedAfter === undefined) {
      killedAfter =
        kill === 'half-the-jobs' ? succeeded : Number(((performance.now() - t0) / 1000).toFixed(2));
      await stopCli(pool[0]!, 'SIGKILL');
    }
    if (final.length === ids.length) break;
    if (performance.now() - t0 > 1_800_000) throw new Error(`${name}: jobs not final after 30 minutes`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const seconds = (performance.now() - t0) / 1000;
  let sameLabels = 0;
  for (const id of ids) {
    if (states.get(id) !== 'succeeded') continue;
    const r = await fetch(`${service.line.url}/v1/jobs/${id}/labels`, { headers: auth });
    if (labelsOf(await r.text()) === reference) sameLabels++;
  }
  // Tasks of the jobs' queue whose worker died (a split job's coordinator, for one).
  const metrics = await (await fetch(`${service.line.url}/metrics`)).text();
  const stalled = /^neurocluster_distributed_stalled_tasks_total(?:\{[^}]*\})? (\d+)/m.exec(metrics);
  for (const w of pool) if (w.child.exitCode === null && w.child.signalCode === null) await stopCli(w);
  await stopCli(service);
  return {
    workers,
    seconds: Number(seconds.toFixed(2)),
    succeeded: [...states.values()].filter((s) => s === 'succeeded').length,
    sameLabels,
    stalledJobTasks: Number(stalled?.[1] ?? 0),
    ...(killedAfter === undefined ? {} : { killedAfter }),
  };
}

/**
 * What killing a split job's coordinator cost beyond the survivor doing the rest alone: by the
 * kill, two workers had done `killedAfter * (one / two)` seconds of one worker's work; the rest
 * takes the survivor `one` less that. Past it is the lost work and the stall.
 */
function lostToTheKill(one: number, two: number, killedAfter: number, seconds: number) {
  const survivorAloneSeconds = killedAfter + one - killedAfter * (one / two);
  return {
    survivorAloneSeconds: Number(survivorAloneSeconds.toFixed(2)),
    lostSeconds: Number((seconds - survivorAloneSeconds).toFixed(2)),
  };
}

let server: RedisServer | undefined;
try {
  const file = join(dir, `blobs-${ROWS}x16.npy`);
  await writeBlobsNpy(file, join(dir, 'truth.npy'), ROWS, 16, Number(values.k), 0);
  // 1. The single-process CLI: the labels every job must give.
  const labelsFile = join(dir, 'reference-labels.csv');
  const t0 = performance.now();
  execFileSync(
    process.execPath,
    [
      CLI,
      'cluster',
      file,
      '--k',
      values.k,
      '--method',
      values.method,
      '--seed',
      '0',
      '--labels-out',
      labelsFile,
    ],
    {
      env: { ...process.env, ...common, NEUROCLUSTER_HOME: join(dir, 'cli-home') },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const cliSeconds = (performance.now() - t0) / 1000;
  const reference = labelsOf(readFileSync(labelsFile, 'utf8'));
  mkdirSync(join(dir, 'redis'));
  server = await startRedis(join(dir, 'redis'));
  const one = await phase('one', server.url, file, reference, 1);
  const two = await phase('two', server.url, file, reference, 2);
  const killed = await phase(
    'killed',
    server.url,
    file,
    reference,
    2,
    SPLIT_ROWS ? two.seconds / 2 : 'half-the-jobs',
  );
  const result = {
    rows: ROWS,
    cols: 16,
    jobs: JOBS,
    method: values.method,
    split: SPLIT_ROWS ? { splitRows: Number(SPLIT_ROWS) } : false,
    wasmThreads: values['wasm-threads'] ? Number(values['wasm-threads']) : 'one per core',
    stall: { lockDuration: values.lock, stalledInterval: values.stalled },
    cliOneJobSeconds: Number(cliSeconds.toFixed(2)),
    oneWorker: one,
    twoWorkers: two,
    speedup: Number((one.seconds / two.seconds).toFixed(2)),
    twoWorkersOneKilled: {
      ...killed,
      extraSeconds: Number((killed.seconds - two.seconds).toFixed(2)),
      ...(SPLIT_ROWS && typeof killed.killedAfter === 'number'
        ? lostToTheKill(one.seconds, two.seconds, killed.killedAfter, killed.seconds)
        : {}),
    },
    targets: {
      allSucceeded: [one, two, killed].every((p) => p.succeeded === JOBS),
      labelsEqualTheCli: [one, two, killed].every((p) => p.sameLabels === JOBS),
    },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (!Object.values(result.targets).every(Boolean)) process.exitCode = 1;
} finally {
  await killAll();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
}
