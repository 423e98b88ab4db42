/**
 * Health as functions: liveness (the process answers) and readiness (it can do work: a backend to
 * run on, breakers, resources, storage), each a list of checks with a status, how long the check
 * took and a message. `neurocluster health` prints them; the HTTP service will serve them as
 * `/livez`, `/readyz` and `/healthz`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendRegistry, SelectionContext } from '../backends/backend.js';
import type { BackendName } from '../core/matrix.js';
import { metrics } from './metrics.js';
import type { ResourceLevel, ResourceMonitor, ResourceStatus } from './resources.js';

export type CheckStatus = 'pass' | 'warn' | 'fail';

export interface HealthCheck {
  readonly name: string;
  readonly status: CheckStatus;
  readonly durationMs: number;
  readonly message: string;
}

export interface HealthReport {
  /** The worst status of the checks. */
  readonly status: CheckStatus;
  readonly checks: readonly HealthCheck[];
  /** Readiness: what its checks read (one sample of the resources, the breakers as listed). */
  readonly resources?: ResourceStatus;
  readonly breakers?: readonly BreakerStatus[];
}

const RANK: Record<CheckStatus, number> = { pass: 0, warn: 1, fail: 2 };
const SCORE: Record<CheckStatus, number> = { pass: 1, warn: 0.5, fail: 0 };

/** Checks in the metrics, by kind (`breaker:webgpu|...` is of kind `breaker`): the worst of each kind. */
function observeChecks(checks: readonly HealthCheck[]): void {
  const worst = new Map<string, CheckStatus>();
  for (const c of checks) {
    const kind = c.name.split(':')[0]!;
    metrics.healthCheckDuration.observe({ check: kind }, c.durationMs / 1000);
    const seen = worst.get(kind);
    if (!seen || RANK[c.status] > RANK[seen]) worst.set(kind, c.status);
  }
  for (const [check, status] of worst) metrics.healthChecks.set({ check }, SCORE[status]);
}

function report(
  checks: HealthCheck[],
  details: Pick<HealthReport, 'resources' | 'breakers'> = {},
): HealthReport {
  const status = checks.reduce<CheckStatus>((a, c) => (RANK[c.status] > RANK[a] ? c.status : a), 'pass');
  return { status, checks, ...details };
}

/** Runs one check, timing it; a check that throws fails with its message. */
async function check(
  name: string,
  run: () => Promise<{ status: CheckStatus; message: string }> | { status: CheckStatus; message: string },
): Promise<HealthCheck> {
  const t0 = performance.now();
  try {
    const { status, message } = await run();
    return { name, status, message, durationMs: performance.now() - t0 };
  } catch (error) {
    return { name, status: 'fail', message: (error as Error).message, durationMs: performance.now() - t0 };
  }
}

/** Liveness: the process runs and its event loop answers. */
export async function liveness(): Promise<HealthReport> {
  return report([
    await check('process', () => ({
      status: 'pass',
      message: `pid ${process.pid}, up ${process.uptime().toFixed(1)} s`,
    })),
  ]);
}

/** A circuit breaker as readiness reads it (src/resilience/breakers.ts keeps them). */
export type BreakerStateName = 'closed' | 'open' | 'half-open' | 'isolated';

export interface BreakerStatus {
  readonly key: string;
  readonly state: BreakerStateName;
  /** When it opened (ISO), for an open breaker. */
  readonly openedAt?: string;
  /** When the saved state is forgotten (ISO). */
  readonly expiresAt: string;
}

export interface ReadinessDeps {
  readonly registry: BackendRegistry;
  /** The backend the engine is configured to use (`auto` or a name). */
  readonly backend: BackendName | 'auto';
  readonly selection: SelectionContext;
  /** The breakers to report (a BreakerBook). */
  readonly breakers: { list(): readonly BreakerStatus[] };
  readonly monitor: ResourceMonitor;
  /** NEUROCLUSTER_HOME: state, models and logs are written under it. */
  readonly home: string;
}

const LEVEL: Record<ResourceLevel, CheckStatus> = { ok: 'pass', warning: 'warn', critical: 'fail' };

/**
 * Readiness: each backend (the configured one must start; under `auto`, one must), each circuit
 * breaker (open: warn, the fallback still answers), memory (critical: fail), CPU and disk and
 * device memory (past a threshold: warn), and a write to NEUROCLUSTER_HOME's state directory.
 */
export async function readiness(deps: ReadinessDeps): Promise<HealthReport> {
  const checks: HealthCheck[] = [];
  const started: BackendName[] = [];
  for (const name of deps.registry.registered()) {
    checks.push(
      await check(`backend:${name}`, async () => {
        try {
          const b = await deps.registry.get(name, false, deps.selection.options);
          started.push(name);
          return { status: 'pass', message: b.device };
        } catch (error) {
          // Only the backend the engine must use makes the process unready.
          const required = deps.backend === name;
          return { status: required ? 'fail' : 'warn', message: (error as Error).message };
        }
      }),
    );
  }
  if (deps.backend === 'auto') {
    checks.push(
      await check('backend:any', () =>
        started.length > 0
          ? { status: 'pass', message: `${started.length} backend(s) start: ${started.join(', ')}` }
          : { status: 'fail', message: 'no backend starts' },
      ),
    );
  }
  const breakers = deps.breakers.list();
  for (const b of breakers) {
    checks.push(
      await check(`breaker:${b.key}`, () =>
        b.state === 'closed'
          ? { status: 'pass', message: 'closed' }
          : {
              status: 'warn',
              message: `${b.state}: requests to it are answered by the fallback until ${b.expiresAt}`,
            },
      ),
    );
  }
  const r = deps.monitor.sample();
  const pct = (f: number) => `${(100 * f).toFixed(1)}%`;
  checks.push(
    await check('memory', () => ({
      status: LEVEL[r.memory.level],
      message: `${pct(r.memory.fraction)} of the memory budget`,
    })),
    await check('cpu', () => ({
      // A busy machine is slow, not unready.
      status: r.cpu.level === 'ok' ? 'pass' : 'warn',
      message: `${pct(r.cpu.fraction)} of all cores`,
    })),
  );
  if (r.disk) {
    checks.push(
      await check('disk', () => ({
        status: LEVEL[r.disk!.level],
        message: `${pct(r.disk!.fraction)} of the home's disk in use`,
      })),
    );
  }
  if (r.device) {
    const device = r.device;
    checks.push(
      await check('device-memory', () => ({
        status: device.level === 'ok' ? 'pass' : 'warn',
        message: `${pct(device.fraction)} of the WebGPU memory budget in use`,
      })),
    );
  }
  checks.push(
    await check('storage', () => {
      const dir = join(deps.home, 'state');
      mkdirSync(dir, { recursive: true });
      const probe = join(dir, `.ready-${randomBytes(4).toString('hex')}`);
      writeFileSync(probe, 'ok');
      rmSync(probe);
      return { status: 'pass', message: `${dir} is writable` };
    }),
  );
  observeChecks(checks);
  return report(checks, { resources: r, breakers });
}

/** Liveness and readiness together (`/healthz`). */
export async function healthz(deps: ReadinessDeps): Promise<HealthReport> {
  const [live, ready] = [await liveness(), await readiness(deps)];
  return { ...ready, ...report([...live.checks, ...ready.checks]) };
}
