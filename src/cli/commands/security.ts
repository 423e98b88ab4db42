/**
 * `neurocluster keys rotate|retire|list`, `neurocluster model backup|restore|export` and
 * `neurocluster audit verify`: the keyring of encryption at rest, model backups and the age
 * export, and the audit log's integrity.
 */
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { neuroclusterHome } from '../../config/home.js';
import type { Config } from '../../config/schema.js';
import { isNeuroclusterError } from '../../resilience/errors.js';
import { verifyAuditLog } from '../../security/audit.js';
import { backupModel, exportModelForAge, restoreModel } from '../../security/backup.js';
import { isEncrypted, rewrapFile } from '../../security/envelope.js';
import { Keyring } from '../../security/keyring.js';
import { writeFileAtomic } from '../../store/atomic.js';
import { audit, auditLog, errorDetails, outcomeOf } from '../audit.js';
import { cliConfig, type GlobalFlags } from '../context.js';
import { table } from '../output.js';

/** Encrypted files under a directory (recursively), by their magic bytes. */
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
    else if (e.isFile() && !e.name.endsWith('.tmp')) {
      // Eight bytes tell: the file itself (a data file, the store) is never read whole.
      const handle = await open(path, 'r');
      const head = Buffer.alloc(8);
      try {
        await handle.read(head, 0, 8, 0);
      } finally {
        await handle.close();
      }
      if (isEncrypted(head)) out.push(path);
    }
  }
  return out;
}

export function keysCommand(): Command {
  const cmd = new Command('keys').description(
    'the keyring of encryption at rest ($NEUROCLUSTER_HOME/keys/keyring.json)',
  );
  cmd
    .command('rotate')
    .description(
      'make a new current key and re-wrap every encrypted file under $NEUROCLUSTER_HOME (and --dir) with it',
    )
    .option('--dir <dirs...>', 'more directories whose encrypted files (model files, ...) are re-wrapped')
    .action(async (opts: { dir?: string[] }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      const keyring = Keyring.open();
      const from = keyring.current().id;
      let to: string;
      const rewrapped: string[] = [];
      // Files this keyring cannot open (another keyring's, or damaged) are left as they are, and named.
      const skipped: { file: string; reason: string }[] = [];
      try {
        to = keyring.rotate();
        const dirs = [neuroclusterHome(), ...(opts.dir ?? [])];
        const files = new Set((await Promise.all(dirs.map(encryptedFiles))).flat());
        for (const file of files) {
          try {
            if ((await rewrapFile(file, keyring)).from !== to) rewrapped.push(file);
          } catch (error) {
            if (!isNeuroclusterError(error) || error.category !== 'security') throw error;
            skipped.push({ file, reason: error.message });
          }
        }
      } catch (error) {
        audit(config, [
          {
            action: 'keys.rotate',
            resource: keyring.file ?? 'env',
            outcome: 'failure',
            details: errorDetails(error),
          },
        ]);
        throw error;
      }
      audit(config, [
        {
          action: 'keys.rotate',
          resource: keyring.file ?? 'env',
          outcome: 'success',
          details: { from, to, rewrapped: rewrapped.length, skipped: skipped.length },
        },
      ]);
      for (const s of skipped)
        process.stderr.write(`neurocluster: warning: not re-wrapped: ${s.file}: ${s.reason}\n`);
      if (flags.json) process.stdout.write(`${JSON.stringify({ from, to, rewrapped, skipped })}\n`);
      else
        process.stdout.write(
          `current key ${to} (was ${from}); ${rewrapped.length} file(s) re-wrapped, ${skipped.length} skipped\n`,
        );
    });
  cmd
    .command('retire')
    .description('retire a key that is not current: files still wrapped with it can no longer be read')
    .argument('<id>', 'the key id (see keys list)')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      const keyring = Keyring.open();
      try {
        keyring.retire(id);
      } catch (error) {
        audit(config, [
          { action: 'keys.retire', resource: id, outcome: outcomeOf(error), details: errorDetails(error) },
        ]);
        throw error;
      }
      audit(config, [{ action: 'keys.retire', resource: id, outcome: 'success' }]);
      if (flags.json) process.stdout.write(`${JSON.stringify({ retired: id })}\n`);
      else process.stdout.write(`retired ${id}\n`);
    });
  cmd
    .command('list')
    .description('the keys, without their material')
    .action((_opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const keys = Keyring.open().list();
      if (flags.json) process.stdout.write(`${JSON.stringify({ keys })}\n`);
      else
        process.stdout.write(
          table(
            'keyring',
            keys.map((k) => [
              k.id,
              `${k.current ? 'current, ' : ''}created ${k.createdAt}${k.retiredAt ? `, retired ${k.retiredAt}` : ''}`,
            ]),
          ),
        );
    });
  return cmd;
}

export function auditCommand(): Command {
  const cmd = new Command('audit').description(
    'the tamper-evident audit log ($NEUROCLUSTER_HOME/audit/audit.jsonl)',
  );
  cmd
    .command('verify')
    .description(
      'check every record: HMAC, sequence, hash chain, and the head kept in the store; exit 1 at the first bad one',
    )
    .option('--log <file>', 'an audit file to check (the head in the store is checked only for the home log)')
    .action(async (opts: { log?: string }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      const home = auditLog({ ...config, audit: { ...config.audit, enabled: true } })!;
      const verdict = opts.log ? verifyAuditLog(opts.log, Keyring.open()) : home.verify();
      if (flags.json) process.stdout.write(`${JSON.stringify(verdict)}\n`);
      else if (verdict.ok)
        process.stdout.write(`audit log intact: ${verdict.records} records, up to ${verdict.lastSeq}\n`);
      else
        process.stdout.write(
          `audit log broken at ${verdict.file}${verdict.line ? `:${verdict.line}` : ''} (record ${verdict.seq ?? '?'}): ${verdict.reason}\n`,
        );
      if (!verdict.ok) process.exitCode = 1;
    });
  return cmd;
}

export function modelCommand(): Command {
  const cmd = new Command('model').description(
    'model files: backup, restore with integrity checks, export for age',
  );
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
    .requiredOption('--recipient <age1...>', 'the age recipient (age-keygen makes one)')
    .requiredOption('--out <file.age>', 'where the age file is written')
    .action(async (model: string, opts: { recipient: string; out: string }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      await audited(config, 'model.export', model, async () => {
        await writeFileAtomic(opts.out, await exportModelForAge(model, opts.recipient, Keyring.open()));
      });
      if (flags.json) process.stdout.write(`${JSON.stringify({ exported: opts.out })}\n`);
      else process.stdout.write(`${opts.out}\n`);
    });
  return cmd;
}

/** Runs `work` and audits it, successful or not. */
async function audited<T>(
  config: Config,
  action: string,
  resource: string,
  work: () => Promise<T>,
): Promise<T> {
  try {
    const out = await work();
    audit(config, [{ action, resource, outcome: 'success' }]);
    return out;
  } catch (error) {
    audit(config, [{ action, resource, outcome: outcomeOf(error), details: errorDetails(error) }]);
    throw error;
  }
}
