import { describe, expect, it } from 'vitest';
import { evaluateRpo } from './rpo.js';

const now = new Date('2026-11-28T12:30:00Z');

describe('evaluateRpo', () => {
  it('is False with NoBackupYet before the first backup', () => {
    expect(
      evaluateRpo({ objective: '1h', schedule: '*/30 * * * *', scheduleGapMs: 1_800_000, now }),
    ).toMatchObject({
      status: 'False',
      reason: 'NoBackupYet',
    });
  });

  it('is True within the objective and says when it will breach', () => {
    const r = evaluateRpo({
      lastSuccess: '2026-11-28T12:00:00Z',
      objective: '1h',
      schedule: '*/30 * * * *',
      scheduleGapMs: 1_800_000,
      now,
    });
    expect(r).toMatchObject({
      status: 'True',
      reason: 'WithinObjective',
      objectiveSeconds: 3600,
      rpoSeconds: 1800,
      breachInMs: 1801_000,
    });
    expect(r.message).not.toMatch(/schedule/);
  });

  it('is False past the objective', () => {
    const r = evaluateRpo({
      lastSuccess: '2026-11-28T10:00:00Z',
      objective: '1h',
      schedule: '*/30 * * * *',
      scheduleGapMs: 1_800_000,
      now,
    });
    expect(r).toMatchObject({ status: 'False', reason: 'ObjectiveBreached', rpoSeconds: 9000 });
    expect(r.message).toMatch(/2\.5h old/);
  });

  it('says honestly that 4-hourly backups cannot keep a 1h objective', () => {
    const r = evaluateRpo({
      lastSuccess: '2026-11-28T12:00:00Z',
      objective: '1h',
      schedule: '0 */4 * * *',
      scheduleGapMs: 4 * 3_600_000,
      now,
    });
    expect(r.status).toBe('True');
    expect(r.message).toMatch(/leaves up to 4h between backups, longer than the RPO objective 1h/);
  });
});
