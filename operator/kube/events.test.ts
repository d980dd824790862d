import { describe, expect, it } from 'vitest';
import winston from 'winston';
import { KubeApiError } from './errors.js';
import { EventRecorder } from './events.js';
import type { KubeClient, KubeObject } from './rest.js';

const log = winston.createLogger({ silent: true });
const plan: KubeObject = {
  apiVersion: 'rollback.nxtnewday.io/v1alpha1',
  kind: 'RollbackPlan',
  metadata: { name: 'undo-web', namespace: 'shop', uid: 'u1', resourceVersion: '7' },
};

/** A client that records the calls; patches of Event names in `gone` answer 404. */
function fakeClient(gone = new Set<string>()) {
  const calls: { verb: string; name?: string; body: any }[] = [];
  const client = {
    create: async (_ref: unknown, body: any) => {
      calls.push({ verb: 'create', name: body.metadata.name, body });
      return body;
    },
    patch: async (ref: { name: string }, _type: string, body: any) => {
      calls.push({ verb: 'patch', name: ref.name, body });
      if (gone.has(ref.name))
        throw new KubeApiError(404, 'NotFound', 'events not found', 'PATCH', `/events/${ref.name}`);
      return body;
    },
  } as unknown as KubeClient;
  return { client, calls };
}

describe('EventRecorder', () => {
  it('counts a repeat on the same Event with one PATCH', async () => {
    const { client, calls } = fakeClient();
    const r = new EventRecorder(client, 'op', 'pod-1', log);
    await r.record(plan, 'Normal', 'Started', 'rollback started');
    await r.record(plan, 'Normal', 'Started', 'rollback started');
    expect(calls.map((c) => c.verb)).toEqual(['create', 'patch']);
    expect(calls[1]).toMatchObject({ name: calls[0]!.name, body: { count: 2 } });
  });

  it('creates a new Event when the one it counted on expired (404), instead of dropping the repeat', async () => {
    const gone = new Set<string>();
    const { client, calls } = fakeClient(gone);
    const r = new EventRecorder(client, 'op', 'pod-1', log);
    await r.record(plan, 'Warning', 'Failed', 'step X failed');
    gone.add(calls[0]!.name!);
    await r.record(plan, 'Warning', 'Failed', 'step X failed');
    expect(calls.map((c) => c.verb)).toEqual(['create', 'patch', 'create']);
    expect(calls[2]!.body).toMatchObject({ reason: 'Failed', count: 1 });
    // The new Event is the one counted from now on.
    await r.record(plan, 'Warning', 'Failed', 'step X failed');
    expect(calls[3]).toMatchObject({ verb: 'patch', name: calls[2]!.name, body: { count: 2 } });
  });

  it('counts concurrent repeats one after the other (2, 3, 4), as callers do not await a record', async () => {
    const { client, calls } = fakeClient();
    const r = new EventRecorder(client, 'op', 'pod-1', log);
    await r.record(plan, 'Normal', 'Started', 'rollback started');
    await Promise.all([
      r.record(plan, 'Normal', 'Started', 'rollback started'),
      r.record(plan, 'Normal', 'Started', 'rollback started'),
      r.record(plan, 'Normal', 'Started', 'rollback started'),
    ]);
    expect(calls.map((c) => [c.verb, c.body.count])).toEqual([
      ['create', 1],
      ['patch', 2],
      ['patch', 3],
      ['patch', 4],
    ]);
  });

  it('creates one Event, not two, when two concurrent repeats both meet an expired Event', async () => {
    const gone = new Set<string>();
    const { client, calls } = fakeClient(gone);
    const r = new EventRecorder(client, 'op', 'pod-1', log);
    await r.record(plan, 'Warning', 'Failed', 'step X failed');
    gone.add(calls[0]!.name!);
    await Promise.all([
      r.record(plan, 'Warning', 'Failed', 'step X failed'),
      r.record(plan, 'Warning', 'Failed', 'step X failed'),
    ]);
    expect(calls.map((c) => c.verb)).toEqual(['create', 'patch', 'create', 'patch']);
    expect(calls[3]).toMatchObject({ name: calls[2]!.name, body: { count: 2 } });
  });

  it('does not hold up a record of another Event behind a slow one', async () => {
    let release!: () => void;
    const slow = new Promise<void>((res) => (release = res));
    const created: string[] = [];
    const client = {
      create: async (_ref: unknown, body: any) => {
        if (body.reason === 'Slow') await slow;
        created.push(body.reason);
        return body;
      },
      patch: async () => ({}),
    } as unknown as KubeClient;
    const r = new EventRecorder(client, 'op', 'pod-1', log);
    const first = r.record(plan, 'Normal', 'Slow', 'a');
    await r.record(plan, 'Normal', 'Fast', 'b');
    expect(created).toEqual(['Fast']);
    release();
    await first;
    expect(created).toEqual(['Fast', 'Slow']);
  });
});
