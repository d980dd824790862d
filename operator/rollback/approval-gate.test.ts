import { describe, expect, it } from 'vitest';
import { Annotation } from '../api/v1alpha1/common.js';
import type { RollbackPlanStatus } from '../api/v1alpha1/rollbackplan.js';
import { passGate } from './approval-gate.js';

// Review nit: a plan vetoed the moment it fired never waited, yet got AwaitingApproval=False/Vetoed.
describe('passGate, vetoed', () => {
  const run = async (phase: RollbackPlanStatus['phase']) => {
    const set: string[] = [];
    const status: RollbackPlanStatus = {
      phase,
      trigger: { firedAt: new Date().toISOString(), condition: 'c', type: 'HTTPCheck' },
    };
    await passGate({
      plan: { metadata: { name: 'p', annotations: { [Annotation.VetoedBy]: 'bob' } } },
      spec: { severity: 'high', trigger: { mode: 'auto' } } as never,
      status,
      now: () => new Date(),
      cond: (c) => void set.push(`${c.type}=${c.status}`),
      event: () => {},
      write: async () => {},
    });
    expect(status.phase).toBe('Vetoed');
    return set;
  };

  it('sets AwaitingApproval=False only on a plan that waited', async () => {
    expect(await run('AwaitingApproval')).toContain('AwaitingApproval=False');
    expect(await run('Armed')).not.toContain('AwaitingApproval=False');
  });
});
