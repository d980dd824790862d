import { describe, expect, it } from 'vitest';
import { AlertStore, type ReceivedAlert } from './alert-store.js';

const T0 = Date.parse('2026-11-29T10:00:00Z');
const alert = (over: Partial<ReceivedAlert> = {}): ReceivedAlert => ({
  status: 'firing',
  fingerprint: 'fp1',
  labels: { alertname: 'HighErrorRate', namespace: 'shop' },
  annotations: { summary: 'errors' },
  startsAt: new Date(T0),
  ...over,
});

describe('AlertStore', () => {
  const clock = () => {
    let now = T0;
    return { now: () => now, advance: (ms: number) => (now += ms) };
  };

  it('stores firing alerts by fingerprint and finds the earliest-starting match at or after notBefore', () => {
    const c = clock();
    const s = new AlertStore({ now: c.now });
    s.apply([
      alert({ fingerprint: 'late', startsAt: new Date(T0 + 60_000) }),
      alert({ fingerprint: 'early', startsAt: new Date(T0 + 10_000) }),
      alert({ fingerprint: 'before', startsAt: new Date(T0 - 60_000) }),
      alert({ fingerprint: 'other', labels: { alertname: 'Other' }, startsAt: new Date(T0 + 1000) }),
    ]);
    const m = [{ name: 'alertname', value: 'HighErrorRate' }];
    expect(s.firingMatching(m, new Date(T0))?.fingerprint).toBe('early');
    expect(s.firingMatching(m, new Date(T0 + 10_000))?.fingerprint, 'startsAt == notBefore counts').toBe(
      'early',
    );
    expect(s.firingMatching(m, new Date(T0 + 10_001))?.fingerprint).toBe('late');
    expect(
      s.firingMatching(m, new Date(T0 + 60_001)),
      'alerts that started before the window do not count',
    ).toBeUndefined();
    const found = s.firingMatching(m, new Date(T0))!;
    expect(found).toMatchObject({
      labels: { alertname: 'HighErrorRate', namespace: 'shop' },
      annotations: { summary: 'errors' },
      receivedAt: new Date(T0),
    });
  });

  it('resolved removes the alert, but not one that fired again after the resolved episode', () => {
    const s = new AlertStore();
    s.apply([alert()]);
    expect(s.size).toBe(1);
    expect(s.apply([alert({ status: 'resolved' })])).toEqual({ stored: 0, removed: 1 });
    expect(s.size).toBe(0);
    s.apply([alert({ startsAt: new Date(T0 + 5000) })]);
    s.apply([alert({ status: 'resolved', startsAt: new Date(T0) })]);
    expect(s.size, 'a late resolve of the earlier episode').toBe(1);
  });

  it('a repeat refreshes receivedAt; an alert not received for the TTL expires', () => {
    const c = clock();
    const sizes: number[] = [];
    const s = new AlertStore({ now: c.now, ttlMs: 1000, onSize: (n) => sizes.push(n) });
    s.apply([alert({ fingerprint: 'a' }), alert({ fingerprint: 'b' })]);
    c.advance(600);
    s.apply([alert({ fingerprint: 'a' })]);
    c.advance(600);
    expect(s.list().map((a) => a.fingerprint)).toEqual(['a']);
    c.advance(600);
    expect(s.firingMatching([{ name: 'alertname', value: 'HighErrorRate' }], new Date(0))).toBeUndefined();
    expect(sizes.at(-1)).toBe(0);
  });

  it('is bounded: the least recently received are dropped and counted', () => {
    let dropped = 0;
    const s = new AlertStore({ maxAlerts: 3, onDropped: (n) => (dropped += n) });
    s.apply([1, 2, 3].map((i) => alert({ fingerprint: `f${i}` })));
    s.apply([alert({ fingerprint: 'f1' })]); // refreshed: now the newest
    s.apply([alert({ fingerprint: 'f4' }), alert({ fingerprint: 'f5' })]);
    expect(s.list().map((a) => a.fingerprint)).toEqual(['f1', 'f4', 'f5']);
    expect(dropped).toBe(2);
  });

  it('tells listeners which alerts a payload stored or resolved (so only matching plans are woken)', () => {
    const s = new AlertStore();
    const seen: string[][] = [];
    s.onChange((changed) => seen.push(changed.map((a) => a.labels.alertname ?? '')));
    s.apply([alert()]);
    s.apply([alert({ status: 'resolved' })]);
    expect(seen).toEqual([['HighErrorRate'], ['HighErrorRate']]);
  });

  it('tells listeners after each payload, until they unsubscribe', () => {
    const s = new AlertStore();
    let calls = 0;
    const off = s.onChange(() => calls++);
    s.apply([alert()]);
    s.apply([alert({ status: 'resolved' })]);
    off();
    s.apply([alert()]);
    expect(calls).toBe(2);
  });

  it('a throwing listener neither stops the others nor the payload', () => {
    const errors: unknown[] = [];
    const s = new AlertStore({ onListenerError: (e) => errors.push(e) });
    let called = false;
    s.onChange(() => {
      throw new Error('boom');
    });
    s.onChange(() => (called = true));
    expect(s.apply([alert()])).toEqual({ stored: 1, removed: 0 });
    expect(called).toBe(true);
    expect(errors).toHaveLength(1);
  });
});
