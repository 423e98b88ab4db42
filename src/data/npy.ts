/**
 * NPY input (NumPy's `.npy`, format versions 1 to 3): float32 or float64, C order, 2-D (tabular,
 * n x d) or 3-D (time series, n x T x d).
 */
import { DataError } from '../core/errors.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export interface NpyArray {
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

function fail(message: string, source: string): never {
  throw new DataError('NEUROCLUSTER_ERR_DATA_FORMAT', message, { location: { file: source } });
}

/** What an NPY header says: the array's shape, its value size and byte order, where its data starts. */
export interface NpyHeader {
  readonly shape: readonly number[];
  /** Bytes per value: 4 (float32) or 8 (float64). */
  readonly size: 4 | 8;
  readonly littleEndian: boolean;
  readonly dataStart: number;
}

/**
 * Parses an NPY header from the first bytes of a file (at least the whole header); the header is
 * parsed as the Python literal NumPy writes, never evaluated.
 */
export function readNpyHeader(bytes: Uint8Array, source: string): NpyHeader {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b))
    fail('not an NPY file (bad magic bytes)', source);
  const major = bytes[6]!;
  if (major < 1 || major > 3) fail(`unsupported NPY format version ${major}`, source);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) fail('truncated NPY header', source);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(
    bytes.subarray(headerStart, dataStart),
  );

  const descr = /'descr'\s*:\s*'([<>|=]?)([a-z])(\d+)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shapeMatch = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeMatch) fail('malformed NPY header', source);
  const [, order, kind, sizeText] = descr;
  const size = Number(sizeText);
  if (kind !== 'f' || (size !== 4 && size !== 8)) {
    fail(`unsupported NPY dtype "${order}${kind}${sizeText}": use float32 or float64`, source);
  }
  if (fortran[1] === 'True') fail('Fortran-ordered NPY arrays are not supported: save with C order', source);
  const shape = shapeMatch[1]!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (shape.some((s) => !Number.isSafeInteger(s) || s < 0)) fail('malformed NPY shape', source);
  if (shape.length !== 2 && shape.length !== 3) {
    fail(`expected a 2-D (n x d) or 3-D (n x T x d) array, got ${shape.length}-D`, source);
  }
  return { shape, size, littleEndian: order !== '>', dataStart };
}

/** The bytes of NPY data an array of this header holds. */
export function npyDataBytes(header: NpyHeader): number {
  return header.shape.reduce((a, b) => a * b, 1) * header.size;
}

/** Decodes `bytes`, whole values of an NPY array's data, as float64. */
export function decodeNpyValues(header: NpyHeader, bytes: Uint8Array): Float64Array {
  const count = Math.floor(bytes.length / header.size);
  const out = new Float64Array(count);
  if (header.littleEndian && (bytes.byteOffset & (header.size - 1)) === 0) {
    // The common case, and a fast one: a typed view of the bytes themselves.
    const values =
      header.size === 4
        ? new Float32Array(bytes.buffer, bytes.byteOffset, count)
        : new Float64Array(bytes.buffer, bytes.byteOffset, count);
    out.set(values);
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) {
    const at = i * header.size;
    out[i] =
      header.size === 4 ? view.getFloat32(at, header.littleEndian) : view.getFloat64(at, header.littleEndian);
  }
  return out;
}

/** Reads a whole NPY file. */
export function readNpy(bytes: Uint8Array, source: string): NpyArray {
  const header = readNpyHeader(bytes, source);
  const need = npyDataBytes(header);
  const present = bytes.length - header.dataStart;
  if (present < need) fail(`truncated NPY data: ${need} bytes expected, ${present} present`, source);
  const data = decodeNpyValues(header, bytes.subarray(header.dataStart, header.dataStart + need));
  return { shape: header.shape, data };
}
