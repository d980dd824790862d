import { testClients, eventually, kubectl } from './kube.js';

const G = { group: 'rollback.nxtnewday.io', version: 'v1alpha1' } as const;

export async function applyPlan(namespace: string, name: string, spec: object): Promise<any> {
  const { custom } = testClients();
  return custom.createNamespacedCustomObject({
    ...G,
    plural: 'rollbackplans',
    namespace,
    body: { apiVersion: 'rollback.nxtnewday.io/v1alpha1', kind: 'RollbackPlan', metadata: { name }, spec },
  });
}

export async function getPlan(namespace: string, name: string): Promise<any> {
  const { custom } = testClients();
  return custom.getNamespacedCustomObject({ ...G, plural: 'rollbackplans', namespace, name });
}

export const condition = (obj: any, type: string) =>
  (obj.status?.conditions ?? []).find((c: any) => c.type === type);

/** Waits for a terminal phase and returns the plan. */
export async function waitPlanPhase(
  namespace: string,
  name: string,
  phases: string[],
  timeoutMs = 60_000,
): Promise<any> {
  return eventually(
    `RollbackPlan ${name} to reach ${phases.join('|')}`,
    async () => {
      const p = await getPlan(namespace, name);
      return phases.includes(p.status?.phase) ? p : undefined;
    },
    timeoutMs,
  );
}

/** Events the operator recorded about an object, oldest first. */
export async function eventsFor(
  namespace: string,
  name: string,
): Promise<{ reason: string; message: string; type: string; count: number }[]> {
  const out = await kubectl(
    '-n',
    namespace,
    'get',
    'events',
    '--field-selector',
    `involvedObject.name=${name}`,
    '-o',
    'json',
  );
  return JSON.parse(out)
    .items.sort((a: any, b: any) => String(a.firstTimestamp).localeCompare(String(b.firstTimestamp)))
    .map((e: any) => ({ reason: e.reason, message: e.message, type: e.type, count: e.count }));
}

export type RecordedEvent = Awaited<ReturnType<typeof eventsFor>>[number];

/**
 * Waits until the Events about an object satisfy `ready` and returns them all, oldest first. The operator
 * records an Event without waiting for it, after the status write that carries its change, so a test that
 * has just seen that status (a phase, a condition) races the Event: assert an Event's presence through this,
 * not through a single `eventsFor` read. On timeout the error lists the reasons seen.
 */
export async function waitForEvents(
  namespace: string,
  name: string,
  ready: (events: RecordedEvent[]) => boolean,
  what = 'the expected Events',
  timeoutMs = 30_000,
): Promise<RecordedEvent[]> {
  return eventually(
    `${what} about ${name}`,
    async () => {
      const all = await eventsFor(namespace, name);
      if (ready(all)) return all;
      throw new Error(`Events seen: ${all.map((e) => `${e.type}/${e.reason}`).join(', ') || 'none'}`);
    },
    timeoutMs,
    200,
  );
}

/** A `waitForEvents` predicate: an Event of each reason is there. */
export const withReasons =
  (...reasons: string[]) =>
  (events: RecordedEvent[]) =>
    reasons.every((r) => events.some((e) => e.reason === r));
