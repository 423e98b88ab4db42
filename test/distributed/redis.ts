/**
 * The queue tests' Redis (bench/redis.ts), its directory a test temporary removed after the run.
 * Absent, the tests that need it are skipped, unless REQUIRE_REDIS=1 (`.ci/run` installs it and
 * requires it).
 */
import { spawnSync } from 'node:child_process';
import { REDIS_SERVER, type RedisServer, startRedis as startIn } from '../../bench/redis.js';
import { tempDir } from '../helpers.js';

export type { RedisServer };
export const redisAvailable = spawnSync(REDIS_SERVER, ['--version']).status === 0;
export const redisRequired = process.env.REQUIRE_REDIS === '1';

export function startRedis(): Promise<RedisServer> {
  return startIn(tempDir());
}
