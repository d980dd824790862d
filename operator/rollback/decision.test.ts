import { describe, expect, it } from 'vitest';
import { Annotation } from '../api/v1alpha1/common.js';
import { gate } from './decision.js';

const t0 = new Date('2026-11-29T10:00:00Z');
const at = (s: number) => new Date(t0.getTime() + s * 1000);

describe('gate (the decision matrix)', () => {
  it('critical automatic plans execute at once, recorded as automatic', () => {
    const g = gate({ severity: 'critical', mode: 'auto', annotations: {}, requestedAt: t0, now: t0 });
    expect(g).toMatchObject({ kind: 'execute', approval: { automatic: true } });
  });
  it('high automatic plans wait confirmFor, then execute', () => {
    const base = { severity: 'high' as const, mode: 'auto' as const, confirmFor: '30s', annotations: {} };
    const w = gate({ ...base, requestedAt: t0, now: at(10) });
    expect(w).toMatchObject({ kind: 'wait', reason: 'ConfirmWindow', requeueAfterMs: 20_000 });
    expect(gate({ ...base, requestedAt: t0, now: at(30) })).toMatchObject({ kind: 'execute' });
  });
  it('high defaults to a 2m confirm window', () => {
    const g = gate({ severity: 'high', mode: 'auto', annotations: {}, requestedAt: t0, now: at(119) });
    expect(g).toMatchObject({ kind: 'wait', requeueAfterMs: 1000 });
  });
  it('a veto wins over an approval and over the confirm window passing', () => {
    const annotations = { [Annotation.VetoedBy]: 'bob', [Annotation.ApprovedBy]: 'alice' };
    const g = gate({ severity: 'high', mode: 'auto', annotations, requestedAt: t0, now: at(600) });
    expect(g).toMatchObject({ kind: 'vetoed', veto: { vetoedBy: 'bob' } });
  });
  it('an approval runs a high plan at once and records who', () => {
    const annotations = { [Annotation.ApprovedBy]: 'alice', [Annotation.ApprovalReason]: 'confirmed 5xx' };
    const g = gate({ severity: 'high', mode: 'auto', annotations, requestedAt: t0, now: at(1) });
    expect(g).toMatchObject({ kind: 'execute', approval: { approvedBy: 'alice', reason: 'confirmed 5xx' } });
  });
  it.each(['medium', 'low'] as const)('%s never executes on its own, manual or automatic', (severity) => {
    for (const mode of ['manual', 'auto'] as const) {
      const g = gate({ severity, mode, annotations: {}, requestedAt: t0, now: at(86_400) });
      expect(g).toMatchObject({ kind: 'wait', reason: 'ApprovalRequired' });
      expect(g).not.toHaveProperty('requeueAfterMs');
    }
  });
  it('manual plans without severity, or critical/high, execute at once (a person applied them)', () => {
    for (const severity of [undefined, 'critical', 'high'] as const) {
      const g = gate({ severity, mode: 'manual', annotations: {}, requestedAt: t0, now: t0 });
      expect(g.kind).toBe('execute');
    }
  });
  it('bounds what it copies from annotations', () => {
    const annotations = { [Annotation.VetoedBy]: 'u'.repeat(400), [Annotation.VetoReason]: 'r'.repeat(5000) };
    const g = gate({ severity: 'low', mode: 'auto', annotations, requestedAt: t0, now: t0 });
    expect(g.kind).toBe('vetoed');
    if (g.kind !== 'vetoed') return;
    expect(g.veto.vetoedBy.length).toBeLessThanOrEqual(253);
    expect(g.veto.reason!.length).toBeLessThanOrEqual(1024);
  });
  it('never cuts a surrogate pair in two when it bounds a reason', () => {
    const reason = `${'r'.repeat(1020)}😀😀😀`;
    const annotations = { [Annotation.VetoedBy]: 'bob', [Annotation.VetoReason]: reason };
    const g = gate({ severity: 'low', mode: 'auto', annotations, requestedAt: t0, now: t0 });
    if (g.kind !== 'vetoed') throw new Error(g.kind);
    expect(g.veto.reason!.length).toBeLessThanOrEqual(1024);
    expect(g.veto.reason).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });
  it('a blank annotation is no decision', () => {
    const g = gate({
      severity: 'medium',
      mode: 'auto',
      annotations: { [Annotation.ApprovedBy]: '  ' },
      requestedAt: t0,
      now: t0,
    });
    expect(g.kind).toBe('wait');
  });
});
