/**
 * The keyring: key-encryption keys (AES-256), each with an ID, one of them current. It lives in a
 * file of its own, never in the configuration: `NEUROCLUSTER_KEYRING` names the file, or
 * `NEUROCLUSTER_KEYRING_JSON` holds its content (a secret injected by the platform: read-only, so
 * it cannot be rotated here); otherwise `$NEUROCLUSTER_HOME/keys/keyring.json`, created on first
 * use with mode 0600 (its directory 0700). Signing the audit log is a use, so a plain `cluster`
 * makes it; the warning to back it up comes once, from the first command that encrypts a file or
 * rotates a key with it (`announced` in the file), because only from then does losing it lose
 * data. Rotation adds a new current key; older keys still decrypt until they are retired.
 *
 * A service tenant's keys are entries marked with the tenant (docs/tenancy.md): its newest one not
 * retired wraps its files ({@link Keyring.forTenant}), and deleting the tenant destroys them all
 * (their material leaves the file: copies of its files can no longer be read).
 *
 * Several processes share the file: it is created once (the first creation wins, the others read
 * it), changed only under a lock file and on what the file holds at that moment, and a key this
 * process has not seen is looked for again in the file before it is called unknown.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { inlineKeyring, keyringFile } from '../config/home.js';
import { temporaryOf } from '../core/atomic.js';
import { SecurityError, storageError } from '../core/errors.js';
import { printable } from '../core/printable.js';

export interface KeyEntry {
  readonly id: string;
  /** 32 bytes, base64. */
  readonly key: string;
  readonly createdAt: string;
  readonly retiredAt?: string;
  /**
   * The service tenant whose files it wraps (docs/tenancy.md): its newest key not retired is the
   * tenant's current one, and deleting the tenant destroys them all.
   */
  readonly tenant?: string;
}

interface KeyringDocument {
  readonly format: 'neurocluster-keyring';
  readonly version: 1;
  readonly current: string;
  readonly keys: readonly KeyEntry[];
  /**
   * False until the backup warning has been given (by the first encryption or rotation); absent in
   * keyrings made before it was deferred, which warned when they were created.
   */
  readonly announced?: boolean;
}

export interface KeyringSource {
  readonly env?: NodeJS.ProcessEnv;
  /** Told once per keyring file: when it first encrypts a file or rotates a key. */
  readonly warn?: (message: string) => void;
}

function newKey(tenant?: string): KeyEntry {
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
  return {
    id: `k${day}-${randomBytes(4).toString('hex')}`,
    key: randomBytes(32).toString('base64'),
    createdAt: new Date().toISOString(),
    ...(tenant === undefined ? {} : { tenant }),
  };
}

/** What a keyring and its tenants' views ({@link Keyring.forTenant}) share. */
interface KeyringState {
  /** The document as this process last read or wrote it. */
  doc: KeyringDocument;
  /** Keys derived so far, by key ID and purpose: a key's material never changes under its ID. */
  readonly derived: Map<string, Buffer>;
}

const stateOf = (doc: KeyringDocument): KeyringState => ({ doc, derived: new Map() });

export class Keyring {
  private constructor(
    private readonly state: KeyringState,
    /** The file it is kept in; undefined when it came from the environment. */
    readonly file: string | undefined,
    private readonly warn: (message: string) => void = (m) =>
      process.stderr.write(`neurocluster: warning: ${printable(m)}\n`),
    /** The tenant whose key new files are wrapped with ({@link forTenant}); the current key's without. */
    readonly tenant?: string,
  ) {}

  /**
   * This keyring wrapping new files with `tenant`'s current key, where the tenant has one (the
   * current key otherwise: `default`, or a tenant made with a read-only keyring). Everything else
   * is the keyring's: files of any key still decrypt, and signatures (the audit log's, the privacy
   * ledger's) stay with the current key.
   */
  forTenant(tenant: string): Keyring {
    return new Keyring(this.state, this.file, this.warn, tenant);
  }

  private get doc(): KeyringDocument {
    return this.state.doc;
  }

  private set doc(doc: KeyringDocument) {
    this.state.doc = doc;
  }

  /** The key new files are wrapped with: the tenant's current one for a tenant's keyring, else the current key. */
  encryptionKey(): { id: string; key: Buffer } {
    const own = this.tenant === undefined ? undefined : this.tenantKeyId(this.tenant);
    return own === undefined ? this.current() : { id: own, key: this.key(own) };
  }

  /** A tenant's current key: its newest one not retired (the file read again when it changed). */
  tenantKeyId(tenant: string): string | undefined {
    const find = () => this.doc.keys.findLast((k) => k.tenant === tenant && !k.retiredAt)?.id;
    const found = find();
    if (found !== undefined || !this.file || !existsSync(this.file)) return found;
    // Made by another process (`tenants create`) since this one read the file.
    this.doc = readDocument(this.file);
    return find();
  }

  /** The key a file wrapped with `id` is re-wrapped with: its tenant's current key, else the current key. */
  successorOf(id: string): { id: string; key: Buffer } {
    const tenant = this.doc.keys.find((k) => k.id === id)?.tenant;
    const own = tenant === undefined ? undefined : this.tenantKeyId(tenant);
    return own === undefined ? this.current() : { id: own, key: this.key(own) };
  }

  /** The keyring of this environment (see the module comment), created on first use. */
  static open(source: KeyringSource = {}): Keyring {
    const inline = inlineKeyring(source.env);
    if (inline) return new Keyring(stateOf(parse(inline, 'NEUROCLUSTER_KEYRING_JSON')), undefined);
    const file = keyringFile(source.env);
    if (!existsSync(file)) {
      const first = newKey();
      const doc: KeyringDocument = {
        format: 'neurocluster-keyring',
        version: 1,
        current: first.id,
        keys: [first],
        announced: false,
      };
      // Processes starting at once on a fresh home must agree on one keyring: only the first
      // creation takes, and the others read what it wrote.
      if (createOnce(file, doc)) return new Keyring(stateOf(doc), file, source.warn);
    }
    return new Keyring(stateOf(readDocument(file)), file, source.warn);
  }

  /**
   * The key new files are wrapped with, and the moment a new keyring starts to hold data: the
   * first call on a keyring file gives the backup warning (once, whichever process gets there).
   */
  forEncryption(): { id: string; key: Buffer } {
    this.announce();
    return this.encryptionKey();
  }

  /** Gives the backup warning if this keyring file has not had it yet (once, across processes). */
  private announce(): void {
    const file = this.file;
    if (!file || this.doc.announced !== false) return;
    let mine = false;
    withLock(`${file}.lock`, () => {
      const doc = readDocument(file);
      if (doc.announced === false) {
        writeDocument(file, { ...doc, announced: true });
        mine = true;
      }
      this.doc = { ...doc, announced: true };
    });
    if (mine)
      this.warn(
        `encrypting with the new keyring at ${file} (mode 0600): back it up; every file it encrypts is lost without it`,
      );
  }

  /** The current key: what new files are wrapped with. */
  current(): { id: string; key: Buffer } {
    return { id: this.doc.current, key: this.key(this.doc.current) };
  }

  /**
   * The key of an ID; an unknown key is refused, and so is a retired one unless `verifyOnly`
   * (checking the signature of an old audit record is not reading data).
   */
  key(id: string, verifyOnly = false): Buffer {
    let entry = this.doc.keys.find((k) => k.id === id);
    // Another process may have added it (rotated) since this keyring was read.
    if (!entry && this.file && existsSync(this.file)) {
      this.doc = readDocument(this.file);
      entry = this.doc.keys.find((k) => k.id === id);
    }
    if (!entry) {
      // Most often a file written on another machine (or another NEUROCLUSTER_HOME): say how it travels.
      throw new SecurityError(
        `key ${id} is not in the keyring${this.file ? ` ${this.file}` : ''}: the file was encrypted with another keyring (another machine or NEUROCLUSTER_HOME). To move a model, run \`neurocluster model export <model> --recipient <age1...> --out <file.age>\` where it was made and \`neurocluster model import <file.age> --identity <key.txt> --to <model>\` here`,
      );
    }
    if (entry.retiredAt && !verifyOnly)
      throw new SecurityError(`key ${id} was retired on ${entry.retiredAt}`);
    return Buffer.from(entry.key, 'base64');
  }

  /** A key for one purpose (HMAC of the audit log, ...), derived from the key `id` by HKDF-SHA256. */
  derived(id: string, purpose: string, verifyOnly = false): Buffer {
    // Asked each time: the key may have been retired (or, unknown, added by another process) since.
    const material = this.key(id, verifyOnly);
    const name = `${id}\0${purpose}`;
    let key = this.state.derived.get(name);
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), `neurocluster:${purpose}`, 32));
      this.state.derived.set(name, key);
    }
    // A copy: what a caller does with its key (wipes it) is not the next caller's.
    return Buffer.from(key);
  }

  /** Every key, without its material; a tenant's current key is `current` for its tenant. */
  list(): { id: string; createdAt: string; retiredAt?: string; tenant?: string; current: boolean }[] {
    const tenants = new Set(this.doc.keys.flatMap((k) => (k.tenant === undefined ? [] : [k.tenant])));
    const currents = new Set([this.doc.current, ...[...tenants].map((t) => this.tenantKeyId(t))]);
    return this.doc.keys.map(({ key: _key, ...k }) => ({ ...k, current: currents.has(k.id) }));
  }

  /** Adds a new current key of a tenant (its older ones still decrypt); returns its ID. */
  rotateTenant(tenant: string): string {
    this.announce();
    const next = newKey(tenant);
    this.update((doc) => ({ ...doc, keys: [...doc.keys, next] }));
    return next.id;
  }

  /**
   * Destroys every key of a tenant: their material leaves the keyring file, so that no copy of a
   * file they wrapped (a backup, a disk block) can be read any more. Returns their IDs.
   */
  destroyTenant(tenant: string): string[] {
    let destroyed: string[] = [];
    this.update((doc) => {
      destroyed = doc.keys.filter((k) => k.tenant === tenant).map((k) => k.id);
      return { ...doc, keys: doc.keys.filter((k) => k.tenant !== tenant) };
    });
    for (const name of [...this.state.derived.keys()])
      if (destroyed.some((id) => name.startsWith(`${id}\0`))) this.state.derived.delete(name);
    return destroyed;
  }

  /** Adds a new current key (older ones still decrypt); returns its ID. */
  rotate(): string {
    this.announce();
    const next = newKey();
    this.update((doc) => ({ ...doc, current: next.id, keys: [...doc.keys, next] }));
    return next.id;
  }

  /** Retires a key that is not current: files still wrapped with it can no longer be read. */
  retire(id: string): void {
    this.update((doc) => {
      if (id === doc.current) throw new SecurityError(`key ${id} is current: rotate first`);
      const entry = doc.keys.find((k) => k.id === id);
      if (!entry) throw new SecurityError(`key ${id} is not in the keyring ${this.file}`);
      const tenantCurrent = doc.keys.findLast((k) => k.tenant === entry.tenant && !k.retiredAt);
      if (entry.tenant !== undefined && tenantCurrent?.id === id)
        throw new SecurityError(
          `key ${id} is tenant ${entry.tenant}'s current key: rotate it first (keys rotate --tenant ${entry.tenant})`,
        );
      if (entry.retiredAt) throw new SecurityError(`key ${id} was retired on ${entry.retiredAt}`);
      return {
        ...doc,
        keys: doc.keys.map((k) => (k.id === id ? { ...k, retiredAt: new Date().toISOString() } : k)),
      };
    });
  }

  /**
   * Changes the keyring file: under its lock, on the file as it is now (not as this process read
   * it), so that two processes rotating at once both keep their keys and neither loses the other's.
   */
  private update(change: (doc: KeyringDocument) => KeyringDocument): void {
    const file = this.file;
    if (!file)
      throw new SecurityError('the keyring comes from NEUROCLUSTER_KEYRING_JSON: change it where it is kept');
    withLock(`${file}.lock`, () => {
      const doc = change(existsSync(file) ? readDocument(file) : this.doc);
      writeDocument(file, doc);
      this.doc = doc;
    });
  }
}

function readDocument(file: string): KeyringDocument {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new SecurityError(`cannot read the keyring ${file}: ${(cause as Error).message}`, { cause });
  }
  return parse(text, file);
}

/** Writes the keyring through a temporary file, mode 0600, renamed into place. */
function writeDocument(file: string, doc: KeyringDocument): void {
  const tmp = temporary(file, doc);
  try {
    renameSync(tmp, file);
  } catch (cause) {
    rmSync(tmp, { force: true });
    throw new SecurityError(`cannot write the keyring ${file}: ${(cause as Error).message}`, { cause });
  }
}

/** Creates the keyring file unless one exists (a hard link fails on an existing name); true if this call made it. */
function createOnce(file: string, doc: KeyringDocument): boolean {
  const tmp = temporary(file, doc);
  try {
    linkSync(tmp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new SecurityError(`cannot create the keyring ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The document in a new temporary file (mode 0600) beside the keyring file. */
function temporary(file: string, doc: KeyringDocument): string {
  // Named like every temporary of the engine: a process killed here leaves one that the next
  // process removes (src/core/atomic.ts).
  const tmp = temporaryOf(file);
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(tmp, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
  } catch (cause) {
    rmSync(tmp, { force: true });
    throw (
      storageError(cause, `cannot write the keyring ${file}`) ??
      new SecurityError(`cannot write the keyring ${file}: ${(cause as Error).message}`, { cause })
    );
  }
  return tmp;
}

/** A lock held by another process for longer than this is taken as left by a process that died. */
const STALE_LOCK_MS = 30_000;
const LOCK_WAIT_MS = 10_000;

/** Runs `work` holding an exclusive lock file (created with O_EXCL), waiting for it up to 10 s. */
function withLock(lock: string, work: () => void): void {
  const deadline = Date.now() + LOCK_WAIT_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new SecurityError(`cannot lock the keyring (${lock}): ${(error as Error).message}`, {
          cause: error,
        });
      }
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > STALE_LOCK_MS) rmSync(lock, { force: true });
      else if (Date.now() > deadline)
        throw new SecurityError(`the keyring is locked by another process (${lock}); try again`);
      else Atomics.wait(pause, 0, 0, 10);
    }
  }
  try {
    work();
  } finally {
    rmSync(lock, { force: true });
  }
}

function parse(text: string, where: string): KeyringDocument {
  let doc: KeyringDocument;
  try {
    doc = JSON.parse(text) as KeyringDocument;
  } catch (cause) {
    throw new SecurityError(`the keyring ${where} is not JSON`, { cause });
  }
  const ok =
    doc?.format === 'neurocluster-keyring' &&
    doc.version === 1 &&
    Array.isArray(doc.keys) &&
    doc.keys.every((k) => typeof k.id === 'string' && Buffer.from(String(k.key), 'base64').length === 32) &&
    doc.keys.some((k) => k.id === doc.current);
  if (!ok)
    throw new SecurityError(
      `the keyring ${where} is not a neurocluster keyring (version 1, 32-byte keys, a current key)`,
    );
  return doc;
}
