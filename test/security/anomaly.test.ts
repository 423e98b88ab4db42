/**
 * Security anomaly detection over the audit stream: each built-in rule fires once on the records
 * that make its case, as a metric, an audit record and an event, without blocking the append; a
 * rule of your own plugs in; a listener that throws harms nothing.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { metrics } from '../../src/observability/metrics.js';
import {
  AnomalyDetector,
  type AnomalyRule,
  builtinRules,
  type SecurityEvent,
} from '../../src/security/anomaly.js';
import { AuditLog } from '../../src/security/audit.js';
import type { AuditEvent } from '../../src/security/audit-record.js';
import { Keyring } from '../../src/security/keyring.js';
import { closeStores, openStore } from '../../src/store/db.js';
import { tempDir } from '../helpers.js';

afterEach(() => closeStores());

function setup(rules?: AnomalyRule[]) {
  const dir = tempDir();
  let clock = Date.parse('2026-06-01T00:00:00Z');
  const keyring = Keyring.open({ env: { NEUROCLUSTER_KEYRING: join(dir, 'k.json') }, warn: () => {} });
  const detector = new AnomalyDetector(rules);
  const events: SecurityEvent[] = [];
  detector.on('event', (e) => events.push(e));
  const audit = new AuditLog(
    join(dir, 'audit'),
    keyring,
    openStore(join(dir, 's.db')),
    { enabled: true, retentionDays: 365, maxBytes: 1e9 },
    () => new Date(clock),
    detector,
  );
  const at = (ms: number) => {
    clock += ms;
  };
  const anomalies = () => audit.tail(10_000).filter((r) => r.action === 'security.anomaly');
  return { audit, events, at, anomalies, detector };
}

const settle = () => new Promise((r) => setImmediate(r));
const read = (actor: string, outcome: AuditEvent['outcome'] = 'success', details = {}): AuditEvent => ({
  action: 'data.read',
  resource: 'x.csv',
  outcome,
  actor,
  details,
});

async function count(rule: string): Promise<number> {
  const { values } = await metrics.securityEvents.get();
  return values.filter((v) => v.labels.rule === rule).reduce((a, v) => a + v.value, 0);
}

describe('security anomaly rules', () => {
  it('failure-burst: five failures by one actor within a minute, once', async () => {
    const { audit, events, at, anomalies } = setup();
    const before = await count('failure-burst');
    for (let i = 0; i < 7; i++) {
      audit.append(read('mallory', 'failure'));
      at(5_000);
    }
    audit.append(read('alice', 'failure'));
    await settle();
    expect(events.map((e) => [e.rule, e.actor])).toEqual([['failure-burst', 'mallory']]);
    expect(events[0]!.records).toEqual([1, 2, 3, 4, 5]);
    expect(await count('failure-burst')).toBe(before + 1);
    expect(anomalies()).toEqual([
      expect.objectContaining({ risk: 70, details: expect.objectContaining({ rule: 'failure-burst' }) }),
    ]);
    expect(audit.verify().ok).toBe(true);
  });

  it('budget-probing: three refused privacy spends within ten minutes', async () => {
    const { audit, events, at } = setup();
    for (let i = 0; i < 3; i++) {
      audit.append({ action: 'privacy.spend', resource: 'payroll', outcome: 'denied', actor: 'eve' });
      at(120_000);
    }
    await settle();
    expect(events.map((e) => e.rule)).toContain('budget-probing');
  });

  it('bad-input and outside-roots: one event per such read', async () => {
    const { audit, events } = setup();
    audit.append(read('bob', 'failure', { code: 'NEUROCLUSTER_ERR_DATA_SHAPE' }));
    audit.append(read('bob', 'denied', { code: 'NEUROCLUSTER_ERR_SECURITY_PATH' }));
    audit.append(read('bob', 'failure', { code: 'NEUROCLUSTER_ERR_DATA_READ' }));
    await settle();
    expect(events.map((e) => e.rule)).toEqual(['bad-input', 'outside-roots']);
  });

  it('unusual-volume: an hour of reads far above the actor’s own mean', async () => {
    const { audit, events, at } = setup();
    for (let h = 0; h < 5; h++) {
      audit.append(read('carol'));
      at(3_600_000);
    }
    for (let i = 0; i < 15; i++) {
      audit.append(read('carol'));
      at(60_000);
    }
    await settle();
    expect(events.filter((e) => e.rule === 'unusual-volume')).toHaveLength(1);
  });
});

describe('the detector', () => {
  it('never blocks the append: listeners run later, and one that throws harms nothing', async () => {
    const { audit, detector } = setup();
    let heard = 0;
    detector.on('event', () => {
      heard++;
      throw new Error('a broken alert hook');
    });
    audit.append(read('bob', 'failure', { code: 'NEUROCLUSTER_ERR_DATA_FORMAT' }));
    expect(heard).toBe(0);
    await settle();
    expect(heard).toBe(1);
    expect(audit.append(read('bob'))).toBeDefined();
  });

  it('takes rules of your own, and survives one that throws', async () => {
    const night: AnomalyRule = {
      name: 'night-read',
      check: (r) =>
        new Date(r.at).getUTCHours() < 5
          ? { actor: r.actor, message: 'read at night', records: [r.seq] }
          : undefined,
    };
    const broken: AnomalyRule = {
      name: 'broken',
      check: () => {
        throw new Error('bug');
      },
    };
    const { audit, events } = setup([...builtinRules(), broken, night]);
    audit.append(read('dave'));
    await settle();
    expect(events.map((e) => e.rule)).toEqual(['night-read']);
  });
});
