/**
 * `neurocluster tenants list|create|delete|set`: the teams a service is shared by (docs/tenancy.md).
 * They act on the store of NEUROCLUSTER_HOME, with the service running or not.
 */
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { neuroclusterHome } from '../../config/home.js';
import { Keyring } from '../../security/keyring.js';
import { JobStore } from '../../service/jobs.js';
import { QUOTA_NAMES, type Quotas, type TenantInfo, Tenants } from '../../service/tenants.js';
import { openStore } from '../../store/db.js';
import { audit } from '../audit.js';
import { cliConfig, type GlobalFlags } from '../context.js';
import { table, warn } from '../output.js';

/** A quota's value on the command line: a whole number, or `none` to drop the tenant's own. */
function quotaValue(value: string): number | 'none' {
  // Not null: commander takes a parser's null for a flag given no value.
  if (value.trim() === 'none') return 'none';
  if (!/^\d+$/.test(value.trim()))
    throw new InvalidArgumentError(`"${value}" is not a whole number of at least 0, or none`);
  return Number(value);
}

const FLAGS: Record<(typeof QUOTA_NAMES)[number], { flag: string; what: string }> = {
  maxActiveJobs: { flag: '--max-active-jobs <n>', what: 'jobs queued or running at once' },
  maxJobsPerHour: { flag: '--max-jobs-per-hour <n>', what: 'jobs submitted in any hour' },
  maxRowsPerJob: { flag: '--max-rows-per-job <n>', what: "rows in one job's data" },
  maxStoredBytes: { flag: '--max-stored-bytes <n>', what: "bytes of its jobs' stored uploads and results" },
};

/** What a tenant gets without a writable keyring: no key of its own, so nothing to destroy. */
const READ_ONLY = (name: string) =>
  `the keyring comes from NEUROCLUSTER_KEYRING_JSON (read-only): tenant ${name} has no key of its own, and its files are wrapped with the current key (nothing to destroy when it is deleted); see docs/tenancy.md`;

const quotasText = (q: Quotas) =>
  Object.entries(q)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'the service quotas';

function show(tenants: Tenants, t: TenantInfo) {
  return { ...t, usage: tenants.usage(t.name) };
}

export function tenantsCommand(): Command {
  const cmd = new Command('tenants').description(
    'the teams that share a service: each with its own keys, jobs and quotas (docs/tenancy.md)',
  );
  cmd
    .command('list')
    .description('the tenants, their own quotas and what they use')
    .action((_opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const tenants = new Tenants(openStore());
      const all = tenants.list().map((t) => show(tenants, t));
      if (flags.json) process.stdout.write(`${JSON.stringify({ tenants: all })}\n`);
      else
        process.stdout.write(
          table(
            'tenants',
            all.map((t) => [
              t.name,
              `${quotasText(t.quotas)}; ${t.usage.activeJobs} active jobs, ${t.usage.jobsLastHour} in the last hour, ${t.usage.storedBytes} bytes stored`,
            ]),
          ),
        );
    });
  cmd
    .command('create')
    .description('make a tenant; `api-keys create --tenant <name>` then gives it keys')
    .argument('<name>', 'the tenant (letters, digits, . _ -; at most 64)')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      const keyring = Keyring.open();
      const made = new Tenants(openStore()).create(name, keyring);
      audit(config, [
        {
          action: 'tenant.create',
          resource: name,
          outcome: 'success',
          details: { tenant: name, keyId: made.keyId ?? null },
        },
      ]);
      if (!keyring.file) warn(READ_ONLY(name));
      process.stdout.write(
        flags.json
          ? `${JSON.stringify(made)}\n`
          : `created tenant ${name}${made.keyId ? `, its files wrapped with its key ${made.keyId}` : ''}\n`,
      );
    });
  const set = cmd
    .command('set')
    .description("set a tenant's own quotas over service.quotas (`none` drops one)")
    .argument('<name>', 'the tenant');
  for (const key of QUOTA_NAMES) set.option(FLAGS[key].flag, FLAGS[key].what, quotaValue);
  set.action(async (name: string, opts: Record<string, number | 'none' | undefined>, command: Command) => {
    const flags = command.optsWithGlobals() as GlobalFlags;
    const config = await cliConfig(command, []);
    const changes = Object.fromEntries(
      QUOTA_NAMES.filter((k) => opts[k] !== undefined).map((k) => [k, opts[k] === 'none' ? null : opts[k]]),
    );
    const tenants = new Tenants(openStore());
    const updated = tenants.set(name, changes);
    audit(config, [
      { action: 'tenant.set', resource: name, outcome: 'success', details: { tenant: name, changes } },
    ]);
    process.stdout.write(
      flags.json ? `${JSON.stringify(show(tenants, updated))}\n` : `${name}: ${quotasText(updated.quotas)}\n`,
    );
  });
  cmd
    .command('delete')
    .description('delete a tenant: its API keys revoked, its jobs and their stored files removed')
    .argument('<name>', 'the tenant')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      const db = openStore();
      const keyring = Keyring.open();
      const removed = new Tenants(db).delete(
        name,
        new JobStore(db, join(neuroclusterHome(), 'service', 'jobs')),
        keyring,
      );
      if (!keyring.file) warn(READ_ONLY(name));
      audit(config, [
        {
          action: 'tenant.delete',
          resource: name,
          outcome: 'success',
          details: { tenant: name, ...removed },
        },
      ]);
      process.stdout.write(
        flags.json
          ? `${JSON.stringify({ name, ...removed })}\n`
          : `deleted tenant ${name}: ${removed.keysRevoked} API key(s) revoked, ${removed.keysDestroyed.length} key(s) destroyed, ${removed.jobsRemoved} job(s) removed\n`,
      );
    });
  return cmd;
}
