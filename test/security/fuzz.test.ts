/**
 * Fuzzing the parsers that read what users hand the engine: the data loaders (CSV, JSON, NPY),
 * the configuration reader and checker, and the model and encrypted-file readers. Seeded random
 * bytes, mutations of valid files, huge lines, deep JSON, odd encodings and YAML alias bombs: each
 * input ends in a result or in one of the engine's errors (a code, a message), never another
 * exception, a crash or a hang (each case runs under a time limit).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { checkConfig } from '../../src/config/levels.js';
import { readConfigFile } from '../../src/config/load.js';
import { isNeuroclusterError } from '../../src/core/errors.js';
import { Random } from '../../src/core/random.js';
import { parseDataset } from '../../src/data/load.js';
import { decryptBuffer, decryptFile, encryptBuffer } from '../../src/security/envelope.js';
import { Keyring } from '../../src/security/keyring.js';
import { readModelFile } from '../../src/security/model-file.js';
import { loadDatasetFile } from '../../src/security/secure-load.js';
import { tempDir } from '../helpers.js';

const rng = new Random(20261127);
const bytes = (n: number) => Uint8Array.from({ length: n }, () => rng.uint32() & 0xff);
const pick = <T>(xs: readonly T[]): T => xs[rng.uint32() % xs.length]!;
const OPTIONS = { nanPolicy: 'error' as const };

/** Runs `work`; it must finish within `ms` and throw nothing but the engine's errors. */
async function survives(what: string, work: () => unknown, ms = 2000): Promise<'ok' | string> {
  const t0 = performance.now();
  let outcome: 'ok' | string = 'ok';
  try {
    await work();
  } catch (e) {
    if (!isNeuroclusterError(e)) throw new Error(`${what}: ${String(e)}`, { cause: e });
    expect(e.message.length, what).toBeGreaterThan(0);
    outcome = e.code;
  }
  expect(performance.now() - t0, `${what} took too long`).toBeLessThan(ms);
  return outcome;
}

/** Valid inputs of each format, to mutate. */
const SEEDS: [string, Uint8Array][] = [
  ['x.csv', new TextEncoder().encode('a,b,label\n1,2,x\n3,4,y\n5.5,-6e3,x\n')],
  ['x.json', new TextEncoder().encode('[{"a":1,"b":2},{"a":3,"b":4},{"a":5,"b":6}]')],
  ['x.jsonl', new TextEncoder().encode('{"a":1,"b":2}\n{"a":3,"b":4}\n\n[5,6]\n')],
  [
    'x.parquet',
    new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'a', data: [1, 2, 3, 4, 5, 6], type: 'DOUBLE' },
          { name: 'b', data: [1n, 2n, 3n, 4n, 5n, 6n], type: 'INT64' },
          { name: 'label', data: ['x', 'y', 'x', 'y', 'x', 'y'], type: 'STRING' },
        ],
        rowGroupSize: 2,
      }),
    ),
  ],
  [
    'x.npy',
    (() => {
      const header = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }";
      const pad = 64 - ((10 + header.length + 1) % 64);
      const h = `${header}${' '.repeat(pad)}\n`;
      const head = new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length & 0xff, h.length >> 8]);
      const body = new Uint8Array(Float64Array.from([1, 2, 3, 4, 5, 6]).buffer);
      return Uint8Array.from([...head, ...new TextEncoder().encode(h), ...body]);
    })(),
  ],
];

function mutate(input: Uint8Array): Uint8Array {
  const out = Uint8Array.from(input);
  const kind = rng.uint32() % 4;
  if (kind === 0)
    for (let i = 0; i < 1 + (rng.uint32() % 8); i++) out[rng.uint32() % out.length] = rng.uint32() & 0xff;
  if (kind === 1) return out.subarray(0, rng.uint32() % out.length);
  if (kind === 2) {
    const at = rng.uint32() % out.length;
    return Uint8Array.from([...out.subarray(0, at), ...bytes(1 + (rng.uint32() % 32)), ...out.subarray(at)]);
  }
  if (kind === 3) out.fill(pick([0, 0x2c, 0x0a, 0x22, 0x5b]), rng.uint32() % out.length);
  return out;
}

describe('the data loaders under fuzzing', () => {
  it('take 900 random and mutated inputs without a crash or a foreign exception', async () => {
    for (let i = 0; i < 900; i++) {
      const [name, seed] = pick(SEEDS);
      const input = i % 3 === 0 ? bytes(rng.uint32() % 512) : mutate(seed);
      await survives(`${name} #${i}`, () => parseDataset(input, name, OPTIONS));
    }
  });

  it('survive a huge line, deep JSON, odd encodings and NUL bytes', async () => {
    const enc = new TextEncoder();
    const cases: [string, Uint8Array][] = [
      ['huge.csv', enc.encode(`a,b\n${'9'.repeat(4_000_000)},1\n`)],
      [
        'wide.csv',
        enc.encode(
          `${Array.from({ length: 50_000 }, (_, j) => `c${j}`).join(',')}\n${'1,'.repeat(49_999)}1\n`,
        ),
      ],
      ['deep.json', enc.encode(`${'['.repeat(100_000)}${']'.repeat(100_000)}`)],
      ['deep-objects.json', enc.encode(`${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`)],
      [
        'utf16.csv',
        Uint8Array.from([0xff, 0xfe, ...Array.from(enc.encode('a,b\n1,2\n')).flatMap((b) => [b, 0])]),
      ],
      ['latin1.csv', Uint8Array.from([0x61, 0xe9, 0x2c, 0x62, 0x0a, 0x31, 0x2c, 0x32, 0x0a])],
      ['nul.csv', enc.encode('a,b\n1\u0000,2\n3,4\n')],
      ['bom.csv', Uint8Array.from([0xef, 0xbb, 0xbf, ...enc.encode('a,b\n1,2\n3,4\n')])],
      ['crlf.csv', enc.encode('a,b\r\n1,2\r\n3,4\r\n')],
      ['quotes.csv', enc.encode('a,b\n"1,2\n3,4\n')],
      ['npy-shape.npy', Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0xff, 0xff])],
    ];
    for (const [name, input] of cases) await survives(name, () => parseDataset(input, name, OPTIONS), 10_000);
  });
});

describe('the configuration under fuzzing', () => {
  it('checks random documents with clear problems, never a crash', async () => {
    const values = [
      null,
      true,
      0,
      -1,
      1e308,
      Number.NaN,
      'x',
      '',
      [],
      {},
      [1, 'a'],
      { a: { b: {} } },
      '10m',
      'NaN',
    ];
    const keys = [
      'engine',
      'kmeans',
      'privacy',
      'audit',
      'security',
      'nClusters',
      'backend',
      'epsilon',
      '__proto__',
      'constructor',
      'x',
    ];
    const doc = (depth: number): unknown => {
      if (depth === 0 || rng.uint32() % 3 === 0) return pick(values);
      const o: Record<string, unknown> = {};
      for (let i = 0; i < 1 + (rng.uint32() % 4); i++) o[pick(keys)] = doc(depth - 1);
      return o;
    };
    for (let i = 0; i < 500; i++) {
      const d = doc(4);
      await survives(`config #${i}`, () => {
        const { problems } = checkConfig(
          d as Record<string, unknown>,
          pick(['strict', 'moderate', 'permissive']),
        );
        for (const p of problems) expect(typeof p.message).toBe('string');
      });
    }
  });

  it('reads hostile files: YAML alias bombs, deep nesting, binary, wrong extensions', async () => {
    const dir = tempDir();
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++)
      bomb.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [*${String.fromCharCode(96 + i)},*${String.fromCharCode(96 + i)},*${String.fromCharCode(96 + i)},*${String.fromCharCode(96 + i)}]`,
      );
    const files: [string, string | Uint8Array][] = [
      ['bomb.yaml', bomb.join('\n')],
      ['deep.yaml', `${'- '.repeat(5000)}1`],
      ['deep.json', `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`],
      ['binary.yaml', bytes(4096)],
      ['list.json', '[1,2,3]'],
      ['config.toml', 'a = 1'],
      ['tags.yaml', '!!python/object:os.system ["rm -rf /"]'],
    ];
    for (const [name, content] of files) {
      const path = join(dir, name);
      writeFileSync(path, content);
      await survives(name, async () => checkConfig(await readConfigFile(path), 'strict'), 10_000);
    }
  });
});

describe('the model and encrypted-file readers under fuzzing', () => {
  it('refuse random and mutated model files and ciphertexts with the engine’s errors', async () => {
    const dir = tempDir();
    const keyring = Keyring.open({ env: { NEUROCLUSTER_KEYRING: join(dir, 'k.json') }, warn: () => {} });
    const sealed = encryptBuffer(new TextEncoder().encode('{"format":"neurocluster-model"}'), keyring, 16);
    for (let i = 0; i < 300; i++) {
      const path = join(dir, `m${i}.json`);
      writeFileSync(
        path,
        i % 2
          ? bytes(rng.uint32() % 300)
          : mutate(
              new TextEncoder().encode(
                '{"format":"neurocluster-model","version":1,"checksum":"sha256:00","body":{}}',
              ),
            ),
      );
      await survives(`model #${i}`, () => readModelFile(path));
      const bad = mutate(sealed);
      const outcome = await survives(`ciphertext #${i}`, () => decryptBuffer(bad, keyring));
      if (outcome === 'ok')
        expect(Buffer.from(bad).equals(sealed), `ciphertext #${i} decrypted though changed`).toBe(true);
    }
  });
});

describe('encrypted data files under fuzzing', () => {
  it('load an encrypted CSV only when it is intact, and stream-decrypt nothing from a changed one', async () => {
    const dir = tempDir();
    const keyring = Keyring.open({ warn: () => {} });
    const sealed = encryptBuffer(SEEDS[0]![1], keyring, 16);
    for (let i = 0; i < 200; i++) {
      const bad = i === 0 ? sealed : mutate(sealed);
      const path = join(dir, `data${i}.csv.enc`);
      writeFileSync(path, bad);
      const intact = Buffer.from(bad).equals(sealed);
      const loaded = await survives(`encrypted csv #${i}`, () => loadDatasetFile(path, OPTIONS));
      expect(loaded === 'ok', `encrypted csv #${i}`).toBe(intact);
      const out = join(dir, `plain${i}.csv`);
      const streamed = await survives(`streamed #${i}`, () => decryptFile(path, out, keyring));
      expect(streamed === 'ok', `streamed #${i}`).toBe(intact);
      expect(existsSync(out), `streamed #${i} left output`).toBe(intact);
    }
  });
});
