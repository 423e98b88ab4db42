/**
 * The WebGPU device: Dawn (the npm package `webgpu`) loaded on first use, the adapter chosen, the
 * device opened with the adapter's own limits, and its failures turned into typed engine errors.
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackendError } from '../../resilience/errors.js';

import type { BackendOptions } from '../backend.js';

/**
 * How to pick and size the device: `adapter`, part of the adapter's name to require (Dawn's
 * `adapter=` flag; NEUROCLUSTER_WEBGPU_ADAPTER); `allowSoftware`, take a software adapter such as
 * SwiftShader under `auto` (NEUROCLUSTER_WEBGPU_ALLOW_SOFTWARE=1); `memoryBudgetBytes`, device
 * memory the backend may hold at once (NEUROCLUSTER_WEBGPU_MEMORY_BUDGET_MB).
 */
export type WebGpuSettings = NonNullable<BackendOptions['webgpu']>;

/** The spec's numeric flags (fixed by the WebGPU standard), so no globals need installing. */
export const Usage = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
export const MAP_READ = 0x1;
export const COMPUTE_STAGE = 0x4;

/** Settings from the environment, under those given explicitly. */
export function settingsFromEnv(given: WebGpuSettings = {}, env = process.env): WebGpuSettings {
  const budget = Number(env.NEUROCLUSTER_WEBGPU_MEMORY_BUDGET_MB);
  return {
    adapter: given.adapter ?? (env.NEUROCLUSTER_WEBGPU_ADAPTER || undefined),
    allowSoftware: given.allowSoftware ?? env.NEUROCLUSTER_WEBGPU_ALLOW_SOFTWARE === '1',
    memoryBudgetBytes: given.memoryBudgetBytes ?? (budget > 0 ? Math.floor(budget * 1024 * 1024) : undefined),
  };
}

/** Names that give away a CPU or software rasterizer behind a GPU API. */
const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|software|microsoft basic render|\bwarp\b/i;

/** The adapter in words, for logs and `result.backendDevice`. */
export function describeAdapter(info: GPUAdapterInfo): string {
  const parts = [info.description || info.device, info.vendor, info.architecture].filter((s) => s);
  return parts.length > 0 ? parts.join(' / ') : 'unnamed adapter';
}

/** True for a CPU or software adapter (SwiftShader, llvmpipe...), which `auto` passes over. */
export function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  const fallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return fallback || SOFTWARE.test(`${info.description} ${info.device} ${info.architecture} ${info.vendor}`);
}

type DawnModule = { create(flags: string[]): GPU };
let dawn: Promise<DawnModule> | undefined;

/** Loads Dawn once; a machine without it (or without a Vulkan loader) fails here, typed. */
async function loadDawn(): Promise<DawnModule> {
  // Dawn's Linux windowing code prints "XDG_RUNTIME_DIR is invalid" to stderr on a headless
  // machine (a server, a CI runner), which reads like a failure; give it a private runtime
  // directory, as a login session would, when none is set.
  if (!process.env.XDG_RUNTIME_DIR && process.platform === 'linux') {
    const dir = join(tmpdir(), `neurocluster-runtime-${process.getuid?.() ?? 'user'}`);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      process.env.XDG_RUNTIME_DIR = dir;
    } catch {
      // Only a cosmetic line on stderr is at stake.
    }
  }
  dawn ??= import('webgpu') as Promise<DawnModule>;
  try {
    return await dawn;
  } catch (cause) {
    dawn = undefined;
    throw new BackendError(`WebGPU (Dawn) could not be loaded: ${(cause as Error).message}`, undefined, {
      cause,
    });
  }
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
  const { create } = await loadDawn();
  const request = async (name: string | undefined) => {
    const gpu = create(name ? [`adapter=${name}`] : []);
    return { gpu, adapter: await gpu.requestAdapter({ powerPreference: 'high-performance' }) };
  };
  let found: { gpu: GPU; adapter: GPUAdapter | null };
  try {
    found = await request(settings.adapter);
  } catch (cause) {
    // Dawn matches the name case-sensitively and lists the adapters it has: match without case.
    const names = [...messageOf(cause).matchAll(/name: '([^']+)'/g)].map((m) => m[1]!);
    const wanted = settings.adapter?.toLowerCase() ?? '';
    const match = names.find((n) => n.toLowerCase().includes(wanted));
    if (!settings.adapter || !match) {
      const listed = names.length > 0 ? ` (adapters here: ${names.join(', ')})` : '';
      const what = settings.adapter
        ? `no WebGPU adapter named like "${settings.adapter}"`
        : 'no WebGPU adapter';
      throw new BackendError(`${what}${listed}`, undefined, { cause });
    }
    found = await request(match);
  }
  const { gpu, adapter } = found;
  if (!adapter) {
    throw new BackendError(
      settings.adapter
        ? `no WebGPU adapter named like "${settings.adapter}"`
        : 'no WebGPU adapter (no GPU, or no Vulkan driver installed)',
    );
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
