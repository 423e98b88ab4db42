/**
 * The audit log: one JSON line per security-relevant act (data read, model written, budget spent,
 * keys touched) in `$NEUROCLUSTER_HOME/audit/audit.jsonl`, append-only and tamper-evident.
 *
 * Each record carries its sequence number, the SHA-256 hash of the record before it (`prev`) and an
 * HMAC-SHA256 of itself under a key derived from the keyring's current key (`keyId` names it).
 * The head (last sequence number and hash, with its own HMAC) is also kept in the SQLite store, so
 * cutting the newest records off the file is detected too. Appends from several processes are
 * serialised by the store's write lock: read the head, append the line, move the head, commit.
 *
 * Retention: when the file passes `maxBytes` it is renamed `audit-<last seq>.jsonl` and a new one
 * continues the chain; rotated files older than `retentionDays` are deleted, each deletion
 * recorded by a signed checkpoint record carrying the deleted file's last sequence number and
 * hash, so that what remains still verifies from there.
 *
 * Risk scores (0-100, documented in the README): a base per action, plus 30 when the outcome is a
 * failure or a denial, capped at 100.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { neuroclusterHome } from '../config/home.js';
import { currentCorrelationId } from '../observability/context.js';
import { SecurityError } from '../resilience/errors.js';
import { type Db, openStore, storeFile } from '../store/db.js';
import { AnomalyDetector } from './anomaly.js';
import { Keyring } from './keyring.js';

export type AuditOutcome = 'success' | 'failure' | 'denied';

/** What a caller records. */
export interface AuditEvent {
  readonly action: string;
  readonly resource: string;
  readonly outcome: AuditOutcome;
  /** Who: the caller's user ID, else the operating-system user. */
  readonly actor?: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface AuditRecord extends Required<Omit<AuditEvent, 'details'>> {
  readonly seq: number;
  readonly at: string;
  readonly correlationId: string | null;
  readonly risk: number;
  readonly details: Readonly<Record<string, unknown>>;
  readonly prev: string;
  readonly keyId: string;
  readonly hmac: string;
}

/** Base risk of each action; anything else is 10. */
export const ACTION_RISK: Readonly<Record<string, number>> = {
  'data.read': 10,
  'data.denied': 40,
  'model.read': 10,
  'model.write': 20,
  'model.backup': 20,
  'model.restore': 40,
  'model.export': 40,
  'result.write': 20,
  'file.encrypt': 20,
  'file.decrypt': 40,
  'privacy.spend': 30,
  'keys.create': 50,
  'keys.rotate': 50,
  'keys.retire': 60,
  'audit.checkpoint': 20,
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

const GENESIS = '0'.repeat(64);

/** The JSON of a record without its HMAC: what the HMAC signs. */
function signedPart(r: Omit<AuditRecord, 'hmac'>): string {
  const { seq, at, actor, action, resource, outcome, correlationId, risk, details, prev, keyId } = r;
  return JSON.stringify({
    seq,
    at,
    actor,
    action,
    resource,
    outcome,
    correlationId,
    risk,
    details,
    prev,
    keyId,
  });
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export class AuditLog {
  readonly file: string;

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
  ): AuditLog {
    return new AuditLog(
      join(home, 'audit'),
      Keyring.open(),
      openStore(storeFile(home)),
      settings,
      undefined,
      detector,
    );
  }

  /** The last `n` records of the current file (fewer when it has fewer; unreadable lines skipped). */
  tail(n: number): AuditRecord[] {
    if (!existsSync(this.file)) return [];
    // Every CLI command primes its anomaly rules from here: read the end of the file (records are
    // well under 2 KiB each), not all of its up to maxBytes.
    const size = statSync(this.file).size;
    const want = Math.min(size, n * 2048);
    const bytes = Buffer.alloc(want);
    const fd = openSync(this.file, 'r');
    try {
      readSync(fd, bytes, 0, want, size - want);
    } finally {
      closeSync(fd);
    }
    const lines = bytes.toString('utf8').trimEnd().split('\n');
    // The first line is cut unless the read began at the start of the file.
    if (want < size) lines.shift();
    const out: AuditRecord[] = [];
    for (const line of lines.slice(-n)) {
      try {
        out.push(JSON.parse(line) as AuditRecord);
      } catch {
        // verify() reports it
      }
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
    if (!this.settings.enabled) return undefined;
    const record = this.write(event);
    for (const e of this.detector?.observe(record) ?? []) {
      this.write({
        action: 'security.anomaly',
        resource: e.rule,
        outcome: 'success',
        actor: 'neurocluster',
        details: { rule: e.rule, actor: e.actor, message: e.message, records: [...e.records] },
      });
    }
    this.maintain();
    return record;
  }

  /** One record, under the store's write lock. */
  private write(event: AuditEvent): AuditRecord {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    return this.db
      .transaction(() => {
        const head = this.head();
        const keyId = this.keyring.current().id;
        const body: Omit<AuditRecord, 'hmac'> = {
          seq: (head?.seq ?? 0) + 1,
          at: this.now().toISOString(),
          actor: event.actor ?? defaultActor(),
          action: event.action,
          resource: event.resource,
          outcome: event.outcome,
          correlationId: currentCorrelationId() ?? null,
          risk: riskOf(event.action, event.outcome),
          details: event.details ?? {},
          prev: head?.hash ?? GENESIS,
          keyId,
        };
        const signed = signedPart(body);
        const r: AuditRecord = { ...body, hmac: this.hmac(keyId, signed) };
        const line = JSON.stringify(r);
        appendFileSync(this.file, `${line}\n`, { mode: 0o600 });
        const hash = sha256(line);
        const headSig = this.hmac(keyId, `head\0${r.seq}\0${hash}`);
        this.db
          .prepare(
            `INSERT INTO audit_head (log, seq, hash, key_id, hmac, at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT(log) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, key_id = excluded.key_id, hmac = excluded.hmac, at = excluded.at`,
          )
          .run(this.file, r.seq, hash, keyId, headSig, r.at);
        return r;
      })
      .immediate();
  }

  /** The head kept in the store: the last record's sequence number and hash. */
  head(): { seq: number; hash: string; keyId: string; hmac: string } | undefined {
    const row = this.db
      .prepare('SELECT seq, hash, key_id, hmac FROM audit_head WHERE log = ?')
      .get(this.file) as { seq: number; hash: string; key_id: string; hmac: string } | undefined;
    return row && { seq: row.seq, hash: row.hash, keyId: row.key_id, hmac: row.hmac };
  }

  /** Rotates the file past maxBytes, and prunes rotated files past retentionDays (with checkpoints). */
  private maintain(): void {
    if (existsSync(this.file) && statSync(this.file).size > this.settings.maxBytes) {
      // Named by the last sequence number in it: unique, and sorted by name in chain order.
      const last = String(this.head()?.seq ?? 0).padStart(12, '0');
      renameSync(this.file, join(this.dir, `audit-${last}.jsonl`));
    }
    const cutoff = this.now().getTime() - this.settings.retentionDays * 86_400_000;
    for (const old of rotatedFiles(this.dir)) {
      // Oldest first, and only a prefix of the chain: a gap in the middle would not verify.
      if (statSync(old).mtimeMs >= cutoff) break;
      const lines = readFileSync(old, 'utf8').trimEnd().split('\n');
      const last = lines.at(-1)!;
      const lastRecord = JSON.parse(last) as AuditRecord;
      rmSync(old);
      this.write({
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
    }
  }

  /** Verifies the files of this log (see {@link verifyAuditLog}). */
  verify(): AuditVerdict {
    return verifyAuditLog(this.file, this.keyring, this.head());
  }
}

function defaultActor(): string {
  try {
    return `os:${userInfo().username}`;
  } catch {
    return `uid:${process.getuid?.() ?? 'unknown'}`;
  }
}

/** Rotated files of a log directory, oldest first. */
function rotatedFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^audit-.*\.jsonl$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

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
 * head from the store, when one is given.
 */
export function verifyAuditLog(
  file: string,
  keyring: Keyring,
  head?: { seq: number; hash: string; keyId: string; hmac: string },
): AuditVerdict {
  const files = [...rotatedFiles(dirname(file)), ...(existsSync(file) ? [file] : [])];
  let prevHash: string | undefined;
  let prevSeq: number | undefined;
  let records = 0;
  const checkpoints = new Set<string>();
  const pending: { file: string; line: number; seq: number; prev: string }[] = [];
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
  if (head) {
    let headOk: boolean;
    try {
      headOk = equalHex(head.hmac, hmacOf(head.keyId, `head\0${head.seq}\0${head.hash}`));
    } catch {
      headOk = false;
    }
    const where = files.at(-1) ?? file;
    if (!headOk) return bad(where, 0, head.seq, 'the head kept in the store is not signed by the keyring');
    if (prevSeq !== head.seq || prevHash !== head.hash) {
      return bad(
        where,
        0,
        head.seq,
        `the store's head is record ${head.seq}, the file ends at ${prevSeq ?? 'nothing'} (the newest records were removed or replaced)`,
      );
    }
  }
  return { ok: true, records, files, lastSeq: prevSeq ?? 0 };
}

function equalHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** Thrown by callers that must not go on when the log cannot be written. */
export function auditUnavailable(cause: unknown): SecurityError {
  return new SecurityError(`the audit log cannot be written: ${(cause as Error).message}`, { cause });
}
