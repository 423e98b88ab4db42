/**
 * What the queue tests share: real `neurocluster worker` processes on a test Redis, and the calls
 * they make to the service under test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { expect } from 'vitest';
import { CLI } from '../helpers.js';
import type { Harness } from '../service/harness.js';

export interface WorkerProcess {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<unknown>;
}

/**
 * A worker process on `home` (its keyring, its jobs' directories) taking tasks from `url`, with
 * short locks (2 s) so a dead one's tasks go to another soon; pushed onto `into` for the cleanup.
 */
export async function startWorker(
  url: string,
  home: string,
  into: WorkerProcess[],
  options: { logLevel?: string; env?: Record<string, string> } = {},
): Promise<WorkerProcess> {
  const child = spawn(
    process.execPath,
    [
      CLI,
      '--log-format',
      'json',
      '--log-level',
      options.logLevel ?? 'info',
      'worker',
      '--queue',
      url,
      '--metrics-port',
      '0',
    ],
    {
      env: {
        ...process.env,
        NEUROCLUSTER_HOME: home,
        NEUROCLUSTER_DISTRIBUTED__LOCK_DURATION: '2s',
        NEUROCLUSTER_DISTRIBUTED__STALLED_INTERVAL: '1s',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = once(child, 'exit');
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  let stdout = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      stdout += d;
      if (stdout.includes('\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker exited ${code}: ${stderr}`)));
  });
  const line = JSON.parse(stdout.split('\n')[0]!) as { queue: string; pid: number; metrics: string };
  expect(line).toEqual({
    queue: 'neurocluster',
    pid: child.pid,
    metrics: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/),
  });
  const w = { child, stderr: () => stderr, exited };
  into.push(w);
  return w;
}

/** Kills every worker of `workers` (SIGKILL) and waits for each to exit. */
export async function killAll(workers: WorkerProcess[]): Promise<void> {
  for (const w of workers.splice(0)) {
    w.child.kill('SIGKILL');
    await w.exited;
  }
}

/** Submits a job; its id. */
export async function submit(harness: Harness, body: unknown): Promise<string> {
  const r = await harness.service.app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: harness.auth,
    payload: body as Record<string, unknown>,
  });
  expect(r.statusCode, r.body).toBe(202);
  return (r.json() as { id: string }).id;
}

/** A job's labels file, as the API serves it. */
export async function labelsOf(harness: Harness, id: string): Promise<string> {
  const r = await harness.service.app.inject({ url: `/v1/jobs/${id}/labels`, headers: harness.auth });
  expect(r.statusCode, r.body).toBe(200);
  return r.body;
}

/** Waits until `check` holds, polling every 50 ms; fails after `ms` naming `what`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
