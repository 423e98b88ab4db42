/**
 * The audit log's records and their format: what a caller records, the line it becomes, what its
 * HMAC signs, the chain's genesis and the head kept in the store, and the files a log spans. The
 * writer (src/security/audit.ts) and the verifier (src/security/audit-verify.ts) share them.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export type AuditOutcome = 'success' | 'failure' | 'denied';

/** What a caller records. */
export interface AuditEvent {
  readonly action: string;
  readonly resource: string;
  readonly outcome: AuditOutcome;
  /** Who: the caller's user ID, else the operating-system user. */
  readonly actor?: string;
  readonly details?: Readonly<Record<string, unknown>>;
  /** The operation's correlation ID; the one of the context it is appended in by default. */
  readonly correlationId?: string | undefined;
}

export interface AuditRecord extends Required<Omit<AuditEvent, 'details' | 'correlationId'>> {
  readonly seq: number;
  readonly at: string;
  readonly correlationId: string | null;
  readonly risk: number;
  readonly details: Readonly<Record<string, unknown>>;
  readonly prev: string;
  readonly keyId: string;
  readonly hmac: string;
  /**
   * On the first record of several written at once (a group commit), how many: a kill before their
   * head's commit leaves up to that many past it, which the next append adopts.
   */
  readonly batch?: number;
}

export const GENESIS = '0'.repeat(64);

/** The JSON of a record without its HMAC: what the HMAC signs. */
export function signedPart(r: Omit<AuditRecord, 'hmac'>): string {
  const { seq, at, actor, action, resource, outcome, correlationId, risk, details, prev, keyId, batch } = r;
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
    // Signed where there is one; records written alone sign what they always signed.
    ...(batch === undefined ? {} : { batch }),
  });
}

export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The head of a log kept in the store: its last record's sequence number and hash, signed. */
export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
  readonly keyId: string;
  readonly hmac: string;
}

/** A line of the log as a record; undefined when it is not one (torn, edited). */
export function parseRecord(line: string): AuditRecord | undefined {
  try {
    const r = JSON.parse(line) as AuditRecord;
    return typeof r === 'object' && r !== null && Number.isSafeInteger(r.seq) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** Rotated files of a log directory, oldest first. */
export function rotatedFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^audit-.*\.jsonl$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/** Two hex digests equal, compared in constant time. */
export function equalHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}
