/**
 * The compute pipelines of the WebGPU backend: each entry point of each WGSL module with an
 * explicit bind-group layout (so a layout can be checked against its module, and one module can
 * serve entry points that use different bindings), compiled once per device inside error scopes.
 */
import { BackendError } from '../../core/errors.js';
import { COMPUTE_STAGE, guarded } from './device.js';
import { WGSL, type WgslModule } from './wgsl.generated.js';

/** A binding of a bind group: its number and how the shader uses it. */
type Binding = readonly [number, 'uniform' | 'dynamic' | 'read' | 'rw'];

interface KernelSpec {
  readonly module: WgslModule;
  readonly entry: string;
  /** Bind groups 0, 1, ...: the bindings each one holds. */
  readonly groups: readonly (readonly Binding[])[];
}

const u = (n: number): Binding => [n, 'uniform'];
const r = (n: number): Binding => [n, 'read'];
const w = (n: number): Binding => [n, 'rw'];

/** Every kernel the backend dispatches. */
export const KERNELS = {
  matmul: { module: 'matmul', entry: 'main', groups: [[u(0), r(1), r(2), r(3), w(4)]] },
  pairwise: { module: 'distances', entry: 'pairwise', groups: [[u(0), r(1), r(2), w(4)]] },
  clusterSums: { module: 'distances', entry: 'cluster_sums', groups: [[u(0), r(1), r(3), w(4)]] },
  assign: { module: 'kmeans', entry: 'assign', groups: [[u(0), r(1), r(2), w(3), w(4)]] },
  lloyd: { module: 'kmeans', entry: 'step', groups: [[u(0), r(1), r(2), w(3), w(5), w(6)]] },
  reduce: { module: 'kmeans', entry: 'reduce', groups: [[u(0), r(1), w(3), w(5), w(6)]] },
  lloydFinish: { module: 'kmeans', entry: 'finish', groups: [[u(0), w(5), w(6), w(7), w(8)]] },
  reservoirDense: {
    module: 'reservoir',
    entry: 'dense',
    groups: [[u(0), r(1), r(2), r(4), w(5), w(6), w(7)], [[0, 'dynamic']]],
  },
  reservoirSparse: {
    module: 'reservoir',
    entry: 'sparse',
    groups: [[u(0), r(1), r(2), r(3), r(4), w(5), w(6), w(7)], [[0, 'dynamic']]],
  },
  spiking: { module: 'spiking', entry: 'main', groups: [[u(0), r(1), r(2), r(3), r(4), w(5)]] },
  momentSums: { module: 'moments', entry: 'sums', groups: [[u(0), r(1), r(2), w(3), w(4)]] },
  momentFinish: { module: 'moments', entry: 'finish', groups: [[u(0), w(3), w(4)]] },
  assemble: { module: 'assemble', entry: 'main', groups: [[u(0), r(1), r(2), r(3), r(4), w(5)]] },
} as const satisfies Record<string, KernelSpec>;

export type KernelName = keyof typeof KERNELS;

export interface Kernel {
  readonly name: KernelName;
  readonly pipeline: GPUComputePipeline;
  readonly layouts: readonly GPUBindGroupLayout[];
  /** Binding numbers of each group, in the order {@link bind} takes resources. */
  readonly bindings: readonly (readonly number[])[];
}

function layoutEntry([binding, kind]: Binding): GPUBindGroupLayoutEntry {
  if (kind === 'uniform' || kind === 'dynamic') {
    return {
      binding,
      visibility: COMPUTE_STAGE,
      buffer: { type: 'uniform', hasDynamicOffset: kind === 'dynamic' },
    };
  }
  return {
    binding,
    visibility: COMPUTE_STAGE,
    buffer: { type: kind === 'read' ? 'read-only-storage' : 'storage' },
  };
}

/** Compiles WGSL and fails with the compiler's first error (file:line:column), typed. */
export async function compileModule(device: GPUDevice, module: WgslModule): Promise<GPUShaderModule> {
  device.pushErrorScope('validation');
  const shader = device.createShaderModule({ code: WGSL[module], label: module });
  const info = await shader.getCompilationInfo();
  const scoped = await device.popErrorScope();
  const error = info.messages.find((m) => m.type === 'error');
  if (error || scoped) {
    const where = error
      ? `${module}.wgsl:${error.lineNum}:${error.linePos}: ${error.message}`
      : scoped!.message;
    throw new BackendError(`compiling ${where}`, 'NEUROCLUSTER_ERR_KERNEL');
  }
  return shader;
}

/** Creates the pipelines on first use, one per kernel per device. */
export class KernelCache {
  private readonly modules = new Map<WgslModule, Promise<GPUShaderModule>>();
  private readonly kernels = new Map<KernelName, Promise<Kernel>>();

  constructor(private readonly device: GPUDevice) {}

  get(name: KernelName): Promise<Kernel> {
    let kernel = this.kernels.get(name);
    if (!kernel) {
      kernel = this.create(name);
      this.kernels.set(name, kernel);
      kernel.catch(() => this.kernels.delete(name));
    }
    return kernel;
  }

  private async create(name: KernelName): Promise<Kernel> {
    const spec: KernelSpec = KERNELS[name];
    let module = this.modules.get(spec.module);
    if (!module) {
      module = compileModule(this.device, spec.module);
      this.modules.set(spec.module, module);
      module.catch(() => this.modules.delete(spec.module));
    }
    const shader = await module;
    return guarded(this.device, `creating the ${name} pipeline`, () => {
      const layouts = spec.groups.map((entries, group) =>
        this.device.createBindGroupLayout({ entries: entries.map(layoutEntry), label: `${name}/${group}` }),
      );
      const pipeline = this.device.createComputePipeline({
        layout: this.device.createPipelineLayout({ bindGroupLayouts: layouts }),
        compute: { module: shader, entryPoint: spec.entry },
        label: name,
      });
      return { name, pipeline, layouts, bindings: spec.groups.map((g) => g.map(([b]) => b)) };
    });
  }
}

/**
 * A bind group of `kernel`'s group `group`, resources in the order its bindings are listed. A
 * buffer given whole is bound up to the device's binding limit: the pool rounds sizes up to a power
 * of two, so a buffer may be larger than the one binding that a kernel's data (checked against the
 * limit) needs. A 1.3 GB feature matrix in a 2 GiB buffer is such a case on NVIDIA, whose bindings
 * stop at 2 GiB - 1.
 */
export function bind(
  device: GPUDevice,
  kernel: Kernel,
  group: number,
  resources: readonly (GPUBuffer | GPUBufferBinding)[],
): GPUBindGroup {
  const numbers = kernel.bindings[group]!;
  if (resources.length !== numbers.length) {
    throw new Error(
      `${kernel.name}: group ${group} takes ${numbers.length} buffers, got ${resources.length}`,
    );
  }
  const limit = Math.floor(device.limits.maxStorageBufferBindingSize / 4) * 4;
  return device.createBindGroup({
    layout: kernel.layouts[group]!,
    entries: numbers.map((binding, i) => {
      const resource = resources[i]!;
      if ('buffer' in resource) return { binding, resource };
      return {
        binding,
        resource: resource.size > limit ? { buffer: resource, size: limit } : { buffer: resource },
      };
    }),
  });
}
