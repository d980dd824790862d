import { describe, expect, it } from 'vitest';
import { KubeApiError } from '../../kube/errors.js';
import { buildEmergencyPlan } from '../emergency-plan.js';
import { CliError, ExitCode } from '../errors.js';
import { watchForbidden } from '../watch.js';
import { plansRef } from '../context.js';
import { createPlan, followFailure } from './emergency.js';

const manifest = buildEmergencyPlan(
  { scope: 'app', deployments: ['web'], reason: 'bad deploy' },
  new Date('2026-11-29T09:05:07Z'),
  '3fa1',
);
const name = manifest.metadata.name;
const reset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
const notFound = () => new KubeApiError(404, 'NotFound', 'not found', 'GET', '/x');

/** Keys in alphabetical order at every level, as the API server returns a custom resource. */
const sortedKeys = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(sortedKeys)
    : v && typeof v === 'object'
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, sortedKeys((v as Record<string, unknown>)[k])]),
        )
      : v;

/**
 * A client whose POST fails with `createError` after (stored: true) or before reaching the API server, and whose
 * GET answers what was stored (keys sorted, like the API server), or `existing`, or 404.
 */
function client(createError: unknown, opts: { stored?: boolean; existing?: object } = {}) {
  const calls: string[] = [];
  let kept: object | undefined = opts.existing;
  return {
    calls,
    create: async (_ref: unknown, body: object) => {
      calls.push('create');
      if (opts.stored) kept = sortedKeys(structuredClone(body)) as object;
      throw createError;
    },
    get: async () => {
      calls.push('get');
      if (!kept) throw notFound();
      return kept;
    },
  } as any;
}

const rejection = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e as CliError;
  }
  throw new Error('expected a rejection');
};

describe('emergency: creating the plan once', () => {
  it('after a connection reset on create, follows the plan that did get created (no second plan)', async () => {
    // A full-scope plan: the API server hands it back with its keys in another order than the CLI wrote them.
    const full = buildEmergencyPlan(
      { scope: 'full', deployments: ['web'], schedule: 'shop-db', backup: 'latest', reason: 'bad deploy' },
      new Date('2026-11-29T09:05:07Z'),
      '3fa1',
    );
    const c = client(reset(), { stored: true });
    const followed = await createPlan(c, 'shop', full);
    expect(followed.metadata.name).toBe(full.metadata.name);
    expect(c.calls).toEqual(['create', 'get']);
  });

  it('after a 503 on create, follows the plan when it exists', async () => {
    const c = client(new KubeApiError(503, 'ServiceUnavailable', 'etcd', 'POST', '/x'), { stored: true });
    expect((await createPlan(c, 'shop', manifest)).metadata.name).toBe(name);
  });

  it('says the plan may have been created when it cannot tell', async () => {
    const c = client(reset());
    c.get = async () => {
      throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    };
    const e = await rejection(createPlan(c, 'shop', manifest));
    expect(e.exitCode).toBe(ExitCode.Unavailable);
    expect(e.message).toContain(`the plan may have been created: nxt-rollback -n shop status ${name}`);
  });

  it('refuses to follow a different plan that has the same name, even with the same spec', async () => {
    // The POST never arrived; someone else's plan of that name (identical spec) is not ours.
    const other = structuredClone(manifest);
    const e = await rejection(createPlan(client(reset(), { existing: other }), 'shop', manifest));
    expect(e.exitCode).toBe(ExitCode.Usage);
    expect(e.message).toContain('exists but is not the plan sent');
  });

  it('does not retry a refusal (422 is exit 2)', async () => {
    const c = client(new KubeApiError(422, 'Invalid', 'spec.targets: bad', 'POST', '/x'));
    expect((await rejection(createPlan(c, 'shop', manifest))).exitCode).toBe(ExitCode.Usage);
    expect(c.calls).toEqual(['create']);
  });

  it('when following fails after the create, says the plan was created and goes on', () => {
    const e = followFailure(
      watchForbidden(plansRef('shop', name), `RollbackPlan shop/${name}`, 403),
      'shop',
      name,
    );
    expect(e.exitCode).toBe(ExitCode.Forbidden);
    expect(e.message).toContain(
      `the plan ${name} was created and goes on: nxt-rollback -n shop status ${name}`,
    );
  });
});
