/** A service in process on a fresh home, for the service's tests: started, keyed, stopped. */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '../../src/config/load.js';
import { QueueRunner } from '../../src/distributed/dispatcher.js';
import { createLogger } from '../../src/observability/logger.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { ApiKeys } from '../../src/service/api-keys.js';
import { buildService, type Service } from '../../src/service/app.js';
import type { Job } from '../../src/service/jobs.js';
import type { RunnerDeps } from '../../src/service/runner.js';
import { openStore, storeFile } from '../../src/store/db.js';
import { tempDir } from '../helpers.js';

export const ROWS = [
  [1, 2],
  [2, 1],
  [1.5, 1.5],
  [8, 9],
  [9, 8],
  [8.5, 8.5],
  [1, 1],
  [9, 9],
];
export const KMEANS = { kmeans: { nClusters: 2 }, engine: { method: 'kmeans', seed: 3 } } as const;

export interface Harness {
  service: Service;
  home: string;
  data: string;
  key: string;
  auth: { authorization: string };
}

/**
 * A service whose data roots are `<home>/data`, with one API key; `run` false leaves its runner
 * stopped; with `queue` (a Redis URL) its jobs go to the queue, for workers to run; given `home`,
 * it starts again on a home a stopped service used (with a key of its own).
 */
export async function start(
  config: Record<string, unknown> = {},
  run = true,
  queue?: string,
  home = tempDir(),
): Promise<Harness> {
  const data = join(home, 'data');
  const again = existsSync(data);
  mkdirSync(data, { recursive: true });
  const runtime = createRuntime({ env: { ...process.env, NEUROCLUSTER_HOME: home } });
  const service = await buildService({
    config: resolveConfig({ security: { dataRoots: [data] }, ...config }),
    runtime,
    logger: createLogger({ level: 'silent' }),
    keyring: runtime.keyring(() => {}),
    ...(queue
      ? { runner: (deps: RunnerDeps) => new QueueRunner({ ...deps, url: queue, sweepMs: 500 }) }
      : {}),
  });
  const { key } = new ApiKeys(openStore(storeFile(home))).create(again ? `tester-${Date.now()}` : 'tester');
  if (run) await service.runner.start();
  return { service, home, data, key, auth: { authorization: `Bearer ${key}` } };
}

/** The job once it is final (polled from the store), within `ms`. */
export async function settled(h: Harness, id: string, ms = 15_000): Promise<Job> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; ) {
    const job = h.service.jobs.get(id);
    if (['succeeded', 'failed', 'cancelled'].includes(job.state)) return job;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`job ${id} did not finish in ${ms} ms`);
}

/** Drains and closes a service a test started. */
export async function stop(h: Pick<Harness, 'service'>): Promise<void> {
  await h.service.shutdown();
  await h.service.app.close();
}
