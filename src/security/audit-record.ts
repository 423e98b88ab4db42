/** The audit log's records: what a caller records, and the line it becomes (src/security/audit.ts). */

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
