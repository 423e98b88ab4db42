/**
 * `neurocluster worker --queue redis://...`: runs the jobs a `neurocluster serve --queue` puts on
 * the queue, on this machine (docs/distributed.md).
 */
import { Command, Option } from 'commander';
import { type Config, engineSchema } from '../../config/schema.js';
import { NeuroclusterError, UsageError } from '../../core/errors.js';
import { queueUrl, redacted } from '../../distributed/queue.js';
import { startQueueWorker } from '../../distributed/worker.js';
import { defaultRuntime } from '../../runtime/runtime.js';
import { cliConfig, cliLogger, type GlobalFlags } from '../context.js';
import { parseInteger } from '../options.js';

interface WorkerFlags extends GlobalFlags {
  queue?: string;
  concurrency: number;
  backend?: Config['engine']['backend'];
  metricsPort?: number;
  metricsHost: string;
}

export function workerCommand(): Command {
  const backends = engineSchema.shape.backend.unwrap().options;
  return new Command('worker')
    .option(
      '--queue <url>',
      'redis:// or rediss:// URL of the queue `neurocluster serve --queue` puts jobs on (default: NEUROCLUSTER_QUEUE)',
    )
    .addOption(
      new Option('--concurrency <n>', 'jobs run at once, each in a thread of its own')
        .argParser(parseInteger)
        .default(1),
    )
    .addOption(
      new Option(
        '--backend <b>',
        "the backend this machine's jobs run on (default: each job's engine.backend)",
      ).choices(backends),
    )
    .addOption(
      new Option('--metrics-port <n>', 'serve GET /metrics on this port (0: any free one)').argParser(
        parseInteger,
      ),
    )
    .option('--metrics-host <address>', 'address the metrics are served on', '127.0.0.1')
    .action(async (_opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as WorkerFlags;
      const config = await cliConfig(command, []);
      const url = queueUrl(flags.queue ?? process.env.NEUROCLUSTER_QUEUE);
      if (!url)
        throw new UsageError(
          '--queue: which queue? give --queue redis://host:port or set NEUROCLUSTER_QUEUE',
        );
      if (flags.concurrency < 1 || flags.concurrency > 256)
        throw new UsageError(`--concurrency: ${flags.concurrency} is not between 1 and 256`);
      const runtime = defaultRuntime();
      const logger = cliLogger(flags, config);
      // Opened here, once, so that a keyring that cannot be read fails the start, not every task.
      runtime.keyring();
      const stopped = new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      const worker = await startQueueWorker({
        url,
        config,
        concurrency: flags.concurrency,
        backend: flags.backend,
        logger,
        metrics: runtime.metrics,
        env: runtime.environment(),
        metricsPort: flags.metricsPort,
        metricsHost: flags.metricsHost,
      });
      logger.info(`taking jobs from the queue ${config.distributed.queueName} at ${redacted(url)}`);
      process.stdout.write(
        `${JSON.stringify({ queue: config.distributed.queueName, pid: process.pid, ...(worker.metricsUrl ? { metrics: worker.metricsUrl } : {}) })}\n`,
      );
      const reason = await Promise.race([stopped, worker.failed]);
      if (reason instanceof Error) {
        await worker.close().catch(() => undefined);
        throw new NeuroclusterError(
          'NEUROCLUSTER_ERR_IO',
          `the worker stopped taking jobs: ${reason.message}`,
          {
            cause: reason,
          },
        );
      }
      logger.warn(`${reason}: no new jobs; running ones finish first`);
      await worker.close();
    });
}
