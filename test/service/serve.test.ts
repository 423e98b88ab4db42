/**
 * `neurocluster serve` as a process: it says where it listens in one JSON line, refuses a network
 * address without TLS, serves HTTPS with a certificate, drains on SIGTERM and exits 0, and a job
 * cut off by kill -9 runs again at the next start: an accepted job reaches a final state.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { get } from 'node:https';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, runCli, tempDir } from '../helpers.js';

interface Server {
  child: ChildProcess;
  url: string;
  stderr: () => string;
}

/** Starts `serve --port 0` on `home` and waits for its JSON line. */
async function serve(home: string, args: string[] = []): Promise<Server> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], {
    env: { ...process.env, NEUROCLUSTER_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  let stdout = '';
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      stdout += d;
      if (stdout.includes('\n')) resolve(stdout.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
  const { url, pid } = JSON.parse(line) as { url: string; pid: number };
  expect(pid).toBe(child.pid);
  return { child, url, stderr: () => stderr };
}

function key(home: string): string {
  const r = runCli(['api-keys', 'create', '--name', 'pipeline', '--json'], { home });
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { key: string }).key;
}

async function submit(server: Server, token: string, body: unknown): Promise<string> {
  const r = await fetch(`${server.url}/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(r.status, await r.clone().text()).toBe(202);
  return ((await r.json()) as { id: string }).id;
}

async function state(
  server: Server,
  token: string,
  id: string,
): Promise<{ state: string; attempts?: number }> {
  const r = await fetch(`${server.url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${token}` } });
  return (await r.json()) as { state: string };
}

async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A job long enough to be caught running: the hybrid method on a few thousand rows. */
const SLOW_JOB = {
  data: Array.from({ length: 3000 }, (_, i) => [Math.sin(i), Math.cos(i * 1.3), (i % 7) / 7, (i % 3) * 2]),
  options: { kmeans: { nClusters: 3 }, engine: { method: 'hybrid', backend: 'js' } },
};

describe('neurocluster serve', () => {
  it('api-keys: create prints the key once, list never shows it, revoke refuses an unknown or revoked name', () => {
    const home = tempDir();
    const unknown = runCli(['api-keys', 'create', '--name', 'etl', '--tenant', 'team-a'], { home });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /no tenant is named "team-a": `neurocluster tenants create team-a` makes it/,
    );
    expect(runCli(['tenants', 'create', 'team-a'], { home }).code).toBe(0);
    const made = runCli(['api-keys', 'create', '--name', 'etl', '--tenant', 'team-a', '--json'], { home });
    expect(made.code, made.stderr).toBe(0);
    const { key, tenant } = JSON.parse(made.stdout) as { key: string; tenant: string };
    expect(key).toMatch(/^nck_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(tenant).toBe('team-a');
    const again = runCli(['api-keys', 'create', '--name', 'etl'], { home });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/an API key named "etl" exists/);
    const listed = runCli(['api-keys', 'list', '--json'], { home });
    expect(listed.stdout).not.toContain(key.slice(21));
    expect(JSON.parse(listed.stdout).keys).toEqual([
      expect.objectContaining({ name: 'etl', tenant: 'team-a' }),
    ]);
    expect(runCli(['api-keys', 'revoke', 'etl'], { home }).code).toBe(0);
    const twice = runCli(['api-keys', 'revoke', 'etl'], { home });
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/was revoked on/);
    expect(runCli(['api-keys', 'revoke', 'nobody'], { home }).stderr).toMatch(/no API key is named "nobody"/);
    const audit = runCli(['audit', 'verify', '--json'], { home });
    expect(audit.code, audit.stdout).toBe(0);
  });

  it('refuses a non-loopback address without TLS, and says how to allow it', () => {
    const r = runCli(['serve', '--host', '0.0.0.0', '--port', '0'], { home: tempDir() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /--host 0\.0\.0\.0 is reachable from the network: give --tls-cert and --tls-key, or --insecure/,
    );
  });

  it('speaks HTTPS with --tls-cert and --tls-key', async () => {
    const home = tempDir();
    const [cert, pem] = [join(home, 'cert.pem'), join(home, 'key.pem')];
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        pem,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const server = await serve(home, ['--tls-cert', cert, '--tls-key', pem]);
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const body = await new Promise<string>((resolve, reject) => {
        get(`${server.url}/livez`, { ca: readFileSync(cert) }, (res) => {
          let text = '';
          res.on('data', (d) => {
            text += d;
          });
          res.on('end', () => resolve(text));
        }).on('error', reject);
      });
      expect(JSON.parse(body).status).toBe('pass');
    } finally {
      server.child.kill('SIGTERM');
      await once(server.child, 'exit');
    }
  });

  it('refuses a second service on the same home while the first runs', async () => {
    const home = tempDir();
    const first = await serve(home);
    try {
      const second = runCli(['serve', '--port', '0'], { home });
      expect(second.code).toBe(2);
      expect(second.stderr).toContain(`another neurocluster serve (pid ${first.child.pid}) runs on`);
    } finally {
      first.child.kill('SIGTERM');
      await once(first.child, 'exit');
    }
    // Stopped, it left no lock: the next one starts.
    const next = await serve(home);
    next.child.kill('SIGTERM');
    await once(next.child, 'exit');
  });

  it('on SIGTERM fails readiness, lets the running job finish, and exits 0', async () => {
    const home = tempDir();
    const token = key(home);
    const server = await serve(home);
    const id = await submit(server, token, SLOW_JOB);
    await until(async () => (await state(server, token, id)).state === 'running', 20_000);
    const exited = once(server.child, 'exit');
    server.child.kill('SIGTERM');
    await until(async () => (await fetch(`${server.url}/readyz`)).status === 503, 5_000);
    const [code] = await exited;
    expect(code, server.stderr()).toBe(0);
    expect(server.stderr()).toMatch(/SIGTERM: no new jobs/);
    // The job ended before the process did: the next start finds it succeeded.
    const again = await serve(home);
    try {
      expect((await state(again, token, id)).state).toBe('succeeded');
    } finally {
      again.child.kill('SIGTERM');
      await once(again.child, 'exit');
    }
  });

  it('runs a job again after kill -9 cut it off, to a final state', async () => {
    const home = tempDir();
    const token = key(home);
    const first = await serve(home);
    const id = await submit(first, token, SLOW_JOB);
    await until(async () => (await state(first, token, id)).state === 'running', 20_000);
    first.child.kill('SIGKILL');
    await once(first.child, 'exit');
    const second = await serve(home);
    try {
      await until(async () => (await state(second, token, id)).state === 'succeeded', 60_000);
      const labels = await fetch(`${second.url}/v1/jobs/${id}/labels`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect((await labels.text()).trim().split('\n')).toHaveLength(3001);
    } finally {
      second.child.kill('SIGTERM');
      await once(second.child, 'exit');
    }
    expect(second.stderr()).toMatch(/1 job\(s\) cut off by the last stop run again/);
  }, 120_000);
});
