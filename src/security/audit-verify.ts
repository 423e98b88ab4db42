/**
 * Verifying an audit log: every record's HMAC, sequence number and `prev` hash across the rotated
 * files and the current one, checkpoints for what was pruned, and the head kept in the store.
 */
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  type AuditHead,
  type AuditRecord,
  equalHex,
  GENESIS,
  rotatedFiles,
  sha256,
  signedPart,
} from './audit-record.js';
import type { Keyring } from './keyring.js';

export type AuditVerdict =
  | {
      readonly ok: true;
      readonly records: number;
      readonly files: readonly string[];
      readonly lastSeq: number;
    }
  | {
      readonly ok: false;
      readonly records: number;
      readonly files: readonly string[];
      /** The first bad record: its file, line (1-based) and sequence number when readable. */
      readonly file: string;
      readonly line: number;
      readonly seq: number | undefined;
      readonly reason: string;
    };

/**
 * Verifies a log: the rotated files next to `file`, then `file` itself; each record's HMAC, its
 * sequence number (one more than the last), and its `prev` (the hash of the last). The first
 * record may follow a pruned file when a valid checkpoint says so. The last record must match the
 * head from the store, when one is given; with `requireHead` (the log of a home, whose store keeps
 * its head), a log with records and no head fails. A record saying the store had lost the head
 * (`audit.head-lost`) fails it too, once the rest of the chain is found intact.
 */
export function verifyAuditLog(
  file: string,
  keyring: Keyring,
  head?: AuditHead,
  options: { readonly requireHead?: boolean } = {},
): AuditVerdict {
  const files = [...rotatedFiles(dirname(file)), ...(existsSync(file) ? [file] : [])];
  let prevHash: string | undefined;
  let prevSeq: number | undefined;
  let records = 0;
  const checkpoints = new Set<string>();
  const pending: { file: string; line: number; seq: number; prev: string }[] = [];
  let headLost: { file: string; line: number; seq: number } | undefined;
  const hmacOf = (keyId: string, text: string) =>
    createHmac('sha256', keyring.derived(keyId, 'audit', true))
      .update(text)
      .digest('hex');
  const bad = (f: string, line: number, seq: number | undefined, reason: string): AuditVerdict => ({
    ok: false,
    records,
    files,
    file: f,
    line,
    seq,
    reason,
  });
  for (const f of files) {
    const lines = readFileSync(f, 'utf8').split('\n');
    if (lines.at(-1) === '') lines.pop();
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      let r: AuditRecord;
      try {
        r = JSON.parse(line) as AuditRecord;
      } catch {
        return bad(f, i + 1, undefined, 'not a JSON record (edited or truncated)');
      }
      let expected: string;
      try {
        expected = hmacOf(String(r.keyId), signedPart(r));
      } catch (e) {
        return bad(f, i + 1, r.seq, (e as Error).message);
      }
      if (typeof r.hmac !== 'string' || !equalHex(r.hmac, expected)) {
        return bad(f, i + 1, r.seq, 'its HMAC does not match (the record was edited)');
      }
      if (prevSeq === undefined) {
        // The start of what remains: the genesis, or the last record of a pruned file.
        if (r.seq !== 1 || r.prev !== GENESIS)
          pending.push({ file: f, line: i + 1, seq: r.seq, prev: r.prev });
      } else {
        if (r.seq !== prevSeq + 1) {
          return bad(
            f,
            i + 1,
            r.seq,
            `sequence number ${r.seq} follows ${prevSeq} (records removed or reordered)`,
          );
        }
        if (r.prev !== prevHash)
          return bad(f, i + 1, r.seq, 'its prev hash is not the hash of the record before it');
      }
      if (r.action === 'audit.head-lost') headLost ??= { file: f, line: i + 1, seq: r.seq };
      if (r.action === 'audit.checkpoint' && typeof r.details.lastHash === 'string') {
        checkpoints.add(`${r.details.lastSeq}\0${r.details.lastHash}`);
      }
      prevSeq = r.seq;
      prevHash = sha256(line);
      records++;
    }
  }
  for (const p of pending) {
    if (!checkpoints.has(`${p.seq - 1}\0${p.prev}`)) {
      return bad(
        p.file,
        p.line,
        p.seq,
        'the log does not start at the beginning and no checkpoint vouches for what was pruned',
      );
    }
  }
  const where = files.at(-1) ?? file;
  if (!head && options.requireHead && records > 0) {
    return bad(
      where,
      0,
      undefined,
      `the store has no head for this log, which has ${records} records (the store was deleted or replaced)`,
    );
  }
  if (head) {
    let headOk: boolean;
    try {
      headOk = equalHex(head.hmac, hmacOf(head.keyId, `head\0${head.seq}\0${head.hash}`));
    } catch {
      headOk = false;
    }
    if (!headOk) return bad(where, 0, head.seq, 'the head kept in the store is not signed by the keyring');
    // A new log's head is the genesis: sequence 0, before any record.
    if ((prevSeq ?? 0) !== head.seq || (prevHash ?? GENESIS) !== head.hash) {
      return bad(
        where,
        0,
        head.seq,
        `the store's head is record ${head.seq}, the file ends at ${prevSeq ?? 'nothing'} (the newest records were removed or replaced)`,
      );
    }
  }
  if (headLost) {
    return bad(
      headLost.file,
      headLost.line,
      headLost.seq,
      "the store's head for this log was missing when this record was written (the store was deleted or replaced): the records before it are not vouched for by a head",
    );
  }
  return { ok: true, records, files, lastSeq: prevSeq ?? 0 };
}
