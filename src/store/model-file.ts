/**
 * The versioned model file: everything `predict` needs (parameters, the fitted cleaning, the
 * centroids, the encoder weights), with a SHA-256 checksum over its body, encrypted at rest by
 * default (`security.encryptModels`). A truncated, edited or newer-version file is refused with a
 * clear error, never half-read.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { isNeuroclusterError, ModelFileError, withContext } from '../resilience/errors.js';
import { writeEncryptedFile } from '../security/encrypted-files.js';
import { readFileDecrypted } from '../security/envelope.js';
import { Keyring } from '../security/keyring.js';
import { writeFileAtomic } from './atomic.js';

export const MODEL_FORMAT = 'neurocluster-model';
/** Bumped when the body changes incompatibly; files of a higher version are refused. */
export const MODEL_VERSION = 1;

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

const envelopeSchema = z.object({
  format: z.literal(MODEL_FORMAT),
  version: z.int().min(1),
  checksum: z.string().regex(/^sha256:[0-9a-f]{64}$/),
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

/**
 * Writes a model file atomically (a temporary file renamed into place); with a keyring, encrypted
 * at rest (src/security/envelope.ts) around the same JSON document, owner-only and recorded for
 * `keys rotate`. Returns its size in bytes.
 */
export async function writeModelFile(path: string, body: ModelBody, keyring?: Keyring): Promise<number> {
  const doc = { format: MODEL_FORMAT, version: MODEL_VERSION, checksum: checksumOf(body), body };
  const text = `${JSON.stringify(doc)}\n`;
  if (keyring) return writeEncryptedFile(path, text, keyring);
  await writeFileAtomic(path, text);
  return Buffer.byteLength(text);
}

/**
 * Reads and verifies a model file, plain or encrypted (then decrypted with the keyring, opened
 * when first needed): any changed byte of an encrypted one is NEUROCLUSTER_ERR_INTEGRITY.
 */
export async function readModelFile(
  path: string,
  keyring: () => Keyring = () => Keyring.open(),
): Promise<ModelBody> {
  let text: string;
  try {
    text = (await readFileDecrypted(path, keyring)).toString('utf8');
  } catch (cause) {
    if (isNeuroclusterError(cause)) throw withContext(cause, { phase: 'load' });
    throw new ModelFileError(`cannot read model file: ${(cause as Error).message}`, {
      cause,
      location: { file: path },
    });
  }
  return parseModelText(text, path);
}

/** Checks a model document (its text, plain): format, version, checksum, consistency. */
export function parseModelText(text: string, path: string): ModelBody {
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
  const { version, checksum, body } = envelope.data;
  if (version > MODEL_VERSION) {
    throw new ModelFileError(
      `model file version ${version} is newer than this neurocluster reads (${MODEL_VERSION})`,
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
  return parsed.data;
}
