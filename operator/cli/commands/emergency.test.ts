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

/** A client whose POST fails with `createError` and whose GET answers `existing` (or 404). */
function client(createError: unknown, existing?: object) {
  const calls: string[] = [];
  return {
    calls,
    create: async () => {
      calls.push('create');
      throw createError;
    },
    get: async () => {
      calls.push('get');
      if (!existing) throw notFound();
      return existing;
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
    const existing = { ...structuredClone(manifest), metadata: { ...manifest.metadata, namespace: 'shop' } };
    const c = client(reset(), existing);
    expect(await createPlan(c, 'shop', manifest)).toBe(existing);
    expect(c.calls).toEqual(['create', 'get']);
  });

  it('after a 503 on create, follows the plan when it exists', async () => {
    const c = client(
      new KubeApiError(503, 'ServiceUnavailable', 'etcd', 'POST', '/x'),
      structuredClone(manifest),
    );
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

  it('refuses to follow a different plan that has the same name', async () => {
    const other = structuredClone(manifest);
    other.spec.reason = 'someone else';
    const e = await rejection(createPlan(client(reset(), other), 'shop', manifest));
    expect(e.exitCode).toBe(ExitCode.Usage);
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
