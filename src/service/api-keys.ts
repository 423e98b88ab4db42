/**
 * The service's API keys, in the store. A key is `nck_<id>_<secret>`: the id finds its row, the
 * secret (32 random bytes) is kept only as a salted SHA-256, compared in constant time. A slow hash
 * (scrypt) guards low-entropy passwords; a 256-bit random secret needs none, and every request
 * checks one. The key itself is shown once, when it is made.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { RequestError, SecurityError, UsageError } from '../core/errors.js';
import { type Db, statement } from '../store/db.js';
import { checkTenantName, Tenants } from './tenants.js';

export interface ApiKeyInfo {
  readonly name: string;
  readonly tenant: string;
  readonly createdAt: string;
  readonly revokedAt?: string;
}

/** Who made a request: the key's name (the actor of its audit records) and its tenant. */
export interface Caller {
  readonly name: string;
  readonly tenant: string;
}

interface Row {
  name: string;
  tenant: string;
  key_id: string;
  salt: string;
  hash: string;
  created_at: string;
  revoked_at: string | null;
}

const KEY = /^nck_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function digest(salt: string, secret: string): Buffer {
  return createHash('sha256').update(salt).update(secret).digest();
}

function info(row: Row): ApiKeyInfo {
  return {
    name: row.name,
    tenant: row.tenant,
    createdAt: row.created_at,
    ...(row.revoked_at ? { revokedAt: row.revoked_at } : {}),
  };
}

export class ApiKeys {
  constructor(private readonly db: Db) {}

  /** A new key named `name`: returned once, stored only as its salted hash. */
  create(name: string, tenant = 'default'): ApiKeyInfo & { key: string } {
    if (!NAME.test(name))
      throw new UsageError(`--name: "${name}" is not a key name (letters, digits, . _ -; at most 64)`);
    checkTenantName(tenant, '--tenant');
    new Tenants(this.db).need(tenant);
    const keyId = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const salt = randomBytes(16).toString('hex');
    const createdAt = new Date().toISOString();
    try {
      statement(
        this.db,
        'INSERT INTO api_keys (name, tenant, key_id, salt, hash, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      ).run(name, tenant, keyId, salt, digest(salt, secret).toString('hex'), createdAt);
    } catch (cause) {
      if ((cause as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
        throw new UsageError(
          `an API key named "${name}" exists: revoke it or choose another name`,
          undefined,
          {
            cause,
          },
        );
      throw cause;
    }
    return { name, tenant, createdAt, key: `nck_${keyId}_${secret}` };
  }

  list(): ApiKeyInfo[] {
    return (statement(this.db, 'SELECT * FROM api_keys ORDER BY created_at, name').all() as Row[]).map(info);
  }

  /** Revokes a key: requests with it are refused from now on (403). */
  revoke(name: string): ApiKeyInfo {
    const changed = statement(
      this.db,
      'UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL',
    ).run(new Date().toISOString(), name).changes;
    const row = statement(this.db, 'SELECT * FROM api_keys WHERE name = ?').get(name) as Row | undefined;
    if (!row) throw new UsageError(`no API key is named "${name}" (api-keys list shows them)`);
    if (changed === 0) throw new UsageError(`the API key "${name}" was revoked on ${row.revoked_at}`);
    return info(row);
  }

  /** The caller of an `Authorization` header: 401 without a valid key, 403 for a revoked one. */
  verify(authorization: string | undefined): Caller {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token)
      throw new RequestError(
        'NEUROCLUSTER_ERR_UNAUTHORIZED',
        'an API key is required: Authorization: Bearer <key>',
      );
    const parts = KEY.exec(token);
    const row = parts
      ? (statement(this.db, 'SELECT * FROM api_keys WHERE key_id = ?').get(parts[1]) as Row | undefined)
      : undefined;
    const valid =
      row !== undefined && timingSafeEqual(digest(row.salt, parts![2]!), Buffer.from(row.hash, 'hex'));
    if (!valid) throw new RequestError('NEUROCLUSTER_ERR_UNAUTHORIZED', 'the API key is not valid');
    if (row.revoked_at) throw new SecurityError(`the API key "${row.name}" was revoked on ${row.revoked_at}`);
    return { name: row.name, tenant: row.tenant };
  }
}
