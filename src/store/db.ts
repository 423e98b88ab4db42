/**
 * The engine's embedded store (the privacy ledger, the audit log's head, the record of encrypted
 * files): one SQLite database (better-sqlite3) at `$NEUROCLUSTER_HOME/neurocluster.db`, in WAL
 * mode so readers never block the writer, with a busy
 * timeout so that processes sharing it wait for each other's transactions instead of failing.
 * Schema changes are numbered migrations, applied in order and recorded in `user_version`.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { neuroclusterHome } from '../config/home.js';

export type Db = Database.Database;

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
  mkdirSync(dirname(file), { recursive: true });
  db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 10000');
  db.pragma('foreign_keys = ON');
  migrate(db);
  open.set(file, db);
  return db;
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
