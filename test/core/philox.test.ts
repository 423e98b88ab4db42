import { describe, expect, it } from 'vitest';
import { fnv1a, mulhi32, philox4x32, spikeThreshold } from '../../src/core/philox.js';
import { Random } from '../../src/core/random.js';

/** Known-answer vectors of Random123 (kat_vectors, philox4x32 with 10 rounds). */
const KAT: [number[], number[], number[]][] = [
  [
    [0, 0, 0, 0],
    [0, 0],
    [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
  ],
  [
    [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
    [0xffffffff, 0xffffffff],
    [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
  ],
  [
    [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
    [0xa4093822, 0x299f31d0],
    [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
  ],
];

describe('Philox4x32-10', () => {
  it.each(KAT.map((k, i) => [i, ...k] as const))(
    'matches the Random123 known-answer vector %i',
    (_i, ctr, key, expected) => {
      const out = philox4x32(ctr[0]!, ctr[1]!, ctr[2]!, ctr[3]!, key[0]!, key[1]!, new Uint32Array(4));
      expect(Array.from(out)).toEqual(expected);
    },
  );

  it('mulhi32 is the exact high word of the 64-bit product (edges and 10,000 random pairs)', () => {
    const cases: [number, number][] = [
      [0xffffffff, 0xffffffff],
      [0xd2511f53, 0x12345678],
      [65536, 65536],
      [1, 0xffffffff],
    ];
    const rng = new Random(9);
    for (let i = 0; i < 10_000; i++) cases.push([rng.uint32(), rng.uint32()]);
    for (const [a, b] of cases) expect(mulhi32(a, b)).toBe(Number((BigInt(a) * BigInt(b)) >> 32n));
  });

  it('24-bit uniforms under a threshold fire with the probability asked for', () => {
    const out = new Uint32Array(4);
    const threshold = spikeThreshold(0.1);
    let fired = 0;
    for (let step = 0; step < 25_000; step++) {
      philox4x32(7, step, 0, 0, 42, 0, out);
      for (const u of out) if (u >>> 8 < threshold) fired++;
    }
    expect(fired / 100_000).toBeCloseTo(0.1, 2);
    expect(spikeThreshold(1)).toBe(16777216);
    expect(spikeThreshold(-0.5)).toBe(0);
  });

  it('FNV-1a hashes bytes as published (offset basis, "a")', () => {
    expect(fnv1a(new Uint8Array())).toBe(0x811c9dc5);
    expect(fnv1a(new TextEncoder().encode('a'))).toBe(0xe40c292c);
  });
});
