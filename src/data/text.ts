/** Decoding input bytes as text, refusing binary data and invalid UTF-8 with the line they are on. */
import { DataError } from '../core/errors.js';

function lineAt(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

/** The bytes as UTF-8 text; NUL bytes or invalid UTF-8 raise DATA_FORMAT with the line. */
export function decodeText(bytes: Uint8Array, source: string): string {
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    throw new DataError(
      'NEUROCLUSTER_ERR_DATA_FORMAT',
      `binary data (a NUL byte at offset ${nul}), not text`,
      {
        location: { file: source, row: lineAt(bytes, nul) },
      },
    );
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    // Find the first undecodable byte: decode growing prefixes' ends lazily via the lossy decoder.
    const lossy = new TextDecoder('utf-8').decode(bytes);
    const bad = lossy.indexOf('\uFFFD');
    const line = bad < 0 ? undefined : lossy.slice(0, bad).split('\n').length;
    throw new DataError('NEUROCLUSTER_ERR_DATA_FORMAT', 'not valid UTF-8 text', {
      cause,
      location: { file: source, ...(line === undefined ? {} : { row: line }) },
    });
  }
}
