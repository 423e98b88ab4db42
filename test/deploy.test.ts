/**
 * The Kubernetes manifest in deploy/kubernetes: each object valid against Kubernetes' own schemas
 * (kubernetes-models validates with the JSON schemas generated from the API's OpenAPI document),
 * and what it says of the service true of the service: the probes are its routes, the command is
 * one it takes, the grace period outlasts the service's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Service } from 'kubernetes-models/v1/Service';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { durationMs, serviceSchema } from '../src/config/schema.js';
import { openApiDocument } from '../src/service/openapi.js';
import { ROOT, runCli } from './helpers.js';

const MODELS = { Deployment, PersistentVolumeClaim, Service } as const;
const manifest = parseAllDocuments(
  readFileSync(join(ROOT, 'deploy/kubernetes/neurocluster.yaml'), 'utf8'),
).map((d) => d.toJS() as { kind: keyof typeof MODELS } & Record<string, unknown>);

describe('deploy/kubernetes/neurocluster.yaml', () => {
  it('holds objects Kubernetes accepts', () => {
    expect(manifest.map((o) => o.kind).sort()).toEqual(['Deployment', 'PersistentVolumeClaim', 'Service']);
    for (const object of manifest)
      expect(() => new MODELS[object.kind](object as never).validate()).not.toThrow();
    // The check can fail: a value of the wrong type is refused. (Kubernetes' schemas allow unknown
    // fields, as the API server does: a misspelt key is not caught here.)
    const bad = structuredClone(manifest.find((o) => o.kind === 'Deployment')!) as unknown as {
      spec: { replicas: unknown };
    };
    bad.spec.replicas = 'one';
    expect(() => new Deployment(bad as never).validate()).toThrow();
  });

  it('probes routes the service has, runs a command it takes, and outlasts its shutdown grace', () => {
    const deployment = manifest.find((o) => o.kind === 'Deployment') as unknown as {
      spec: {
        template: {
          spec: {
            terminationGracePeriodSeconds: number;
            containers: {
              args: string[];
              livenessProbe: { httpGet: { path: string } };
              readinessProbe: { httpGet: { path: string } };
            }[];
          };
        };
      };
    };
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0]!;
    const paths = Object.keys(openApiDocument().paths as object);
    expect(paths).toContain(container.livenessProbe.httpGet.path);
    expect(paths).toContain(container.readinessProbe.httpGet.path);
    const grace = durationMs(serviceSchema.parse({}).shutdownGrace) / 1000;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(grace);
    // The arguments parse: the command's own help for them exits 0.
    const help = runCli([...container.args.slice(0, container.args.indexOf('serve') + 1), '--help']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/--insecure/);
  });
});

const distributed = parseAllDocuments(
  readFileSync(join(ROOT, 'deploy/kubernetes/distributed.yaml'), 'utf8'),
).map((d) => d.toJS() as { kind: keyof typeof MODELS; metadata: { name: string } } & Record<string, unknown>);

interface PodSpec {
  containers: {
    args: string[];
    env: { name: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[];
    volumeMounts: { name: string; mountPath: string }[];
  }[];
  volumes: { name: string; persistentVolumeClaim?: { claimName: string } }[];
}

function podOf(name: string): PodSpec {
  const deployment = distributed.find(
    (o) => o.kind === 'Deployment' && o.metadata.name === name,
  ) as unknown as {
    spec: { template: { spec: PodSpec } };
  };
  return deployment.spec.template.spec;
}

describe('deploy/kubernetes/distributed.yaml', () => {
  it('holds objects Kubernetes accepts: Redis, the service with its queue, the workers', () => {
    expect(distributed.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'Deployment/neurocluster',
      'Deployment/neurocluster-redis',
      'Deployment/neurocluster-worker',
      'PersistentVolumeClaim/neurocluster-home',
      'PersistentVolumeClaim/neurocluster-jobs',
      'PersistentVolumeClaim/neurocluster-redis',
      'Service/neurocluster-redis',
    ]);
    for (const object of distributed)
      expect(() => new MODELS[object.kind](object as never).validate()).not.toThrow();
  });

  it("mounts the jobs' volume at the same path in the service and the workers, and runs commands they take", () => {
    const mountOf = (pod: PodSpec) => {
      const volume = pod.volumes.find((v) => v.persistentVolumeClaim?.claimName === 'neurocluster-jobs')!;
      return pod.containers[0]!.volumeMounts.find((m) => m.name === volume.name)!.mountPath;
    };
    const [service, worker] = [podOf('neurocluster'), podOf('neurocluster-worker')];
    const home = (pod: PodSpec) =>
      (pod.containers[0]!.env as { name: string; value?: string }[]).find(
        (e) => e.name === 'NEUROCLUSTER_HOME',
      )!.value;
    // The service keeps its jobs' directories under $NEUROCLUSTER_HOME/service/jobs.
    expect(mountOf(service)).toBe(`${home(service)}/service/jobs`);
    expect(mountOf(worker)).toBe(mountOf(service));
    for (const pod of [service, worker]) {
      const queue = pod.containers[0]!.env.find((e) => e.name === 'NEUROCLUSTER_QUEUE')!;
      expect(queue.valueFrom?.secretKeyRef).toEqual({ name: 'neurocluster-queue', key: 'url' });
    }
    const args = worker.containers[0]!.args;
    const help = runCli([...args.slice(0, args.indexOf('worker') + 1), '--help']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/--metrics-port/);
  });
});
