/**
 * Philox4x32-10 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"): a
 * counter-based generator. Its output is a pure function of a 128-bit counter and a 64-bit key,
 * so a spike drawn for (seed, sample, step, unit) is the same whatever the row order, the thread
 * or the backend: the WGSL and WASM kernels compute the same 32-bit integer arithmetic bit for bit.
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/**
 * High 32 bits of the 64-bit product of two uint32. a * b = (a * bHi) 2^16 + a * bLo, both partial
 * products below 2^48 and so exact in a double; the low 16 bits of a * bLo cannot carry into the
 * high word, so it is floor((a * bHi + floor(a * bLo / 2^16)) / 2^16), all exact.
 */
export function mulhi32(a: number, b: number): number {
  const low = Math.floor((a * (b & 0xffff)) / 65536);
  return Math.floor((a * (b >>> 16) + low) / 65536) >>> 0;
}

/**
 * The four uint32 outputs for counter (c0..c3) and key (k0, k1), written into `out`.
 * Allocation-free, as it runs once per sample, step and four units inside the spiking kernel.
 */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array,
): Uint32Array {
  let x0 = c0 >>> 0;
  let x1 = c1 >>> 0;
  let x2 = c2 >>> 0;
  let x3 = c3 >>> 0;
  let key0 = k0 >>> 0;
  let key1 = k1 >>> 0;
  for (let round = 0; round < 10; round++) {
    const hi0 = mulhi32(M0, x0);
    const lo0 = Math.imul(M0, x0) >>> 0;
    const hi1 = mulhi32(M1, x2);
    const lo1 = Math.imul(M1, x2) >>> 0;
    x0 = (hi1 ^ x1 ^ key0) >>> 0;
    x1 = lo1;
    x2 = (hi0 ^ x3 ^ key1) >>> 0;
    x3 = lo0;
    key0 = (key0 + W0) >>> 0;
    key1 = (key1 + W1) >>> 0;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
  return out;
}

/** The two key words of a seed (any safe integer). */
export function philoxKey(seed: number): [number, number] {
  return [seed >>> 0, Math.floor(seed / 0x100000000) >>> 0];
}

/**
 * A spike probability as the integer threshold the kernels compare 24-bit uniforms against:
 * a spike fires when `(u >>> 8) < threshold`. Probabilities are rounded to 24 bits here, once,
 * so every backend decides every spike identically.
 */
export function spikeThreshold(probability: number): number {
  const p = Math.min(1, Math.max(0, probability));
  return Math.floor(p * 16777216);
}

/** FNV-1a over bytes: the identity of a sample (its id, else its content) as 32 bits. */
export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
