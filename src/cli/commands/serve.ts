/**
 * `neurocluster serve`: the job service on the embedded store (docs/service.md), and
 * `neurocluster api-keys`: the keys its `/v1` routes take.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { UsageError } from '../../core/errors.js';
import { QueueRunner } from '../../distributed/dispatcher.js';
import { queueUrl, redacted } from '../../distributed/queue.js';
import { defaultRuntime } from '../../runtime/runtime.js';
import { ApiKeys } from '../../service/api-keys.js';
import { buildService } from '../../service/app.js';
import type { RunnerDeps } from '../../service/runner.js';
import { openStore } from '../../store/db.js';
import { audit } from '../audit.js';
import { cliConfig, cliLogger, type GlobalFlags } from '../context.js';
import { parseInteger } from '../options.js';
import { table } from '../output.js';

interface ServeFlags extends GlobalFlags {
  host?: string;
  port?: number;
  tlsCert?: string;
  tlsKey?: string;
  insecure?: boolean;
  queue?: string;
}

/** Loopback: 127.0.0.0/8, ::1 and localhost; anything else is reachable from the network. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(cause as Error).message}`, undefined, { cause });
  }
}

export function serveCommand(): Command {
  return new Command('serve')
    .addOption(new Option('--host <address>', 'address to listen on (default: service.host, 127.0.0.1)'))
    .addOption(
      new Option(
        '--port <n>',
        'port to listen on, 0 for any free one (default: service.port, 8080)',
      ).argParser(parseInteger),
    )
    .option('--tls-cert <file>', 'TLS certificate (PEM); with --tls-key, the service speaks HTTPS')
    .option('--tls-key <file>', 'TLS private key (PEM)')
    .option('--insecure', 'listen on a non-loopback address without TLS')
    .option(
      '--queue <url>',
      'redis:// or rediss:// URL of a BullMQ queue: jobs run on `neurocluster worker` processes (default: NEUROCLUSTER_QUEUE; none: the in-process pool)',
    )
    .action(async (_opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as ServeFlags;
      const config = await cliConfig(command, []);
      const host = flags.host ?? config.service.host;
      const port = flags.port ?? config.service.port;
      if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined))
        throw new UsageError('--tls-cert and --tls-key go together');
      const tls =
        flags.tlsCert && flags.tlsKey
          ? { cert: readPem(flags.tlsCert, '--tls-cert'), key: readPem(flags.tlsKey, '--tls-key') }
          : undefined;
      if (!tls && !isLoopback(host) && !flags.insecure)
        throw new UsageError(
          `--host ${host} is reachable from the network: give --tls-cert and --tls-key, or --insecure to serve plain HTTP`,
        );
      const queue = queueUrl(flags.queue ?? process.env.NEUROCLUSTER_QUEUE);
      const runtime = defaultRuntime();
      const logger = cliLogger(flags, config);
      // One service per home: two would both take the jobs the last one left running.
      const release = lockHome(runtime.home);
      const service = await buildService({
        config,
        runtime,
        logger,
        keyring: runtime.keyring(),
        ...(queue ? { runner: (deps: RunnerDeps) => new QueueRunner({ ...deps, url: queue }) } : {}),
        ...(tls ? { tls } : {}),
      });
      const stopped = new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      try {
        // Listening first: a port in use fails the start before any job is taken.
        const url = await service.app.listen({ host, port });
        const { requeued, abandoned } = await service.runner.start();
        if (requeued > 0) logger.warn(`${requeued} job(s) cut off by the last stop run again`);
        if (abandoned > 0) logger.warn(`${abandoned} job(s) cut off too many times failed`);
        if (queue) logger.info(`jobs go to the queue ${config.distributed.queueName} at ${redacted(queue)}`);
        process.stdout.write(`${JSON.stringify({ url, pid: process.pid })}\n`);
        const signal = await stopped;
        logger.warn(`${signal}: no new jobs; running ones have ${config.service.shutdownGrace} to finish`);
        await service.shutdown();
        await service.app.close();
      } finally {
        release();
      }
    });
}

/**
 * Holds `$NEUROCLUSTER_HOME/service/serve.lock` (its pid inside) for as long as the service runs;
 * refused while another live process holds it. A lock left by a process that died is taken over.
 */
export function lockHome(home: string): () => void {
  const dir = join(home, 'service');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'serve.lock');
  for (let tries = 0; ; tries++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return () => rmSync(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 0) throw error;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && alive(pid))
        throw new UsageError(
          `another neurocluster serve (pid ${pid}) runs on ${home}: one service per NEUROCLUSTER_HOME`,
        );
      rmSync(file, { force: true });
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function apiKeysCommand(): Command {
  const cmd = new Command('api-keys');
  cmd
    .command('create')
    .description('make a key for the service; it is printed once and stored only as a salted hash')
    .requiredOption('--name <name>', 'the key name: the actor of its audit records')
    .option('--tenant <tenant>', 'the tenant it belongs to (made by `tenants create`)', 'default')
    .action(async (opts: { name: string; tenant: string }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      const made = new ApiKeys(openStore()).create(opts.name, opts.tenant);
      audit(config, [
        {
          action: 'apikey.create',
          resource: made.name,
          outcome: 'success',
          details: { tenant: made.tenant },
        },
      ]);
      if (flags.json)
        process.stdout.write(`${JSON.stringify({ name: made.name, tenant: made.tenant, key: made.key })}\n`);
      else process.stdout.write(`${made.key}\n(shown once: keep it; the service stores only its hash)\n`);
    });
  cmd
    .command('list')
    .description('the keys: names, tenants, when made and revoked (never the keys)')
    .action((_opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const keys = new ApiKeys(openStore()).list();
      if (flags.json) process.stdout.write(`${JSON.stringify({ keys })}\n`);
      else
        process.stdout.write(
          table(
            'api keys',
            keys.map((k) => [
              k.name,
              `${k.tenant}, made ${k.createdAt}${k.revokedAt ? `, revoked ${k.revokedAt}` : ''}`,
            ]),
          ),
        );
    });
  cmd
    .command('revoke')
    .description('revoke a key: the service answers its requests with 403 from now on')
    .argument('<name>', 'the key name')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      const revoked = new ApiKeys(openStore()).revoke(name);
      audit(config, [{ action: 'apikey.revoke', resource: name, outcome: 'success' }]);
      if (flags.json) process.stdout.write(`${JSON.stringify(revoked)}\n`);
      else process.stdout.write(`revoked ${name}\n`);
    });
  return cmd;
}
