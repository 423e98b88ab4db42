/**
 * The engine's embedded store (the privacy ledger, the audit log's head, the record of encrypted
 * files): one SQLite database (better-sqlite3) at `$NEUROCLUSTER_HOME/neurocluster.db`, in WAL
 * mode so readers never block the writer, with a busy
 * timeout so that processes sharing it wait for each other's transactions instead of failing.
 * Schema changes are numbered migrations, applied in order and recorded in `user_version`.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { neuroclusterHome } from '../config/home.js';
import { sweepHome } from '../core/atomic.js';

export type Db = Database.Database;

const statements = new WeakMap<Db, Map<string, Database.Statement>>();

/**
 * The prepared statement of `sql` on `db`, prepared once and kept: a statement the service runs
 * on every request costs its parse and plan once, not on each call.
 */
export function statement(db: Db, sql: string): Database.Statement {
  let kept = statements.get(db);
  if (!kept) {
    kept = new Map();
    statements.set(db, kept);
  }
  let prepared = kept.get(sql);
  if (!prepared) {
    prepared = db.prepare(sql);
    kept.set(sql, prepared);
  }
  return prepared;
}

/** Migrations, in order; index i takes the schema from version i to i + 1. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE privacy_budgets (
     dataset TEXT PRIMARY KEY,
     epsilon_pico INTEGER NOT NULL,
     delta REAL NOT NULL,
     created_at TEXT NOT NULL,
     refusals INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE privacy_charges (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     dataset TEXT NOT NULL REFERENCES privacy_budgets(dataset),
     kind TEXT NOT NULL CHECK (kind IN ('pure', 'zcdp')),
     pico INTEGER NOT NULL CHECK (pico > 0),
     mechanism TEXT NOT NULL,
     purpose TEXT NOT NULL,
     correlation_id TEXT,
     at TEXT NOT NULL
   );
   CREATE INDEX privacy_charges_dataset ON privacy_charges(dataset);`,
  `CREATE TABLE audit_head (
     log TEXT PRIMARY KEY,
     seq INTEGER NOT NULL,
     hash TEXT NOT NULL,
     key_id TEXT NOT NULL,
     hmac TEXT NOT NULL,
     at TEXT NOT NULL
   );`,
  `CREATE TABLE encrypted_files (
     path TEXT PRIMARY KEY,
     key_id TEXT NOT NULL,
     written_at TEXT NOT NULL
   );`,
  // The privacy ledger signed (src/security/privacy/accountant.ts): each row's HMAC and the key
  // that made it; each dataset's charges chained, their count and last HMAC in its budget row; the
  // head signs the budgets. Rows written before this migration carry no signature and are refused.
  `ALTER TABLE privacy_budgets ADD COLUMN charge_count INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE privacy_budgets ADD COLUMN last_mac TEXT;
   ALTER TABLE privacy_budgets ADD COLUMN key_id TEXT;
   ALTER TABLE privacy_budgets ADD COLUMN mac TEXT;
   ALTER TABLE privacy_charges ADD COLUMN key_id TEXT;
   ALTER TABLE privacy_charges ADD COLUMN mac TEXT;
   CREATE TABLE privacy_head (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     budgets INTEGER NOT NULL,
     key_id TEXT NOT NULL,
     mac TEXT NOT NULL
   );`,
  // The repair an audit log's head owes (src/security/audit.ts): the details of the `audit.repair`
  // record still to write for a line adopted or cut, signed with the head; none when settled.
  `ALTER TABLE audit_head ADD COLUMN repair TEXT;
   ALTER TABLE audit_head ADD COLUMN repair_hmac TEXT;`,
  // The service (src/service): its jobs, in the order they were accepted, and its API keys, each
  // kept as a salted SHA-256 of its secret (the secret is shown once, at creation).
  `CREATE TABLE jobs (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
     input TEXT NOT NULL,
     options TEXT NOT NULL,
     actor TEXT NOT NULL,
     correlation_id TEXT NOT NULL,
     progress TEXT,
     summary TEXT,
     error_code TEXT,
     error_message TEXT,
     attempts INTEGER NOT NULL DEFAULT 0,
     created_at TEXT NOT NULL,
     started_at TEXT,
     ended_at TEXT
   );
   CREATE INDEX jobs_state ON jobs(state, seq);
   CREATE TABLE api_keys (
     name TEXT PRIMARY KEY,
     tenant TEXT NOT NULL,
     key_id TEXT NOT NULL UNIQUE,
     salt TEXT NOT NULL,
     hash TEXT NOT NULL,
     created_at TEXT NOT NULL,
     revoked_at TEXT
   );`,
  // Each job belongs to the tenant of the key that submitted it; other tenants never see it.
  `ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
   CREATE INDEX jobs_tenant ON jobs(tenant, seq);`,
  // Tenants (src/service/tenants.ts): each with its own quotas (over service.quotas) and the turn it
  // was last served a job (fair scheduling serves the tenant served longest ago first); the bytes
  // each job keeps stored (its upload and results), which the stored-bytes quota adds up. The
  // tenants keys and jobs already name exist, and `default` always does.
  `CREATE TABLE tenants (
     name TEXT PRIMARY KEY,
     created_at TEXT NOT NULL,
     quotas TEXT NOT NULL DEFAULT '{}',
     served INTEGER NOT NULL DEFAULT 0
   );
   INSERT INTO tenants (name, created_at)
     SELECT tenant, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM
       (SELECT tenant FROM api_keys UNION SELECT tenant FROM jobs UNION SELECT 'default');
   ALTER TABLE jobs ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX jobs_tenant_state ON jobs(tenant, state);
   CREATE INDEX jobs_tenant_created ON jobs(tenant, created_at);
   CREATE INDEX jobs_tenant_bytes ON jobs(tenant, stored_bytes);`,
  // Small encrypted records kept in the store instead of a file of their own
  // (src/security/encrypted-files.ts): a service job's rows from its request, kept until the job
  // ends, so that accepting a job is one commit; rotation re-wraps them, retirement counts them.
  `CREATE TABLE encrypted_records (
     id TEXT PRIMARY KEY,
     key_id TEXT NOT NULL,
     data BLOB NOT NULL,
     written_at TEXT NOT NULL
   );`,
];

/** The store's file in a NEUROCLUSTER_HOME. */
export function storeFile(home: string = neuroclusterHome()): string {
  return join(home, 'neurocluster.db');
}

const open = new Map<string, Db>();

/** The store at `file` (the home's by default), opened once per process and migrated. */
export function openStore(file: string = storeFile()): Db {
  let db = open.get(file);
  if (db) return db;
  // The engine opens its home: temporaries of processes killed mid-write are removed (once).
  if (file === storeFile()) sweepHome(neuroclusterHome());
  ownerOnly(file);
  db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 10000');
  db.pragma('foreign_keys = ON');
  migrate(db);
  open.set(file, db);
  return db;
}

/**
 * Makes the store's directory 0700 (when it is this user's) and the store, with its -wal and -shm
 * files, 0600 before SQLite opens it (SQLite gives the files it creates the database's mode): the
 * privacy ledger and the audit head are no other user's to read or change. A shared directory (the
 * sticky bit, as /tmp has) keeps its mode: closing it would break it for every other user; the
 * files in it are still owner-only.
 */
function ownerOnly(file: string): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { uid, mode } = statSync(dir);
  if (uid === process.getuid?.() && (mode & 0o1000) === 0) chmodSync(dir, 0o700);
  closeSync(openSync(file, 'a', 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
}

/** Closes every store this process opened (tests; a process exits fine without it). */
export function closeStores(): void {
  for (const db of open.values()) db.close();
  open.clear();
}

function migrate(db: Db): void {
  // IMMEDIATE: two processes opening a new store migrate it one after the other.
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
    if (version < MIGRATIONS.length) db.pragma(`user_version = ${MIGRATIONS.length}`);
  }).immediate();
}
