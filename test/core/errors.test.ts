import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatError } from '../../src/cli/output.js';
import { ERROR_CODES } from '../../src/core/error-codes.js';
import {
  DataError,
  isNeuroclusterError,
  NeuroclusterError,
  toNeuroclusterError,
} from '../../src/core/errors.js';
import { quoteValue } from '../../src/core/printable.js';
import { VERSION } from '../../src/core/version.js';
import { ROOT } from '../helpers.js';

describe('errors', () => {
  it('carry a stable code, category, exit status, cause and location', () => {
    const cause = new Error('inner');
    const e = new DataError('NEUROCLUSTER_ERR_DATA_VALUE', 'bad cell', {
      cause,
      location: { file: 'a.csv', row: 3, column: 'b' },
    });
    expect(e).toBeInstanceOf(NeuroclusterError);
    expect(e.name).toBe('DataError');
    expect(e.cause).toBe(cause);
    expect([e.code, e.category, e.exitCode]).toEqual(['NEUROCLUSTER_ERR_DATA_VALUE', 'data', 2]);
    expect(e.suggestion).toBe(ERROR_CODES.NEUROCLUSTER_ERR_DATA_VALUE.recovery[0]);
    expect(formatError(e)).toBe('neurocluster: NEUROCLUSTER_ERR_DATA_VALUE: bad cell (a.csv:3:b)');
  });

  it('every code has the product prefix and an exit status of 1 or 2', () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^NEUROCLUSTER_ERR_[A-Z_]+$/);
      expect([1, 2]).toContain(info.exitCode);
    }
  });

  it('the brand guard recognises ours and wraps anything else as INTERNAL', () => {
    expect(isNeuroclusterError(new Error('x'))).toBe(false);
    const wrapped = toNeuroclusterError(new TypeError('boom'));
    expect(wrapped.code).toBe('NEUROCLUSTER_ERR_INTERNAL');
    expect(wrapped.exitCode).toBe(1);
    expect(wrapped.cause).toBeInstanceOf(TypeError);
  });

  it('quoted values are escaped and cut to 40 characters', () => {
    expect(quoteValue('a\nb\u0000')).toBe('"a\\nb\\u0000"');
    expect(quoteValue('x'.repeat(100))).toHaveLength(42);
  });

  it('the version constant matches package.json', () => {
    expect(VERSION).toBe(JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')).version);
  });
});
