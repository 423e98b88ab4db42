/**
 * The audit log: one JSON line per security-relevant act (data read, model written, budget spent,
 * keys touched) in `$NEUROCLUSTER_HOME/audit/audit.jsonl`, append-only and tamper-evident.
 *
 * Each record carries its sequence number, the SHA-256 hash of the record before it (`prev`) and an
 * HMAC-SHA256 of itself under a key derived from the keyring's current key (`keyId` names it).
 * The head (last sequence number and hash, with its own HMAC) is also kept in the SQLite store, keyed
 * by the real path of the log's file, so cutting the newest records off the file (or replacing it
 * with an older copy, emptying or removing it) is detected too.
 *
 * An append is one recoverable step, under the store's write lock (an IMMEDIATE transaction, which
 * the operating system releases when a process dies): repair, read the head, append the line and
 * fsync it, move the head, commit. A kill or a full disk can stop it at any point; what that leaves
 * is repaired, under the same lock, before the next append or verification: a torn last line (the
 * write cut short) is cut off, and a complete line past the head that chains from it (signed by
 * the keyring, next sequence number, `prev` the head's hash: the line is its own write-ahead
 * intent) is adopted, the head moved over it. Either is recorded by an `audit.repair` record. A
 * store with no head while the log has records (the store was deleted or replaced) is not repaired
 * but recorded (`audit.head-lost`), and such a log never verifies again. A new log's head
 * (sequence 0, the genesis hash) is committed before its first line, so a kill during the first
 * append is repaired like any other.
 *
 * No transaction writes more than one line, or one group of lines (a group commit, `appendAll`:
 * the records of concurrent requests in one write and one fsync, the first counting the group in
 * its signed `batch`), so a kill leaves one line, or one group, past the committed head at most,
 * and more is a store rolled back, refused. Repairs are therefore steps of their own, each
 * committed before the next: the adoption (or the cut) is committed with the repair it owes kept
 * next to the head (signed like it), then the `audit.repair` record is written and the debt
 * cleared in one transaction, and only then the record asked for in another. A kill while the
 * repair record is being written leaves that record past the head, adopted (and the debt settled)
 * by the next repair.
 *
 * Retention: when the file passes `maxBytes` it is renamed `audit-<last seq>.jsonl` and a new one
 * continues the chain; rotated files older than `retentionDays` are deleted, each deletion
 * recorded by a signed checkpoint record carrying the deleted file's last sequence number and
 * hash, so that what remains still verifies from there.
 *
 * Risk scores (0-100, documented in docs/security.md): a base per action, plus 30 when the outcome is a
 * failure or a denial, capped at 100.
 */
import { createHmac } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { neuroclusterHome } from '../config/home.js';
import { realPathOf } from '../core/atomic.js';
import { currentCorrelationId } from '../core/context.js';
import {
  isNeuroclusterError,
  type NeuroclusterError,
  OutputError,
  SecurityError,
  storageError,
} from '../core/errors.js';
import { type Db, openStore, statement, storeFile } from '../store/db.js';
import { AnomalyDetector } from './anomaly.js';
import {
  type AuditEvent,
  type AuditHead,
  type AuditOutcome,
  type AuditRecord,
  equalHex,
  GENESIS,
  parseRecord,
  rotatedFiles,
  sha256,
  signedPart,
} from './audit-record.js';
import { type AuditVerdict, verifyAuditLog } from './audit-verify.js';
import { Keyring } from './keyring.js';

/** Base risk of each action; anything else is 10. */
export const ACTION_RISK: Readonly<Record<string, number>> = {
  'data.read': 10,
  'data.denied': 40,
  'model.read': 10,
  'model.write': 20,
  'model.backup': 20,
  'model.restore': 40,
  'model.export': 40,
  'model.import': 40,
  'result.write': 20,
  'file.encrypt': 20,
  'file.decrypt': 40,
  'privacy.spend': 30,
  'keys.create': 50,
  'keys.rotate': 50,
  'keys.retire': 60,
  'tenant.create': 40,
  'tenant.set': 40,
  'tenant.delete': 60,
  'audit.checkpoint': 20,
  'audit.repair': 30,
  'audit.head-lost': 70,
  'security.anomaly': 70,
};

export function riskOf(action: string, outcome: AuditOutcome): number {
  return Math.min(100, (ACTION_RISK[action] ?? 10) + (outcome === 'success' ? 0 : 30));
}

export interface AuditSettings {
  readonly enabled: boolean;
  readonly retentionDays: number;
  readonly maxBytes: number;
}

export class AuditLog {
  readonly file: string;
  private headKey: string | undefined;

  constructor(
    private readonly dir: string,
    private readonly keyring: Keyring,
    private readonly db: Db,
    readonly settings: AuditSettings,
    private readonly now: () => Date = () => new Date(),
    /** Judges every record appended; its events are appended as `security.anomaly` records. */
    readonly detector?: AnomalyDetector,
  ) {
    this.file = join(dir, 'audit.jsonl');
    detector?.prime(this.tail(1000));
  }

  /** The audit log of a NEUROCLUSTER_HOME (its keyring and store), as configured, with the built-in anomaly rules. */
  static open(
    settings: AuditSettings,
    home: string = neuroclusterHome(),
    detector = new AnomalyDetector(),
    keyring: Keyring = Keyring.open(),
  ): AuditLog {
    return new AuditLog(
      join(home, 'audit'),
      keyring,
      openStore(storeFile(home)),
      settings,
      undefined,
      detector,
    );
  }

  /** Whether `path` names this log (its file or a rotated one) by whatever path: judged by real path. */
  isThisLog(path: string): boolean {
    const real = realPathOf(path);
    return (
      dirname(real) === dirname(this.key()) &&
      (basename(real) === basename(this.file) || /^audit-.*\.jsonl$/.test(basename(real)))
    );
  }

  /** The last `n` records of the current file (fewer when it has fewer; unreadable lines skipped). */
  tail(n: number): AuditRecord[] {
    // Every CLI command primes its anomaly rules from here: read the end of the file (records are
    // well under 2 KiB each), not all of its up to maxBytes.
    const out: AuditRecord[] = [];
    for (const line of readEnd(this.file, n * 2048).lines.slice(-n)) {
      const r = parseRecord(line);
      if (r) out.push(r); // verify() reports the others
    }
    return out;
  }

  private hmac(keyId: string, text: string, verifyOnly = false): string {
    return createHmac('sha256', this.keyring.derived(keyId, 'audit', verifyOnly))
      .update(text)
      .digest('hex');
  }

  /** Appends a record (nothing when the log is off); returns it. */
  append(event: AuditEvent): AuditRecord | undefined {
    return this.appendAll([event])[0];
  }

  /**
   * Appends records together: one write, one fsync and one commit of the head for all of them (a
   * group commit: what a service answering many requests at once needs). Nothing when the log is
   * off; the records otherwise, in order.
   */
  appendAll(events: readonly AuditEvent[]): AuditRecord[] {
    if (!this.settings.enabled || events.length === 0) return [];
    const records = this.write(events);
    for (const record of records)
      for (const e of this.detector?.observe(record) ?? []) {
        this.write([
          {
            action: 'security.anomaly',
            resource: e.rule,
            outcome: 'success',
            actor: 'neurocluster',
            details: { rule: e.rule, actor: e.actor, message: e.message, records: [...e.records] },
          },
        ]);
      }
    this.maintain();
    return records;
  }

  /** Records written at once, under the store's write lock, after repairing what a kill or a full disk left. */
  private write(events: readonly AuditEvent[]): AuditRecord[] {
    return this.locked(() => this.settled(() => this.appendLines(events)));
  }

  /**
   * `work`, which writes one line at most, in a write transaction once the file and the head are in
   * step: each repair step before it is a transaction of its own, committed (see recover), so that
   * no transaction writes more than one line and a kill anywhere leaves one past the head at most.
   */
  private settled<T>(work: () => T): T {
    // Each step cuts a torn line, adopts a line, writes a repair record or sets a head: a few at most.
    for (let step = 0; step < 64; step++) {
      const done = this.db.transaction(() => (this.recover() ? undefined : { value: work() })).immediate();
      if (done) return done.value;
    }
    throw new Error(`the audit log ${this.file} and its head do not come into step`);
  }

  /**
   * `work` with the log's directory made; a full disk (the file's or the store's) is
   * NEUROCLUSTER_ERR_IO, not a bug of the engine.
   */
  private locked<T>(work: () => T): T {
    try {
      // Looked at first: a stat costs less than the mkdir that fails on every append but the first.
      if (!existsSync(this.dir)) mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      return work();
    } catch (cause) {
      throw storageError(cause, `cannot write the audit log ${this.file}`, { file: this.file }) ?? cause;
    }
  }

  /** Appends one record's line (fsynced) and moves the head over it; within a write transaction. */
  private appendLine(event: AuditEvent): AuditRecord {
    return this.appendLines([event])[0]!;
  }

  /**
   * Appends records' lines (one write, one fsync) and moves the head over the last; within a write
   * transaction. Several are chained as always, the first marked with how many were written with it.
   */
  private appendLines(events: readonly AuditEvent[]): AuditRecord[] {
    const head = this.head();
    const keyId = this.keyring.current().id;
    const at = this.now().toISOString();
    let seq = head?.seq ?? 0;
    let prev = head?.hash ?? GENESIS;
    const records: AuditRecord[] = [];
    const lines: string[] = [];
    for (const [i, event] of events.entries()) {
      const body: Omit<AuditRecord, 'hmac'> = {
        seq: ++seq,
        at,
        actor: event.actor ?? defaultActor(),
        action: event.action,
        resource: event.resource,
        outcome: event.outcome,
        correlationId: event.correlationId ?? currentCorrelationId() ?? null,
        risk: riskOf(event.action, event.outcome),
        details: event.details ?? {},
        prev,
        keyId,
        ...(i === 0 && events.length > 1 ? { batch: events.length } : {}),
      };
      const r: AuditRecord = { ...body, hmac: this.hmac(keyId, signedPart(body)) };
      const line = JSON.stringify(r);
      records.push(r);
      lines.push(line);
      prev = sha256(line);
    }
    const bytes = Buffer.from(`${lines.join('\n')}\n`);
    const fd = openSync(this.file, 'a', 0o600);
    try {
      const size = fstatSync(fd).size;
      try {
        for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
        fsyncSync(fd);
      } catch (error) {
        // Nothing of a record that failed stays; if even this fails, the next append cuts it off.
        try {
          ftruncateSync(fd, size);
        } catch {}
        throw error;
      }
    } finally {
      closeSync(fd);
    }
    // A kill from here to the commit leaves the lines past the head: recover() adopts them.
    this.setHead(seq, prev, at);
    return records;
  }

  /** Moves the head, with the repair it owes (the details of the `audit.repair` record to write), if any. */
  private setHead(seq: number, hash: string, at: string, owed?: Record<string, unknown>): void {
    const keyId = this.keyring.current().id;
    const repair = owed ? JSON.stringify(owed) : null;
    statement(
      this.db,
      `INSERT INTO audit_head (log, seq, hash, key_id, hmac, at, repair, repair_hmac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(log) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, key_id = excluded.key_id, hmac = excluded.hmac, at = excluded.at, repair = excluded.repair, repair_hmac = excluded.repair_hmac`,
    ).run(
      this.key(),
      seq,
      hash,
      keyId,
      this.hmac(keyId, `head\0${seq}\0${hash}`),
      at,
      repair,
      repair === null ? null : this.hmac(keyId, owedSigned(seq, hash, repair)),
    );
  }

  /**
   * The head's key in the store: the real path of the log's file, so that every path to one home
   * (through a symbolic link, relative) finds the same head. Final once the directory exists.
   */
  private key(): string {
    if (this.headKey) return this.headKey;
    const key = realPathOf(this.file);
    if (existsSync(this.dir)) this.headKey = key;
    return key;
  }

  /** The head kept in the store: the last record's sequence number and hash. */
  head(): AuditHead | undefined {
    return this.headRow()?.head;
  }

  /**
   * The head, and the repair it owes: the details of the `audit.repair` record still to write for a
   * line adopted or cut (see recover); one not signed by the keyring for this head is not the
   * engine's, and is ignored.
   */
  private headRow(): { head: AuditHead; owed: Record<string, unknown> | undefined } | undefined {
    const select = statement(
      this.db,
      'SELECT seq, hash, key_id, hmac, repair, repair_hmac FROM audit_head WHERE log = ?',
    );
    // Before heads were keyed by real path, they were keyed by the path the log was opened by.
    const row = (select.get(this.key()) ?? select.get(this.file)) as
      | {
          seq: number;
          hash: string;
          key_id: string;
          hmac: string;
          repair: string | null;
          repair_hmac: string | null;
        }
      | undefined;
    if (!row) return undefined;
    const head = { seq: row.seq, hash: row.hash, keyId: row.key_id, hmac: row.hmac };
    let owed: Record<string, unknown> | undefined;
    if (row.repair !== null && row.repair_hmac !== null) {
      try {
        const expected = this.hmac(row.key_id, owedSigned(row.seq, row.hash, row.repair), true);
        if (equalHex(row.repair_hmac, expected)) owed = JSON.parse(row.repair) as Record<string, unknown>;
      } catch {}
    }
    return { head, owed };
  }

  /**
   * One step of bringing the file and the head back into step, within a write transaction (see the
   * module's comment); true when it took one, which the caller commits before it looks again:
   * - a store with no head is given the genesis head (a new log) or, when the log has records, a
   *   head at its last record and an `audit.head-lost` record;
   * - a torn last line is cut off, and a complete line past the head that chains from it is adopted,
   *   the head moved over it: no line is written, the repair owed is kept with the head;
   * - else the repair owed, if any, is recorded by an `audit.repair` record, which settles it.
   * Each step writes one line at most, like an append: a kill during a repair leaves what a kill
   * during an append leaves, one line past the head at most.
   */
  private recover(): boolean {
    const row = this.headRow();
    const head = row?.head;
    const headAt = (lines: readonly string[]) =>
      head ? lines.findLastIndex((l) => sha256(l) === head.hash) : -1;
    let end = readEnd(this.file, 16 * 1024);
    // What a kill leaves is a line or two past the head; a head further back is not a kill's doing.
    if (!end.whole && headAt(end.lines) < 0) end = readEnd(this.file, 1024 * 1024);
    const details: Record<string, unknown> = {};
    if (end.torn > 0) {
      truncateTo(this.file, end.size - end.torn);
      details.truncatedBytes = end.torn;
    }
    if (!head) {
      const rotated = rotatedFiles(this.dir);
      const last =
        end.lines.at(-1) ??
        (rotated.length > 0 ? readEnd(rotated.at(-1)!, 1024 * 1024).lines.at(-1) : undefined);
      if (last === undefined) {
        // A new log (its torn first line, if any, to be recorded next).
        const owed = Object.keys(details).length > 0 ? details : undefined;
        this.setHead(0, GENESIS, this.now().toISOString(), owed);
        return true;
      }
      const r = parseRecord(last);
      if (r) this.setHead(r.seq, sha256(last), this.now().toISOString());
      else this.setHead(0, GENESIS, this.now().toISOString());
      this.appendLine({
        action: 'audit.head-lost',
        resource: basename(this.file),
        outcome: 'failure',
        actor: 'neurocluster',
        details: { ...details, lastSeq: r?.seq ?? null },
      });
      return true;
    }
    let owed = row.owed;
    const at = headAt(end.lines);
    const past = at >= 0 ? end.lines.slice(at + 1) : end.whole ? end.lines : [];
    let seq = head.seq;
    let hash = head.hash;
    const completed: number[] = [];
    for (const line of past) {
      const r = parseRecord(line);
      if (!r || r.seq !== seq + 1 || r.prev !== hash || !this.signed(r)) break;
      // The record of the repair owed, written but cut off before its commit: it settles the debt.
      if (owed && r.action === 'audit.repair' && JSON.stringify(r.details) === JSON.stringify(owed))
        owed = undefined;
      seq = r.seq;
      hash = sha256(line);
      completed.push(seq);
    }
    // No transaction writes more than one line, or one group of lines its first one counts (see
    // settled): a kill leaves that much past the head at most. More is a store rolled back (an
    // older copy put back, its head with it), not a kill's doing.
    const group = parseRecord(past[0] ?? '')?.batch;
    const most = typeof group === 'number' && Number.isSafeInteger(group) && group > 1 ? group : 1;
    if (completed.length > most) {
      throw new SecurityError(
        `the audit log ${this.file} has ${completed.length} records past the head kept in the store (seq ${head.seq}); a crash leaves ${most === 1 ? 'one' : `the ${most} of one group commit`} at most: the store was rolled back or its head changed`,
        { integrity: true },
      );
    }
    if (completed.length > 0) details.completed = completed;
    if (Object.keys(details).length > 0) {
      // Committed before the repair record is written: that record is one line, like an append's.
      this.setHead(seq, hash, this.now().toISOString(), owedWith(owed, details));
      return true;
    }
    if (owed) {
      // Its head write clears the debt, in the same transaction.
      this.appendLine({
        action: 'audit.repair',
        resource: basename(this.file),
        outcome: 'success',
        actor: 'neurocluster',
        details: owed,
      });
      return true;
    }
    return false;
  }

  /** Whether a record's HMAC is right under the keyring. */
  private signed(r: AuditRecord): boolean {
    try {
      return typeof r.hmac === 'string' && equalHex(r.hmac, this.hmac(String(r.keyId), signedPart(r), true));
    } catch {
      return false;
    }
  }

  /** Rotates the file past maxBytes, and prunes rotated files past retentionDays (with checkpoints). */
  private maintain(): void {
    const cutoff = this.now().getTime() - this.settings.retentionDays * 86_400_000;
    const rotate = () => existsSync(this.file) && statSync(this.file).size > this.settings.maxBytes;
    // Most appends have nothing to do here: no lock, no transaction for them.
    if (!rotate() && this.oldest(cutoff) === undefined) return;
    // Under the write lock (each step is checked again there): two processes never rotate or prune
    // the same file.
    this.locked(() => {
      // One pruned file a transaction: its checkpoint is one line, like an append's.
      while (
        this.settled(() => {
          if (rotate()) {
            // Named by the last sequence number in it: unique, and sorted by name in chain order.
            const last = String(this.head()?.seq ?? 0).padStart(12, '0');
            renameSync(this.file, join(this.dir, `audit-${last}.jsonl`));
          }
          return this.pruneOldest(cutoff);
        })
      ) {}
    });
  }

  /** The oldest rotated file when it is older than `cutoff`: the next to prune. */
  private oldest(cutoff: number): string | undefined {
    // Oldest first, and only a prefix of the chain: a gap in the middle would not verify.
    const old = rotatedFiles(this.dir)[0];
    return old !== undefined && statSync(old).mtimeMs < cutoff ? old : undefined;
  }

  /** Prunes the next file to prune, if any, with its checkpoint; whether it did. */
  private pruneOldest(cutoff: number): boolean {
    const old = this.oldest(cutoff);
    if (old === undefined) return false;
    const lines = readFileSync(old, 'utf8').trimEnd().split('\n');
    const last = lines.at(-1)!;
    const lastRecord = JSON.parse(last) as AuditRecord;
    // The checkpoint first: a kill before the commit leaves it past the head (adopted), and a
    // kill before the deletion a file that is pruned again.
    this.appendLine({
      action: 'audit.checkpoint',
      resource: basename(old),
      outcome: 'success',
      actor: 'neurocluster',
      details: {
        prunedFile: basename(old),
        lastSeq: lastRecord.seq,
        lastHash: sha256(last),
        records: lines.length,
      },
    });
    rmSync(old);
    return true;
  }

  /**
   * Verifies the files of this log against the head in the store (see {@link verifyAuditLog}),
   * after repairing what a kill or a full disk left (when the log is on): a store without a head
   * while the log has records fails.
   */
  verify(): AuditVerdict {
    if (this.settings.enabled) {
      try {
        this.locked(() => this.settled(() => undefined));
      } catch (error) {
        // A rolled-back store: nothing is repaired, and the verdict below reports the mismatch.
        if (!(isNeuroclusterError(error) && error.code === 'NEUROCLUSTER_ERR_INTEGRITY')) throw error;
      }
    }
    return verifyAuditLog(this.file, this.keyring, this.head(), { requireHead: true });
  }
}

/** What the HMAC of a repair owed signs: its details, bound to the head it is kept with. */
function owedSigned(seq: number, hash: string, repair: string): string {
  return `repair\0${seq}\0${hash}\0${repair}`;
}

/** A repair owed with another step's added: the bytes cut summed, the lines adopted listed in order. */
function owedWith(
  owed: Readonly<Record<string, unknown>> | undefined,
  step: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  if (!owed) return { ...step };
  const out: Record<string, unknown> = { ...owed };
  if (typeof step.truncatedBytes === 'number')
    out.truncatedBytes =
      (typeof owed.truncatedBytes === 'number' ? owed.truncatedBytes : 0) + step.truncatedBytes;
  if (Array.isArray(step.completed))
    out.completed = [...(Array.isArray(owed.completed) ? owed.completed : []), ...step.completed];
  return out;
}

/**
 * The end of a file (none when it is missing): the complete lines in its last `want` bytes (all of
 * them when that is the whole file), and the length of a torn last line (bytes after the last
 * newline; 0 when the window holds no newline and is not the whole file: nothing can be said).
 */
function readEnd(
  file: string,
  want: number,
): { lines: string[]; torn: number; whole: boolean; size: number } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], torn: 0, whole: true, size: 0 };
    throw e;
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, want);
    const bytes = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, bytes, got, length - got, size - length + got);
      if (n === 0) break;
      got += n;
    }
    const whole = got === size;
    const newline = got > 0 ? bytes.lastIndexOf(0x0a, got - 1) : -1;
    if (newline < 0 && !whole) return { lines: [], torn: 0, whole, size };
    const lines = bytes
      .subarray(0, newline + 1)
      .toString('utf8')
      .split('\n');
    lines.pop(); // after the last newline
    if (!whole) lines.shift(); // cut at the start of the window
    return { lines, torn: got - (newline + 1), whole, size };
  } finally {
    closeSync(fd);
  }
}

/** Cuts a file back to `size` bytes, durably. */
function truncateTo(file: string, size: number): void {
  const fd = openSync(file, 'r+');
  try {
    ftruncateSync(fd, size);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function defaultActor(): string {
  try {
    return `os:${userInfo().username}`;
  } catch {
    return `uid:${process.getuid?.() ?? 'unknown'}`;
  }
}

/**
 * Thrown by callers that must not go on when the log cannot be written: NEUROCLUSTER_ERR_IO when
 * the file system or the store failed (a full disk), else NEUROCLUSTER_ERR_SECURITY.
 */
export function auditUnavailable(cause: unknown): NeuroclusterError {
  const message = `the audit log cannot be written: ${(cause as Error).message}`;
  if (isNeuroclusterError(cause) && cause.code === 'NEUROCLUSTER_ERR_IO')
    return new OutputError(message, { cause, ...(cause.location ? { location: cause.location } : {}) });
  // A log or store changed behind the engine's back stays an integrity failure.
  const integrity = isNeuroclusterError(cause) && cause.code === 'NEUROCLUSTER_ERR_INTEGRITY';
  return new SecurityError(message, { cause, integrity });
}
