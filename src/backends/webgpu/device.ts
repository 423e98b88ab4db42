/**
 * The WebGPU device: the adapter searched for in a child process (Dawn's native warnings stay
 * there), Dawn (the npm package `webgpu`) loaded only once the search found one to use, the device
 * opened with the adapter's own limits, and its failures turned into typed engine errors.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { BackendError } from '../../core/errors.js';

import type { BackendOptions } from '../backend.js';

/**
 * How to pick and size the device: `adapter`, part of the adapter's name to require (Dawn's
 * `adapter=` flag); `allowSoftware`, take a software adapter such as SwiftShader under `auto`;
 * `memoryBudgetBytes`, device memory the backend may hold at once. They come from the checked
 * configuration's `engine.webgpu` (where NEUROCLUSTER_WEBGPU_* set them), never from the environment.
 */
export type WebGpuSettings = NonNullable<BackendOptions['webgpu']>;

/** The spec's numeric flags (fixed by the WebGPU standard), so no globals need installing. */
export const Usage = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
export const MAP_READ = 0x1;
export const COMPUTE_STAGE = 0x4;

/** Names that give away a CPU or software rasterizer behind a GPU API. */
const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|software|microsoft basic render|\bwarp\b/i;

/** What an adapter says of itself: Dawn's GPUAdapterInfo, or the child search's copy of it. */
export type AdapterFacts = Pick<
  GPUAdapterInfo,
  'vendor' | 'architecture' | 'device' | 'description' | 'isFallbackAdapter'
>;

/** The adapter in words, for logs and `result.backendDevice`. */
export function describeAdapter(info: AdapterFacts): string {
  const parts = [info.description || info.device, info.vendor, info.architecture].filter((s) => s);
  return parts.length > 0 ? parts.join(' / ') : 'unnamed adapter';
}

/** True for a CPU or software adapter (SwiftShader, llvmpipe...), which `auto` passes over. */
export function isSoftwareAdapter(info: AdapterFacts): boolean {
  return (
    info.isFallbackAdapter === true ||
    SOFTWARE.test(`${info.description} ${info.device} ${info.architecture} ${info.vendor}`)
  );
}

type DawnModule = { create(flags: string[]): GPU };
let dawn: Promise<DawnModule> | undefined;

/**
 * Dawn is an optional peer dependency (the npm package `webgpu`, 132 MB), not installed with the
 * engine: its absence says how to add it; any other failure to load it is told as it is.
 */
function dawnMissing(cause: unknown): BackendError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND')
    return new BackendError(
      'WebGPU (Dawn) is not installed: the GPU backend is an opt-in; add it with `npm install webgpu` beside neurocluster',
      undefined,
      { cause },
    );
  return new BackendError(`WebGPU (Dawn) could not be loaded: ${messageOf(cause)}`, undefined, { cause });
}

/** Loads Dawn once; a machine without it (or without a Vulkan loader) fails here, typed. */
async function loadDawn(): Promise<DawnModule> {
  dawn ??= import('webgpu') as Promise<DawnModule>;
  try {
    return await dawn;
  } catch (cause) {
    dawn = undefined;
    throw dawnMissing(cause);
  }
}

/**
 * The adapter request, run by {@link searchAdapter} in a child process: `node -e PROBE <url of
 * webgpu> <adapter name or ''>` answers one JSON object on stdout: `{ info }` (null when Dawn has
 * no adapter), `{ error }` (Dawn refused the request: an unknown name, with the adapters it has)
 * or `{ load }` (Dawn could not be loaded).
 */
const PROBE = `
const [url, name] = process.argv.slice(1);
const answer = (value) => process.stdout.write(JSON.stringify(value), () => process.exit(0));
let create;
try {
  ({ create } = await import(url));
} catch (e) {
  answer({ load: String(e?.message ?? e) });
}
if (create) {
  try {
    const adapter = await create(name ? ['adapter=' + name] : []).requestAdapter({ powerPreference: 'high-performance' });
    const i = adapter?.info;
    answer({ info: i ? { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, isFallbackAdapter: i.isFallbackAdapter === true } : null });
  } catch (e) {
    answer({ error: String(e?.message ?? e) });
  }
}
`;

/** How long the search may take: a driver's first start can take seconds, a hung one forever. */
const SEARCH_TIMEOUT_MS = 60_000;

/** What one adapter request in the child found, and what Dawn and the Vulkan loader printed there. */
interface Probe {
  readonly info?: AdapterFacts | null;
  readonly error?: string;
  /** The child's stderr: Dawn's `Warning: ...` lines, the Vulkan loader's messages. */
  readonly output: string;
}

/**
 * Asks Dawn for the adapter (named like `name`, or the first for high performance) in a child
 * process. Dawn and the Vulkan loader print their warnings (no driver, a driver that lacks a
 * feature, with a C++ source location) from native code straight to the process's fd 2, and
 * nothing configures that: in the child they are captured, and a driver that crashes or hangs
 * takes the child with it, not this process.
 */
async function probe(name: string | undefined): Promise<Probe> {
  let url: string;
  try {
    url = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  } catch (cause) {
    throw dawnMissing(cause);
  }
  const args = ['--input-type=module', '-e', PROBE, url, name ?? ''];
  const { failure, stdout, stderr } = await new Promise<{
    failure: (Error & { killed?: boolean; signal?: string | null }) | null;
    stdout: string;
    stderr: string;
  }>((resolve) => {
    execFile(
      process.execPath,
      args,
      { timeout: SEARCH_TIMEOUT_MS, maxBuffer: 1024 * 1024, windowsHide: true },
      (error, out, err) => resolve({ failure: error, stdout: String(out), stderr: String(err) }),
    );
  });
  let answer: { info?: AdapterFacts | null; error?: string; load?: string };
  try {
    answer = JSON.parse(stdout);
  } catch {
    const how = failure?.killed
      ? `did not finish in ${SEARCH_TIMEOUT_MS / 1000} s`
      : failure?.signal
        ? `was killed by ${failure.signal}`
        : 'gave no answer';
    throw new BackendError(`the WebGPU adapter search ${how}${dawnSaid(stderr)}`, undefined, {
      cause: new Error(stderr || failure?.message || 'no output'),
    });
  }
  if (answer.load !== undefined) throw dawnMissing(new Error(answer.load));
  return { info: answer.info, error: answer.error, output: stderr };
}

/** `; Dawn: <its first line>`, the gist of what Dawn or the Vulkan loader printed, if anything. */
function dawnSaid(output: string): string {
  const first = output
    .split('\n')
    .map((l) => l.replace(/^(warning|error): */i, '').trim())
    .find((l) => l.length > 0 && !/XDG_RUNTIME_DIR/.test(l));
  return first ? `; Dawn: ${first.length > 160 ? `${first.slice(0, 159)}…` : first}` : '';
}

/** Dawn's captured output as a cause, so that `--verbose` shows it whole. */
function dawnOutput(found: Probe): Error | undefined {
  return found.output ? new Error(`Dawn's output:\n${found.output}`) : undefined;
}

/**
 * Finds the adapter to open, in a child process ({@link probe}), and returns the name to ask Dawn
 * for: `settings.adapter` as Dawn spells it. Throws when there is none, when the one found is a
 * software adapter that `hardwareOnly` refuses, or when none has the name asked for.
 */
async function searchAdapter(settings: WebGpuSettings, hardwareOnly: boolean): Promise<string | undefined> {
  let name = settings.adapter;
  let found = await probe(name);
  if (found.error !== undefined) {
    // Dawn matches the name case-sensitively and lists the adapters it has: match without case.
    const names = [...found.error.matchAll(/name: '([^']+)'/g)].map((m) => m[1]!);
    const wanted = settings.adapter?.toLowerCase() ?? '';
    const match = names.find((n) => n.toLowerCase().includes(wanted));
    if (!settings.adapter || !match) {
      const listed = names.length > 0 ? ` (adapters here: ${names.join(', ')})` : '';
      const what = settings.adapter
        ? `no WebGPU adapter named like "${settings.adapter}"`
        : `no WebGPU adapter (${firstLine(found.error)})`;
      throw new BackendError(`${what}${listed}`, undefined, { cause: new Error(found.error) });
    }
    name = match;
    found = await probe(name);
    if (found.error !== undefined) {
      throw new BackendError(
        `no WebGPU adapter named like "${match}": ${firstLine(found.error)}`,
        undefined,
        {
          cause: new Error(found.error),
        },
      );
    }
  }
  if (!found.info) {
    const said = dawnSaid(found.output);
    const what = settings.adapter
      ? `no WebGPU adapter named like "${settings.adapter}"${said}`
      : `no WebGPU adapter (no GPU, or no Vulkan driver installed${said})`;
    throw new BackendError(what, undefined, {
      cause: dawnOutput(found),
    });
  }
  if (hardwareOnly && isSoftwareAdapter(found.info) && !settings.allowSoftware) {
    throw new BackendError(
      `${SOFTWARE_ONLY} (${describeAdapter(found.info)}); set NEUROCLUSTER_WEBGPU_ALLOW_SOFTWARE=1 to use it`,
    );
  }
  return name;
}

/** The limits a compute backend wants as high as the adapter allows. */
const RAISED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxUniformBufferBindingSize',
] as const;

export interface OpenedDevice {
  /** Dawn's instance: it must outlive the device (collecting it tears the device down under us). */
  readonly gpu: GPU;
  readonly device: GPUDevice;
  readonly info: GPUAdapterInfo;
  readonly software: boolean;
  readonly name: string;
}

/**
 * Opens the device: the adapter Dawn ranks first for high performance (a discrete GPU over an
 * integrated one), or the one whose name contains `settings.adapter`. With `hardwareOnly`, a
 * software adapter is refused before any device is created, unless `allowSoftware`.
 */
export async function openDevice(settings: WebGpuSettings, hardwareOnly: boolean): Promise<OpenedDevice> {
  // The adapters of a machine do not change while a process runs: asking again would only repeat
  // the Vulkan loader's warnings on stderr, so a search that found nothing (or, under `auto`,
  // only a software adapter) is answered from memory.
  const key = settings.adapter ?? '';
  const refusing = hardwareOnly && !settings.allowSoftware;
  const known = missingAdapters.get(key) ?? (refusing ? softwareOnly.get(key) : undefined);
  if (known) throw known;
  try {
    return await openAdapterDevice(settings, hardwareOnly);
  } catch (error) {
    if (error instanceof BackendError && error.message.startsWith(NO_ADAPTER))
      missingAdapters.set(key, error);
    if (error instanceof BackendError && error.message.startsWith(SOFTWARE_ONLY))
      softwareOnly.set(key, error);
    throw error;
  }
}

const NO_ADAPTER = 'no WebGPU adapter';
const SOFTWARE_ONLY = 'the only WebGPU adapter is a software one';
/** What adapter searches found in this process, by the name asked for. */
const missingAdapters = new Map<string, BackendError>();
const softwareOnly = new Map<string, BackendError>();

async function openAdapterDevice(settings: WebGpuSettings, hardwareOnly: boolean): Promise<OpenedDevice> {
  // Dawn is loaded here only once the child found an adapter to use: where none is, its warnings
  // never reach this process's stderr. (Where one is, Dawn may still warn here about the machine's
  // other Vulkan drivers.)
  const adapterName = await searchAdapter(settings, hardwareOnly);
  const { create } = await loadDawn();
  const gpu = create(adapterName ? [`adapter=${adapterName}`] : []);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new BackendError(`${NO_ADAPTER} (the adapter the search found is gone)`);
  }
  const info = adapter.info;
  const software = isSoftwareAdapter(info);
  const name = describeAdapter(info);
  if (hardwareOnly && software && !settings.allowSoftware) {
    throw new BackendError(`${SOFTWARE_ONLY} (${name}); set NEUROCLUSTER_WEBGPU_ALLOW_SOFTWARE=1 to use it`);
  }
  const requiredLimits: Record<string, number> = {};
  for (const key of RAISED_LIMITS) requiredLimits[key] = adapter.limits[key];
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, label: 'neurocluster' });
  } catch (cause) {
    throw new BackendError(
      `the WebGPU device could not be created on ${name}: ${firstLine(cause)}`,
      undefined,
      {
        cause,
      },
    );
  }
  return { gpu, device, info, software, name };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function firstLine(error: unknown): string {
  return messageOf(error).split('\n')[0] ?? '';
}

/**
 * Runs `work` inside out-of-memory and validation error scopes and turns what they catch into
 * typed errors: out of memory becomes NEUROCLUSTER_ERR_OUT_OF_MEMORY (so a caller can re-plan with
 * smaller chunks), a validation error NEUROCLUSTER_ERR_KERNEL.
 */
export async function guarded<T>(device: GPUDevice, what: string, work: () => T): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T | undefined;
  let thrown: unknown;
  try {
    result = work();
  } catch (error) {
    thrown = error;
  }
  // Scopes are popped whatever happened, so they never leak into the next call.
  const validation = await device.popErrorScope();
  const memory = await device.popErrorScope();
  if (memory) {
    throw new BackendError(
      `${what}: the GPU is out of memory (${memory.message})`,
      'NEUROCLUSTER_ERR_OUT_OF_MEMORY',
      {
        cause: thrown,
      },
    );
  }
  if (validation) {
    throw new BackendError(`${what}: ${validation.message.split('\n')[0]}`, 'NEUROCLUSTER_ERR_KERNEL', {
      cause: thrown,
    });
  }
  if (thrown !== undefined) throw thrown;
  return result as T;
}
