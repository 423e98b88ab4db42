/**
 * The commands of `neurocluster`, in the order the help lists them. Each is loaded when it is the
 * one asked for: the root's help, `--version` and a mistyped command name load none of them, and
 * `cluster` does not load what `keys` needs. `description` and `term` are what the root's help
 * shows without loading the command (test/cli/commands.test.ts checks `term` against the command).
 */
import type { Command } from 'commander';

export interface CommandEntry {
  readonly name: string;
  readonly description: string;
  /** The command as the root's help lists it: its name, `[options]` and its arguments. */
  readonly term: string;
  readonly load: () => Promise<Command>;
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'cluster',
    description: 'cluster the rows of a CSV, JSON, JSON Lines, Parquet or NPY file',
    term: 'cluster [options] <file>',
    load: async () => (await import('./cluster.js')).clusterCommand(),
  },
  {
    name: 'predict',
    description: 'label the rows of a file with a model saved by `cluster --save-model`',
    term: 'predict [options] <file>',
    load: async () => (await import('./predict.js')).predictCommand(),
  },
  {
    name: 'score',
    description: 'score a labelling of the rows of a file (features as read, no standardization)',
    term: 'score [options] <file>',
    load: async () => (await import('./score.js')).scoreCommand(),
  },
  {
    name: 'bench',
    description: 'time a benchmark workload; --compare runs the reference too and prints the ratio',
    term: 'bench [options] <workload>',
    load: async () => (await import('./bench.js')).benchCommand(),
  },
  {
    name: 'health',
    description:
      'readiness checks: backends, circuit breakers ($NEUROCLUSTER_HOME/state/breakers.json), resources, storage',
    term: 'health',
    load: async () => (await import('./health.js')).healthCommand(),
  },
  {
    name: 'metrics',
    description: 'print the metrics registry (Prometheus text format), or --markdown: the list of metrics',
    term: 'metrics [options]',
    load: async () => (await import('./metrics.js')).metricsCommand(),
  },
  {
    name: 'privacy',
    description: 'differential-privacy budgets',
    term: 'privacy',
    load: async () => (await import('./privacy.js')).privacyCommand(),
  },
  {
    name: 'keys',
    description: 'the keyring of encryption at rest ($NEUROCLUSTER_HOME/keys/keyring.json)',
    term: 'keys',
    load: async () => (await import('./security.js')).keysCommand(),
  },
  {
    name: 'encrypt',
    description: 'encrypt a file with the keyring (a data file stays readable by cluster, predict and score)',
    term: 'encrypt [options] <file>',
    load: async () => (await import('./security.js')).encryptCommand(),
  },
  {
    name: 'decrypt',
    description: 'write an encrypted file (result, labels, model, backup) in plain, after checking all of it',
    term: 'decrypt [options] <file>',
    load: async () => (await import('./security.js')).decryptCommand(),
  },
  {
    name: 'model',
    description: 'model files: backup, restore with integrity checks, export for age and import from it',
    term: 'model',
    load: async () => (await import('./security.js')).modelCommand(),
  },
  {
    name: 'audit',
    description: 'the tamper-evident audit log ($NEUROCLUSTER_HOME/audit/audit.jsonl)',
    term: 'audit',
    load: async () => (await import('./security.js')).auditCommand(),
  },
  {
    name: 'breakers',
    description: 'circuit breakers of the backends',
    term: 'breakers',
    load: async () => (await import('./health.js')).breakersCommand(),
  },
  {
    name: 'serve',
    description:
      'the job service: an HTTP API with probes and metrics, on the embedded store (docs/service.md)',
    term: 'serve [options]',
    load: async () => (await import('./serve.js')).serveCommand(),
  },
  {
    name: 'worker',
    description:
      'run the jobs of a `serve --queue` service, taken from its BullMQ queue in Redis (docs/distributed.md)',
    term: 'worker [options]',
    load: async () => (await import('./worker.js')).workerCommand(),
  },
  {
    name: 'api-keys',
    description: "the service's API keys: create (shown once), list, revoke",
    term: 'api-keys',
    load: async () => (await import('./serve.js')).apiKeysCommand(),
  },
  {
    name: 'tenants',
    description: 'the teams that share a service: list, create, delete (revokes, removes), set quotas',
    term: 'tenants',
    load: async () => (await import('./tenants.js')).tenantsCommand(),
  },
  {
    name: 'config',
    description: 'the configuration document: its schema, and checking a file',
    term: 'config',
    load: async () => (await import('./config.js')).configCommand(),
  },
];

/**
 * The command an argument list asks for (`help <command>` asks for that command's help), skipping
 * the root's options and the values of those that take one; undefined when none is named.
 */
export function requestedCommand(args: readonly string[], root: Command): string | undefined {
  const takesValue = new Set(
    root.options.filter((o) => o.required || o.optional).flatMap((o) => [o.long, o.short]),
  );
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return args[i + 1];
    if (arg.startsWith('-')) {
      if (takesValue.has(arg)) i++;
      continue;
    }
    if (arg === 'help' && !help) {
      help = true;
      continue;
    }
    return arg;
  }
  return undefined;
}
