/**
 * A kernel's uniform parameters by name. The field list of each module's `struct Params` is read
 * from its WGSL (the one place it is declared), so the host writes `{ n, d, k }` and the bytes land
 * where the shader reads them: u32 and i32 fields as integers, f32 fields as floats, 16-byte
 * rounded. A field the host does not give (other than `_pad...`) or a name the struct does not
 * have is a programming error, thrown at once.
 */
import { WGSL, type WgslModule } from './wgsl.generated.js';

export interface ParamField {
  readonly name: string;
  readonly type: 'u32' | 'i32' | 'f32';
}

const parsed = new Map<string, readonly ParamField[]>();

/** The fields of `struct <name>` in a WGSL module, in order; only 4-byte scalars are allowed. */
export function structFields(module: WgslModule, name = 'Params'): readonly ParamField[] {
  const key = `${module}.${name}`;
  const known = parsed.get(key);
  if (known) return known;
  const source = WGSL[module].replace(/\/\/[^\n]*/g, '');
  const body = new RegExp(`struct\\s+${name}\\s*\\{([^}]*)\\}`).exec(source)?.[1];
  if (body === undefined) throw new Error(`${module}.wgsl has no struct ${name}`);
  const fields = body
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f !== '')
    .map((f) => {
      const m = /^(\w+)\s*:\s*(\w+)$/.exec(f);
      if (!m || !['u32', 'i32', 'f32'].includes(m[2]!)) {
        throw new Error(`${module}.wgsl struct ${name}: "${f}" is not a 4-byte scalar field`);
      }
      return { name: m[1]!, type: m[2] as ParamField['type'] };
    });
  parsed.set(key, fields);
  return fields;
}

/** The bytes of `module`'s `struct Params` holding `values`, by field name. */
export function paramsOf(module: WgslModule, values: Readonly<Record<string, number>>): ArrayBuffer {
  const fields = structFields(module);
  const names = new Set(fields.map((f) => f.name));
  for (const given of Object.keys(values)) {
    if (!names.has(given)) throw new Error(`${module}.wgsl struct Params has no field ${given}`);
  }
  const words = new ArrayBuffer(Math.ceil(fields.length / 4) * 16);
  const asU32 = new Uint32Array(words);
  const asI32 = new Int32Array(words);
  const asF32 = new Float32Array(words);
  fields.forEach(({ name, type }, i) => {
    const v = values[name];
    if (v === undefined) {
      if (name.startsWith('_pad')) return;
      throw new Error(`${module}.wgsl struct Params: no value for ${name}`);
    }
    if (type === 'f32') asF32[i] = v;
    else if (type === 'i32') asI32[i] = v;
    else asU32[i] = v >>> 0;
  });
  return words;
}
