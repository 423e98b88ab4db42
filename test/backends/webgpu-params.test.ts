/**
 * Uniform parameters by name (src/backends/webgpu/params.ts): the field list comes from each WGSL
 * module's `struct Params`, and the bytes land where the shader reads them.
 */
import { describe, expect, it } from 'vitest';
import { paramsOf, structFields } from '../../src/backends/webgpu/params.js';
import { WGSL, type WgslModule } from '../../src/backends/webgpu/wgsl.generated.js';

describe('WebGPU uniform parameters', () => {
  it('reads the fields of every module that declares struct Params, in order, comments aside', () => {
    const modules = (Object.keys(WGSL) as WgslModule[]).filter((m) => /struct\s+Params\b/.test(WGSL[m]));
    expect(modules.length).toBeGreaterThanOrEqual(7);
    for (const m of modules) expect(structFields(m).length, m).toBeGreaterThan(3);
    expect(structFields('assemble').map((f) => `${f.name}:${f.type}`)).toEqual([
      'n:u32',
      'src_cols:u32',
      'width:u32',
      'offset:u32',
      'kept:u32',
      'ordered:u32',
      'scale:f32',
    ]);
  });

  it('writes integers as u32 and floats as f32 at their fields, padded to 16 bytes', () => {
    const bytes = paramsOf('assemble', {
      n: 7,
      src_cols: 3,
      width: 9,
      offset: 2,
      kept: 1,
      ordered: 1,
      scale: 0.5,
    });
    expect(bytes.byteLength).toBe(32);
    expect([...new Uint32Array(bytes, 0, 6)]).toEqual([7, 3, 9, 2, 1, 1]);
    expect(new Float32Array(bytes)[6]).toBe(0.5);
    // Padding fields need no value; they are zero.
    const distances = new Uint32Array(paramsOf('distances', { m: 1, n: 2, d: 3, flag: 4, k: 5 }));
    expect([...distances]).toEqual([1, 2, 3, 4, 5, 0, 0, 0]);
  });

  it('refuses a field the struct does not have, and a missing one', () => {
    expect(() => paramsOf('matmul', { m: 1, n: 1, k: 1, has_bias: 0, bias: 1 })).toThrow(/no field bias/);
    expect(() => paramsOf('matmul', { m: 1, n: 1, k: 1 })).toThrow(/no value for has_bias/);
  });
});
