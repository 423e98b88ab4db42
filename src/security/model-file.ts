/**
 * The versioned model file: everything `predict` needs (parameters, the fitted cleaning, the
 * centroids, the encoder weights), with a SHA-256 checksum over its body, encrypted at rest by
 * default (`security.encryptModels`). A truncated, edited or newer-version file is refused with a
 * clear error, never half-read.
 *
 * A model decides what `predict` answers, so it must come from this engine: an encrypted file is
 * authenticated by its encryption, and a plain one carries a keyed checksum as well (`mac`:
 * HMAC-SHA256 of its format, version and body, keyed from the keyring). A plain file without one
 * (written before keyed checksums, or by anyone who can recompute a SHA-256) is refused as
 * NEUROCLUSTER_ERR_INTEGRITY unless the caller allows unauthenticated models
 * (`security.allowUnauthenticatedModels`, `--allow-unauthenticated-model`).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { engineFilesOf } from '../config/home.js';
import { writeFileAtomic } from '../core/atomic.js';
import { isNeuroclusterError, ModelFileError, SecurityError, withContext } from '../core/errors.js';
import { writeEncryptedFile } from './encrypted-files.js';
import { decryptBuffer, isEncrypted } from './envelope.js';
import { Keyring } from './keyring.js';
import { openWithinLimits } from './secure-load.js';

export const MODEL_FORMAT = 'neurocluster-model';
/**
 * Bumped when the body changes incompatibly; files of a higher version are refused. 2: an encoder
 * may hold a co-association consensus (`voters`) or an ESN's state PCA, which a reader of 1 would
 * skip and then encode wrongly.
 */
export const MODEL_VERSION = 2;

const scalerSchema = z.object({
  kind: z.enum(['tabular', 'series']),
  inputColumns: z.array(z.string()),
  keep: z.array(z.int().min(0)),
  means: z.array(z.number()),
  scales: z.array(z.number()),
  standardize: z.boolean(),
  series: z.object({ length: z.int().min(1), dims: z.int().min(1) }).optional(),
});

const bodySchema = z.object({
  method: z.string(),
  createdWith: z.string(),
  parameters: z.record(z.string(), z.unknown()),
  scaler: scalerSchema,
  k: z.int().min(1),
  d: z.int().min(1),
  centroids: z.array(z.number()),
  /** The fitted encoder pipeline (weights, block scalers, PCA), in portable form. */
  encoder: z.unknown().optional(),
});

export type ModelBody = z.infer<typeof bodySchema>;

const MAC = /^hmac-sha256:([A-Za-z0-9_-]+):([0-9a-f]{64})$/;

const envelopeSchema = z.object({
  format: z.literal(MODEL_FORMAT),
  // Any value: one this reader does not know is a version error (below), not a damaged file.
  version: z.unknown().refine((v) => v !== undefined, 'required'),
  checksum: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  mac: z.string().regex(MAC).optional(),
  body: z.unknown(),
});

const TYPED = { Float64Array, Float32Array, Int32Array, Uint32Array, Uint8Array } as const;
type TypedName = keyof typeof TYPED;

/**
 * Plain JSON for a value holding typed arrays (encoder weights): each becomes
 * `{ "$typed": "Float64Array", "data": [...] }`, which {@link fromPortable} turns back.
 */
export function toPortable(value: unknown): unknown {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const name = value.constructor.name as TypedName;
    if (!(name in TYPED)) throw new TypeError(`cannot store a ${name}`);
    return { $typed: name, data: Array.from(value as unknown as ArrayLike<number>) };
  }
  if (Array.isArray(value)) return value.map(toPortable);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, toPortable(v)]),
    );
  }
  return value;
}

/** The inverse of {@link toPortable}. */
export function fromPortable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromPortable);
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (typeof record.$typed === 'string' && Array.isArray(record.data) && record.$typed in TYPED) {
      return TYPED[record.$typed as TypedName].from(record.data as number[]);
    }
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, fromPortable(v)]));
  }
  return value;
}

/** The checksum a model file carries over its body. */
export function checksumOf(body: unknown): string {
  return `sha256:${createHash('sha256').update(JSON.stringify(body)).digest('hex')}`;
}

/** The keyed checksum of a plain model file: HMAC-SHA256 of format, version and body. */
function macOf(body: unknown, version: number, keyring: Keyring, keyId: string): string {
  const hmac = createHmac('sha256', keyring.derived(keyId, 'model-file'))
    .update(`${MODEL_FORMAT}\0${version}\0`)
    .update(JSON.stringify(body))
    .digest('hex');
  return `hmac-sha256:${keyId}:${hmac}`;
}

/**
 * Writes a model file atomically (a temporary file renamed into place). With a keyring it is
 * encrypted at rest (src/security/envelope.ts) around the same JSON document, owner-only and
 * recorded for `keys rotate`; or, with `encrypt: false`, plain with a keyed checksum. Without a
 * keyring it is plain and unauthenticated (read back only where that is allowed). Returns its size
 * in bytes.
 */
export async function writeModelFile(
  path: string,
  body: ModelBody,
  keyring?: Keyring,
  options: { encrypt?: boolean } = {},
): Promise<number> {
  const doc = {
    format: MODEL_FORMAT,
    version: MODEL_VERSION,
    checksum: checksumOf(body),
    ...(keyring && options.encrypt === false
      ? { mac: macOf(body, MODEL_VERSION, keyring, keyring.current().id) }
      : {}),
    body,
  };
  const text = `${JSON.stringify(doc)}\n`;
  if (keyring && options.encrypt !== false) return writeEncryptedFile(path, text, keyring);
  await writeFileAtomic(path, text, { engine: engineFilesOf() });
  return Buffer.byteLength(text);
}

/** How far a model file is trusted, and how large it may be. */
export interface ModelReadOptions {
  /** Accept a plain model with no keyed checksum (anyone can recompute its SHA-256). */
  readonly allowUnauthenticated?: boolean;
  /** The largest file read, in bytes (security.maxFileBytes). */
  readonly maxFileBytes?: number;
}

/**
 * Reads and verifies a model file, plain or encrypted (then decrypted with the keyring, opened
 * when first needed): any changed byte of an encrypted one, or of a plain one's keyed checksum, is
 * NEUROCLUSTER_ERR_INTEGRITY, and so is a plain one without a keyed checksum unless allowed. It is
 * opened once (a regular file only) and that descriptor read.
 */
export async function readModelFile(
  path: string,
  keyring: () => Keyring = () => Keyring.open(),
  options: ModelReadOptions = {},
): Promise<ModelBody> {
  let bytes: Buffer;
  try {
    const handle = await openWithinLimits(path, {
      dataRoots: [],
      maxFileBytes: options.maxFileBytes ?? Number.MAX_SAFE_INTEGER,
    });
    try {
      bytes = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (cause) {
    if (isNeuroclusterError(cause) && cause.code !== 'NEUROCLUSTER_ERR_DATA_READ') {
      throw withContext(cause, { phase: 'load' });
    }
    throw new ModelFileError(`cannot read model file: ${(cause as Error).message}`, {
      cause,
      location: { file: path },
    });
  }
  const encrypted = isEncrypted(bytes);
  let text: string;
  try {
    text = (encrypted ? decryptBuffer(bytes, keyring()) : bytes).toString('utf8');
  } catch (cause) {
    throw isNeuroclusterError(cause) ? withContext(cause, { phase: 'load' }) : cause;
  }
  const { body, version, mac } = parseModelDocument(text, path);
  // An encrypted file is authenticated by its encryption.
  if (!encrypted) authenticate(body, version, mac, path, keyring, options.allowUnauthenticated === true);
  return body;
}

/** Checks a plain model's keyed checksum; refuses one without, unless that is allowed. */
function authenticate(
  body: ModelBody,
  version: number,
  mac: string | undefined,
  path: string,
  keyring: () => Keyring,
  allowUnauthenticated: boolean,
): void {
  if (mac === undefined) {
    if (allowUnauthenticated) return;
    throw new SecurityError(
      'model file is not authenticated (plain, with no keyed checksum: anyone can recompute its SHA-256); ' +
        'refused: save it again with this keyring, or allow it (security.allowUnauthenticatedModels, --allow-unauthenticated-model)',
      { integrity: true, location: { file: path } },
    );
  }
  const keyId = MAC.exec(mac)![1]!;
  const want = Buffer.from(macOf(body, version, keyring(), keyId));
  const got = Buffer.from(mac);
  if (want.length !== got.length || !timingSafeEqual(want, got)) {
    throw new SecurityError(
      'model file keyed checksum does not match its content (edited after it was written)',
      {
        integrity: true,
        location: { file: path },
      },
    );
  }
}

/** Checks a model document (its text, plain): format, version, checksum, consistency. */
export function parseModelText(text: string, path: string): ModelBody {
  return parseModelDocument(text, path).body;
}

/** What {@link parseModelText} checks, with the version and the keyed checksum the document carries. */
function parseModelDocument(text: string, path: string): { body: ModelBody; version: number; mac?: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new ModelFileError('model file is truncated or not JSON', { cause, location: { file: path } });
  }
  const envelope = envelopeSchema.safeParse(doc);
  if (!envelope.success) {
    throw new ModelFileError('not a neurocluster model file', {
      cause: envelope.error,
      location: { file: path },
    });
  }
  const { version, checksum, mac, body } = envelope.data;
  if (
    typeof version !== 'number' ||
    !Number.isSafeInteger(version) ||
    version < 1 ||
    version > MODEL_VERSION
  ) {
    const newer = typeof version === 'number' && version > MODEL_VERSION;
    throw new ModelFileError(
      newer
        ? `model file version ${version} is newer than this neurocluster reads (${MODEL_VERSION})`
        : `model file version ${JSON.stringify(version)} is not a version this neurocluster reads (1 to ${MODEL_VERSION})`,
      { newerVersion: true, location: { file: path } },
    );
  }
  if (checksumOf(body) !== checksum) {
    throw new ModelFileError('model file checksum does not match its content (corrupt or edited)', {
      location: { file: path },
    });
  }
  const parsed = bodySchema.safeParse(body);
  if (!parsed.success || parsed.data.centroids.length !== parsed.data.k * parsed.data.d) {
    throw new ModelFileError('model file body is inconsistent', {
      cause: parsed.error,
      location: { file: path },
    });
  }
  return { body: parsed.data, version, ...(mac === undefined ? {} : { mac }) };
}
