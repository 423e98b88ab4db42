/**
 * The keyring: key-encryption keys (AES-256), each with an ID, one of them current. It lives in a
 * file of its own, never in the configuration: `NEUROCLUSTER_KEYRING` names the file, or
 * `NEUROCLUSTER_KEYRING_JSON` holds its content (a secret injected by the platform: read-only, so
 * it cannot be rotated here); otherwise `$NEUROCLUSTER_HOME/keys/keyring.json`, created on first
 * use with mode 0600 (its directory 0700) and a warning, because losing it loses every file it
 * encrypted. Rotation adds a new current key; older keys still decrypt until they are retired.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { neuroclusterHome } from '../config/home.js';
import { SecurityError } from '../resilience/errors.js';

export interface KeyEntry {
  readonly id: string;
  /** 32 bytes, base64. */
  readonly key: string;
  readonly createdAt: string;
  readonly retiredAt?: string;
}

interface KeyringDocument {
  readonly format: 'neurocluster-keyring';
  readonly version: 1;
  readonly current: string;
  readonly keys: readonly KeyEntry[];
}

export interface KeyringSource {
  readonly env?: NodeJS.ProcessEnv;
  /** Told once, when a keyring is created. */
  readonly warn?: (message: string) => void;
}

function newKey(): KeyEntry {
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
  return {
    id: `k${day}-${randomBytes(4).toString('hex')}`,
    key: randomBytes(32).toString('base64'),
    createdAt: new Date().toISOString(),
  };
}

export class Keyring {
  private constructor(
    private doc: KeyringDocument,
    /** The file it is kept in; undefined when it came from the environment. */
    readonly file: string | undefined,
  ) {}

  /** The keyring of this environment (see the module comment), created on first use. */
  static open(source: KeyringSource = {}): Keyring {
    const env = source.env ?? process.env;
    const inline = env.NEUROCLUSTER_KEYRING_JSON;
    if (inline) return new Keyring(parse(inline, 'NEUROCLUSTER_KEYRING_JSON'), undefined);
    const file = env.NEUROCLUSTER_KEYRING ?? join(neuroclusterHome(env), 'keys', 'keyring.json');
    if (!existsSync(file)) {
      const first = newKey();
      const ring = new Keyring(
        { format: 'neurocluster-keyring', version: 1, current: first.id, keys: [first] },
        file,
      );
      ring.save();
      (source.warn ?? ((m: string) => process.stderr.write(`neurocluster: warning: ${m}\n`)))(
        `created a new keyring at ${file} (mode 0600): back it up; every file it encrypts is lost without it`,
      );
      return ring;
    }
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (cause) {
      throw new SecurityError(`cannot read the keyring ${file}: ${(cause as Error).message}`, { cause });
    }
    return new Keyring(parse(text, file), file);
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
    const entry = this.doc.keys.find((k) => k.id === id);
    if (!entry) throw new SecurityError(`key ${id} is not in the keyring${this.file ? ` ${this.file}` : ''}`);
    if (entry.retiredAt && !verifyOnly)
      throw new SecurityError(`key ${id} was retired on ${entry.retiredAt}`);
    return Buffer.from(entry.key, 'base64');
  }

  /** A key for one purpose (HMAC of the audit log, ...), derived from the key `id` by HKDF-SHA256. */
  derived(id: string, purpose: string, verifyOnly = false): Buffer {
    return Buffer.from(
      hkdfSync('sha256', this.key(id, verifyOnly), Buffer.alloc(0), `neurocluster:${purpose}`, 32),
    );
  }

  /** Every key, without its material. */
  list(): { id: string; createdAt: string; retiredAt?: string; current: boolean }[] {
    return this.doc.keys.map(({ key: _key, ...k }) => ({ ...k, current: k.id === this.doc.current }));
  }

  /** Adds a new current key (older ones still decrypt); returns its ID. */
  rotate(): string {
    const next = newKey();
    this.doc = { ...this.doc, current: next.id, keys: [...this.doc.keys, next] };
    this.save();
    return next.id;
  }

  /** Retires a key that is not current: files still wrapped with it can no longer be read. */
  retire(id: string): void {
    if (id === this.doc.current) throw new SecurityError(`key ${id} is current: rotate first`);
    this.key(id);
    this.doc = {
      ...this.doc,
      keys: this.doc.keys.map((k) => (k.id === id ? { ...k, retiredAt: new Date().toISOString() } : k)),
    };
    this.save();
  }

  private save(): void {
    if (!this.file)
      throw new SecurityError('the keyring comes from NEUROCLUSTER_KEYRING_JSON: change it where it is kept');
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.doc, null, 2)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.file);
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
