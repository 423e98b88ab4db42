/**
 * One job split over two real `neurocluster worker` processes on a real Redis: its passes become
 * range tasks that both take, and the labels equal the single-process CLI's for the same seed and
 * ranges, with a worker killed mid-job too. The merge of the states is checked without Redis.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClusterMoments, ContingencyCounts, LloydSums } from '../../src/cluster/streamed.js';
import { taskError } from '../../src/distributed/split.js';
import { RangePlanner } from '../../src/fit/ranges.js';
import { runCli, tempDir } from '../helpers.js';
import { type Harness, settled, start, stop } from '../service/harness.js';
import { type RedisServer, redisAvailable, startRedis } from './redis.js';
import { killAll, labelsOf, startWorker, submit, until, type WorkerProcess } from './workers.js';

describe('the states a split job merges', () => {
  it('merge in range order to what one pass over all rows counts, and travel as JSON', () => {
    const whole = new ContingencyCounts(2);
    const parts = [new ContingencyCounts(2), new ContingencyCounts(2)];
    const truth = ['b', 'a', 'b', 'c', 'a', 'c'];
    const labels = [0, 1, 0, 1, 1, 0];
    whole.add(
      truth.map((t) => whole.code(t)),
      labels,
    );
    for (const [p, part] of parts.entries()) {
      const t = truth.slice(p * 3, p * 3 + 3);
      part.add(
        t.map((c) => part.code(c)),
        labels.slice(p * 3, p * 3 + 3),
      );
    }
    const merged = ContingencyCounts.fromJSON(JSON.parse(JSON.stringify(parts[0]!)));
    merged.merge(ContingencyCounts.fromJSON(JSON.parse(JSON.stringify(parts[1]!))));
    expect(merged.toJSON()).toEqual(whole.toJSON());
    expect(merged.quality()).toEqual(whole.quality());

    const sums = new LloydSums(2, 1).add({
      sums: Float64Array.from([1, 2]),
      counts: Float64Array.from([1, 1]),
      inertia: 0.5,
    });
    expect(LloydSums.fromJSON(JSON.parse(JSON.stringify(sums)))).toEqual(sums);
    const moments = new ClusterMoments(2, 1).add(
      { rows: 2, cols: 1, data: Float64Array.from([1, 3]) },
      Int32Array.from([0, 1]),
      [0.25, 1],
    );
    expect(ClusterMoments.fromJSON(JSON.parse(JSON.stringify(moments)))).toEqual(moments);
  });

  it('group chunks into ranges that start where their first chunk does', () => {
    const planner = new RangePlanner(2);
    for (let i = 0; i < 5; i++)
      planner.add({
        start: i * 10,
        offset: 100 + i * 50,
        line: 2 + i * 10,
        records: 10,
        rows: i === 1 ? 9 : 10,
      });
    expect(planner.planned).toEqual([
      { index: 0, start: 0, offset: 100, line: 2, records: 20, rows: 19, firstRow: 0 },
      { index: 1, start: 20, offset: 200, line: 22, records: 20, rows: 20, firstRow: 19 },
      { index: 2, start: 40, offset: 300, line: 42, records: 10, rows: 10, firstRow: 39 },
    ]);
  });

  it("fail the job with a range task's own code, and INTERNAL for anything else", () => {
    const data = taskError('NEUROCLUSTER_ERR_DATA_VALUE: non-numeric value "x" in column "a"', 3);
    expect(data.code).toBe('NEUROCLUSTER_ERR_DATA_VALUE');
    expect(data.message).toBe('range 3: non-numeric value "x" in column "a"');
    expect(taskError('NEUROCLUSTER_ERR_NOPE: x', 1).code).toBe('NEUROCLUSTER_ERR_INTERNAL');
    expect(taskError('job stalled more than allowable limit', 0).code).toBe('NEUROCLUSTER_ERR_INTERNAL');
  });
});

/** Four blobs of 6,000 rows with ids and classes: four ranges of 1,500 rows. */
function blobsCsv(path: string): void {
  let text = 'id,a,b,c,d,e,f,class\n';
  let x = 987;
  const next = () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
  for (let i = 0; i < 6000; i++) {
    const c = i % 4;
    text += `r${i},${Array.from({ length: 6 }, (_, j) => (c * 1.5 + (j % 2) + 2 * next()).toFixed(4)).join(',')},k${c}\n`;
  }
  writeFileSync(path, text);
}

/** The service's and the CLI's: every file past 1,000 rows is split into ranges of 1,500. */
const SPLIT = { distributed: { splitRows: 1000, taskRows: 1500 } };
const OPTIONS = {
  kmeans: { nClusters: 4, algorithm: 'lloyd' },
  engine: { method: 'hybrid', backend: 'js', seed: 5 },
  data: { idColumn: 'id', labelColumn: 'class' },
  stream: { sampleRows: 1000 },
};

describe.skipIf(!redisAvailable)('a job split over two worker processes', () => {
  let redis: RedisServer;
  let h: Harness | undefined;
  const workers: WorkerProcess[] = [];
  let expected: string;
  let path: string;

  beforeAll(async () => {
    redis = await startRedis();
    // The single-process plan: the CLI over the same file, ranges and seed.
    const dir = tempDir();
    path = join(dir, 'blobs.csv');
    blobsCsv(path);
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ ...OPTIONS, ...SPLIT }));
    const out = join(dir, 'labels.csv');
    const r = runCli(['--config', config, 'cluster', path, '--labels-out', out, '--json'], {
      home: tempDir(),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).streamed).toMatchObject({ sampleRows: 1000 });
    expected = readFileSync(out, 'utf8');
  }, 120_000);
  afterEach(async () => {
    await killAll(workers);
    if (h) await stop(h);
    h = undefined;
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** The file in the service's data roots. */
  function source(harness: Harness) {
    const inRoots = join(harness.data, 'blobs.csv');
    writeFileSync(inRoots, readFileSync(path));
    return { source: { path: inRoots }, options: OPTIONS };
  }

  /** A worker process on the harness's home, logging each range task it takes. */
  const worker = (harness: Harness) => startWorker(redis.url, harness.home, workers, { logLevel: 'debug' });

  const rangeTasks = (w: WorkerProcess) =>
    w
      .stderr()
      .split('\n')
      .filter((l) => l.includes('range task started'));

  it('both workers take its range tasks, and the labels are the single-process CLI’s', async () => {
    h = await start(SPLIT, true, redis.url);
    const pair = [await worker(h), await worker(h)];
    const id = await submit(h, source(h));
    const job = await settled(h, id, 120_000);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(await labelsOf(h, id)).toBe(expected);
    // Four ranges, each a features pass, the Lloyd passes and the last pass.
    const taken = pair.map((w) => rangeTasks(w).length);
    expect(
      taken.every((n) => n > 0),
      `range tasks per worker: ${taken}`,
    ).toBe(true);
    expect(taken[0]! + taken[1]!).toBeGreaterThanOrEqual(4 * 3);
    expect(pair.some((w) => w.stderr().includes(job.correlationId))).toBe(true);
    // Nothing of the split is left in the job's directory.
    expect(existsSync(join(h.service.jobs.dir(id), 'split'))).toBe(false);
  }, 150_000);

  it('a worker killed with SIGKILL mid-task: another runs its range again, and the labels are the same', async () => {
    h = await start(SPLIT, true, redis.url);
    const coordinator = await worker(h);
    const id = await submit(h, source(h));
    // The first worker takes the job; the second, started then, can only take range tasks.
    await until(() => coordinator.stderr().includes('task started'), 30_000, 'the job to start');
    const other = await worker(h);
    await until(() => rangeTasks(other).length > 0, 60_000, 'the second worker to take a range task');
    other.child.kill('SIGKILL');
    await other.exited;
    const job = await settled(h, id, 120_000);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(await labelsOf(h, id)).toBe(expected);
  }, 150_000);
  it('its coordinator killed with SIGKILL: another worker runs the job again, and the labels are the same', async () => {
    h = await start(SPLIT, true, redis.url);
    const coordinator = await worker(h);
    const id = await submit(h, source(h));
    // Killed once its own process has run some of the job's range tasks: a pass under way.
    await until(() => rangeTasks(coordinator).length >= 2, 60_000, 'the first range tasks');
    coordinator.child.kill('SIGKILL');
    await coordinator.exited;
    const other = await worker(h);
    const job = await settled(h, id, 120_000);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(await labelsOf(h, id)).toBe(expected);
    // The job ran again on the other worker, as its second run.
    expect(other.stderr()).toMatch(/task started \(attempt 2\)/);
    expect(existsSync(join(h.service.jobs.dir(id), 'split'))).toBe(false);
  }, 150_000);

  it('Redis stopped and started again mid-split (append-only file on): the job still succeeds, with the same labels', async () => {
    h = await start(SPLIT, true, redis.url);
    const pair = [await worker(h), await worker(h)];
    const id = await submit(h, source(h));
    await until(() => pair.some((w) => rangeTasks(w).length > 0), 60_000, 'the first range task');
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1000));
    await redis.restart();
    const job = await settled(h, id, 120_000);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(await labelsOf(h, id)).toBe(expected);
  }, 150_000);
});
