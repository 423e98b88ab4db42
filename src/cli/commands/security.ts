/**
 * `neurocluster keys rotate|retire|list`, `neurocluster model backup|restore|export` and
 * `neurocluster audit verify`: the keyring of encryption at rest, model backups and the age
 * export, and the audit log's integrity.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { engineFilesOf, neuroclusterHome } from '../../config/home.js';
import type { Config } from '../../config/schema.js';
import { StagedWrites, writeFileAtomic } from '../../core/atomic.js';
import { DataError, UsageError } from '../../core/errors.js';
import { openToRead } from '../../core/open.js';
import { verifyAuditLog } from '../../security/audit-verify.js';
import { backupModel, exportModelForAge, importModelFromAge, restoreModel } from '../../security/backup.js';
import {
  assertKeyUnused,
  EncryptedFileRegistry,
  encryptFileTracked,
  isEncryptedFile,
  rewrapAll,
} from '../../security/encrypted-files.js';
import { decryptBuffer, decryptFile, isEncrypted } from '../../security/envelope.js';
import { Keyring } from '../../security/keyring.js';
import { openWithinLimits } from '../../security/secure-load.js';
import { Tenants } from '../../service/tenants.js';
import { openStore } from '../../store/db.js';
import { audit, auditLog, errorDetails, outcomeOf } from '../audit.js';
import { cliConfig, type GlobalFlags } from '../context.js';
import { table, warn } from '../output.js';

/** Encrypted files under a directory (recursively), by their magic bytes (eight read of each). */
async function encryptedFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await encryptedFiles(path)));
    else if (e.isFile() && !e.name.endsWith('.tmp') && (await isEncryptedFile(path))) out.push(path);
  }
  return out;
}

export function keysCommand(): Command {
  const cmd = new Command('keys');
  cmd
    .command('rotate')
    .description(
      'make a new current key and re-wrap every encrypted file the engine wrote (and those under $NEUROCLUSTER_HOME and --dir) with it',
    )
    .option(
      '--dir <dirs...>',
      'more directories whose encrypted files (written elsewhere, copied in) are re-wrapped',
    )
    .option(
      '--tenant <tenant>',
      "a service tenant's key instead (docs/tenancy.md): its files are re-wrapped with its new key",
    )
    .action(async (opts: { dir?: string[]; tenant?: string }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      const keyring = Keyring.open();
      const tenant = opts.tenant;
      if (tenant !== undefined) new Tenants(openStore()).need(tenant);
      const from = tenant === undefined ? keyring.current().id : (keyring.tenantKeyId(tenant) ?? null);
      let to = from;
      const report = await audited(
        config,
        'keys.rotate',
        tenant === undefined ? (keyring.file ?? 'env') : `tenant:${tenant}`,
        async () => {
          to = tenant === undefined ? keyring.rotate() : keyring.rotateTenant(tenant);
          const dirs = [neuroclusterHome(), ...(opts.dir ?? [])];
          return rewrapAll(keyring, (await Promise.all(dirs.map(encryptedFiles))).flat());
        },
        (r) => ({
          from,
          to,
          rewrapped: r.rewrapped.length,
          records: r.records.length,
          skipped: r.skipped.length,
          unreachable: r.unreachable.length,
        }),
        { staged: false },
      );
      // Files this keyring cannot open (another keyring's, or damaged) are left as they are, and named.
      for (const s of report.skipped) warn(`not re-wrapped: ${s.file}: ${s.reason}`);
      for (const file of report.unreachable)
        warn(
          `not re-wrapped: ${file}: its directory is not there now (it keeps its key until a rotation reaches it)`,
        );
      if (flags.json)
        process.stdout.write(
          `${JSON.stringify({ ...(tenant === undefined ? {} : { tenant }), from, to, ...report })}\n`,
        );
      else
        process.stdout.write(
          `${tenant === undefined ? 'current key' : `tenant ${tenant}'s key`} ${to} (was ${from ?? 'none'}); ${report.rewrapped.length} file(s) and ${report.records.length} stored record(s) re-wrapped, ${report.skipped.length} skipped, ${report.unreachable.length} out of reach\n`,
        );
    });
  cmd
    .command('retire')
    .description(
      'retire a key that is not current; refused while a file the engine wrote is still wrapped with it',
    )
    .argument('<id>', 'the key id (see keys list)')
    .option('--force', 'retire it even so: files still wrapped with it can no longer be read')
    .action(async (id: string, opts: { force?: boolean }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      const keyring = Keyring.open();
      await audited(
        config,
        'keys.retire',
        id,
        async () => {
          if (!opts.force) await assertKeyUnused(id);
          keyring.retire(id);
        },
        () => ({ force: opts.force === true }),
      );
      if (flags.json) process.stdout.write(`${JSON.stringify({ retired: id })}\n`);
      else process.stdout.write(`retired ${id}\n`);
    });
  cmd
    .command('list')
    .description(
      'the keys, without their material, and how many recorded files and stored records each one wraps',
    )
    .action((_opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const files = new Map<string, number>();
      const registry = new EncryptedFileRegistry();
      for (const f of [...registry.list(), ...registry.records()])
        files.set(f.keyId, (files.get(f.keyId) ?? 0) + 1);
      const keys = Keyring.open()
        .list()
        .map((k) => ({ ...k, files: files.get(k.id) ?? 0 }));
      if (flags.json) process.stdout.write(`${JSON.stringify({ keys })}\n`);
      else
        process.stdout.write(
          table(
            'keyring',
            keys.map((k) => [
              k.id,
              `${k.tenant === undefined ? '' : `tenant ${k.tenant}, `}${k.current ? 'current, ' : ''}created ${k.createdAt}${k.retiredAt ? `, retired ${k.retiredAt}` : ''}; ${k.files} file(s) or record(s)`,
            ]),
          ),
        );
    });
  return cmd;
}

/** `neurocluster encrypt <file> --out <file>`: any file encrypted with the keyring, streaming. */
export function encryptCommand(): Command {
  return new Command('encrypt')
    .argument('<file>', 'the file to encrypt')
    .requiredOption('--out <file>', 'where the encrypted file is written (the same path replaces it)')
    .action(async (file: string, opts: { out: string }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      await audited(
        config,
        'file.encrypt',
        file,
        async () => {
          // The file read is data: held to the data roots like the input of cluster, opened once
          // and checked by its descriptor. Encryption streams, so no size limit applies.
          const source = await openWithinLimits(file, {
            dataRoots: config.security.dataRoots,
            maxFileBytes: Number.POSITIVE_INFINITY,
          });
          try {
            await encryptFileTracked(source, opts.out, Keyring.open());
          } finally {
            await source.close();
          }
        },
        () => ({ out: opts.out }),
      );
      if (flags.json) process.stdout.write(`${JSON.stringify({ encrypted: opts.out })}\n`);
      else process.stdout.write(`${opts.out}\n`);
    });
}

/**
 * `neurocluster decrypt <file> [--out <file>]`: an encrypted file (a model, a result, a backup)
 * in plain; on standard output only once the whole file has authenticated.
 */
export function decryptCommand(): Command {
  return new Command('decrypt')
    .argument('<file>', 'the encrypted file')
    .option('--out <file>', 'write it here (streaming) instead of standard output')
    .action(async (file: string, opts: { out?: string }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      if (flags.json && !opts.out) {
        throw new UsageError(
          'decrypt writes the plain bytes to standard output, which --json keeps for one JSON line: give --out',
        );
      }
      const config = await cliConfig(command, []);
      const keyring = Keyring.open();
      const plain = await audited(
        config,
        'file.decrypt',
        file,
        async () => {
          if (opts.out) return void (await decryptFile(file, opts.out, keyring));
          return decryptBuffer(await readEncrypted(file), keyring);
        },
        () => ({ out: opts.out ?? '<stdout>' }),
      );
      if (plain) process.stdout.write(plain);
      else if (flags.json) process.stdout.write(`${JSON.stringify({ decrypted: opts.out })}\n`);
      else process.stdout.write(`${opts.out}\n`);
    });
}

/** An encrypted file's bytes; a plain one is a usage error, a missing one a read error. */
async function readEncrypted(file: string): Promise<Buffer> {
  // Opened once, non-blocking: a FIFO or a device is refused, never waited on.
  const handle = await openToRead(file);
  let bytes: Buffer;
  try {
    bytes = await handle.readFile();
  } catch (cause) {
    throw new DataError('NEUROCLUSTER_ERR_DATA_READ', `cannot read ${file}: ${(cause as Error).message}`, {
      cause,
      location: { file },
    });
  } finally {
    await handle.close();
  }
  if (!isEncrypted(bytes)) throw new UsageError(`${file} is not a neurocluster encrypted file`);
  return bytes;
}

export function auditCommand(): Command {
  const cmd = new Command('audit');
  cmd
    .command('verify')
    .description(
      'check every record: HMAC, sequence, hash chain, and the head kept in the store; exit 1 at the first bad one',
    )
    .option(
      '--log <file>',
      "an audit file to check; the home's own log (by real path, however it is named) is checked against the head in the store",
    )
    .action(async (opts: { log?: string }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      const home = auditLog({ ...config, audit: { ...config.audit, enabled: true } })!;
      // Another file (a copy, an archive) has no head of its own: its chain alone is checked.
      const alone = opts.log !== undefined && !home.isThisLog(opts.log);
      const verdict = alone ? verifyAuditLog(opts.log!, Keyring.open()) : home.verify();
      if (flags.json) process.stdout.write(`${JSON.stringify(verdict)}\n`);
      else if (verdict.ok)
        process.stdout.write(
          `audit log intact: ${verdict.records} records, up to ${verdict.lastSeq}${alone ? " (not this home's log: no head to check it against)" : ''}\n`,
        );
      else
        process.stdout.write(
          `audit log broken at ${verdict.file}${verdict.line ? `:${verdict.line}` : ''} (record ${verdict.seq ?? '?'}): ${verdict.reason}\n`,
        );
      if (!verdict.ok) process.exitCode = 1;
    });
  return cmd;
}

export function modelCommand(): Command {
  const cmd = new Command('model');
  cmd
    .command('backup')
    .description('back a model file up into <dir>, encrypted with the keyring, with a manifest')
    .argument('<dir>', 'where the backup is written')
    .requiredOption('--model <file>', 'the model file to back up')
    .action(async (dir: string, opts: { model: string }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      const path = await audited(config, 'model.backup', opts.model, () =>
        backupModel(opts.model, dir, Keyring.open()),
      );
      if (flags.json) process.stdout.write(`${JSON.stringify({ backup: path })}\n`);
      else process.stdout.write(`${path}\n`);
    });
  cmd
    .command('restore')
    .description(
      'check a backup whole (encryption, manifest hash, model checksum), then write the model file',
    )
    .argument('<file>', 'a .ncbackup file')
    .requiredOption('--to <model>', 'where the model file is written')
    .action(async (file: string, opts: { to: string }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      const manifest = await audited(config, 'model.restore', file, () =>
        restoreModel(file, opts.to, Keyring.open(), config.security.encryptModels),
      );
      if (flags.json) process.stdout.write(`${JSON.stringify({ restored: opts.to, manifest })}\n`);
      else
        process.stdout.write(
          `restored ${opts.to} from ${manifest.source} (backed up ${manifest.createdAt})\n`,
        );
    });
  cmd
    .command('export')
    .description('the model document encrypted to an age recipient, for `age -d -i <identity>`')
    .argument('<model>', 'the model file')
    // Not `<age1...>`: commander reads a trailing `...` as a list of values.
    .requiredOption('--recipient <age1xxx>', 'the age recipient, age1... (age-keygen makes one)')
    .requiredOption('--out <file.age>', 'where the age file is written')
    .action(async (model: string, opts: { recipient: string; out: string }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      await audited(config, 'model.export', model, async () => {
        await writeFileAtomic(opts.out, await exportModelForAge(model, opts.recipient, Keyring.open()), {
          engine: engineFilesOf(),
        });
      });
      if (flags.json) process.stdout.write(`${JSON.stringify({ exported: opts.out })}\n`);
      else process.stdout.write(`${opts.out}\n`);
    });
  cmd
    .command('import')
    .description('a model exported for age, decrypted with its identity and written under this keyring')
    .argument('<file.age>', 'the exported model (model export, on the machine that made it)')
    .requiredOption('--identity <key.txt>', 'the age identity file (AGE-SECRET-KEY-1..., from age-keygen)')
    .requiredOption('--to <model>', 'where the model file is written')
    .action(async (file: string, opts: { identity: string; to: string }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      await audited(config, 'model.import', file, () =>
        importModelFromAge(file, opts.identity, opts.to, Keyring.open(), config.security.encryptModels),
      );
      if (flags.json) process.stdout.write(`${JSON.stringify({ imported: opts.to })}\n`);
      else process.stdout.write(`${opts.to}\n`);
    });
  return cmd;
}

/**
 * Runs `work` and audits it, successful (with `details` of its result) or not. The files `work`
 * writes stop at their complete temporaries until the record is appended (src/core/atomic.ts,
 * StagedWrites): a record that cannot be written removes them, so no output appears unaudited.
 * `keys rotate` is not staged: its re-wraps check, just before each rename, that nobody replaced
 * the file meanwhile, and a rename held back would undo that check.
 */
async function audited<T>(
  config: Config,
  action: string,
  resource: string,
  work: () => Promise<T>,
  details?: (result: T) => Record<string, unknown>,
  { staged = true }: { staged?: boolean } = {},
): Promise<T> {
  const stage = new StagedWrites();
  let out: T;
  try {
    out = await (staged ? stage.run(work) : work());
  } catch (error) {
    await stage.discard();
    audit(config, [{ action, resource, outcome: outcomeOf(error), details: errorDetails(error) }]);
    throw error;
  }
  try {
    audit(config, [{ action, resource, outcome: 'success', ...(details ? { details: details(out) } : {}) }]);
  } catch (error) {
    await stage.discard();
    throw error;
  }
  try {
    await stage.commit();
  } catch (error) {
    audit(config, [{ action, resource, outcome: 'failure', details: errorDetails(error) }]);
    throw error;
  }
  return out;
}
