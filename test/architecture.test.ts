/**
 * The import graph drawn from the code, held to the layers of docs/architecture.md: a folder
 * imports only from folders below it, no two files import each other even through others, no one
 * outside src/backends and src/bench reaches into one backend's files (they go through the kernel
 * contract), and only the configuration and the CLI read the environment.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

/**
 * Bottom to top: each may import from those before it. `(root)` is src/*.ts, `bench` the harness of
 * `neurocluster bench`, `service` the job service, `distributed` its queue and workers, `cli` the command.
 */
const LAYERS = [
  'core',
  'config',
  'linalg',
  'backends',
  'observability',
  'resilience',
  'data',
  'store',
  'encoders',
  'cluster',
  'report',
  'security',
  'runtime',
  'fit',
  '(root)',
  'bench',
  'service',
  'distributed',
  'cli',
] as const;

const SRC = resolve(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** Every relative import and re-export of every source file, type-only ones included. */
function imports(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const pattern =
    /(?:^|\n)\s*(?:import|export)\b[^;'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(pattern)].map((m) =>
      resolve(dirname(file), (m[1] ?? m[2])!).replace(/\.js$/, '.ts'),
    );
    graph.set(
      relative(SRC, file),
      targets.filter((t) => t.startsWith(SRC)).map((t) => relative(SRC, t)),
    );
  }
  return graph;
}

const layerOf = (file: string) => (file.includes('/') ? file.split('/')[0]! : '(root)');

const rank = (file: string) => LAYERS.indexOf(layerOf(file) as (typeof LAYERS)[number]);

/** The imports of a graph that go from a folder to one above it. */
function upward(graph: Map<string, string[]>): string[] {
  return [...graph].flatMap(([file, targets]) =>
    targets.filter((t) => rank(t) > rank(file)).map((t) => `${file} -> ${t}`),
  );
}

/** The cycles of a graph, each as the files round it. */
function cycles(graph: Map<string, string[]>): string[] {
  const state = new Map<string, 'open' | 'done'>();
  const found: string[] = [];
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      found.push([...path.slice(path.indexOf(file)), file].join(' -> '));
      return;
    }
    state.set(file, 'open');
    for (const t of graph.get(file) ?? []) visit(t, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of graph.keys()) visit(file, []);
  return found;
}

describe('the layers of src', () => {
  const graph = imports();

  it('reads the whole tree', () => {
    expect(graph.size).toBeGreaterThan(80);
    expect(graph.get('clusterer.ts')?.length).toBeGreaterThan(10);
    for (const file of graph.keys()) expect(LAYERS, file).toContain(layerOf(file));
  });

  it('imports only downward: no folder imports from one above it', () => {
    expect(upward(graph)).toEqual([]);
  });

  it('has no cycle of files', () => {
    expect(cycles(graph)).toEqual([]);
  });

  // The bench times each backend by its own counters too (WebGPU kernel time, WASM threads and roofline).
  it("reaches one backend's files only from src/backends and src/bench (the rest uses the kernel contract)", () => {
    const reaching = [...graph].flatMap(([file, targets]) =>
      ['backends', 'bench'].includes(layerOf(file)) || file === 'index.ts'
        ? []
        : targets.filter((t) => /^backends\/(js|wasm|webgpu)\//.test(t)).map((t) => `${file} -> ${t}`),
    );
    expect(reaching).toEqual([]);
  });

  it('reads the environment only in src/config and src/cli', () => {
    const readers = [...graph.keys()].filter(
      (file) =>
        !['config', 'cli'].includes(layerOf(file)) &&
        /\bprocess\.env\b/.test(readFileSync(join(SRC, file), 'utf8')),
    );
    expect(readers).toEqual([]);
  });

  it('finds an upward import and a cycle where there is one', () => {
    const bad = new Map([
      ['core/a.ts', ['cli/main.ts']],
      ['cli/main.ts', ['core/a.ts']],
    ]);
    expect(upward(bad)).toEqual(['core/a.ts -> cli/main.ts']);
    expect(cycles(bad)).toEqual(['core/a.ts -> cli/main.ts -> core/a.ts']);
  });
});
