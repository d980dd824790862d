import { describe, expect, it } from 'vitest';
import { parseRollbackPlan } from '../api/v1alpha1/rollbackplan.js';
import {
  backupSelector,
  buildEmergencyPlan,
  emergencyName,
  flagsTarget,
  type EmergencyFlags,
} from './emergency-plan.js';
import { CliError, ExitCode } from './errors.js';

const NOW = new Date('2026-11-29T09:05:07Z');
const build = (f: Partial<EmergencyFlags> & Pick<EmergencyFlags, 'scope'>) =>
  buildEmergencyPlan({ deployments: [], ...f }, NOW, '3fa1');
const usageError = (f: Partial<EmergencyFlags> & Pick<EmergencyFlags, 'scope'>) => {
  try {
    build(f);
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    expect((e as CliError).exitCode).toBe(ExitCode.Usage);
    return (e as CliError).message;
  }
  throw new Error(`expected a usage error for ${JSON.stringify(f)}`);
};

describe('emergency plan', () => {
  it('names the plan emergency-<scope>-<UTC time>-<hex>, within the 55-character plan name limit', () => {
    expect(emergencyName('app', NOW, '3fa1')).toBe('emergency-app-20261129-090507-3fa1');
    expect(emergencyName('database', NOW, 'ffff').length).toBeLessThanOrEqual(55);
  });

  it('builds a critical app plan with the http checks and a valid spec', () => {
    const p = build({
      scope: 'app',
      deployments: ['web', 'api', 'web'],
      toRevision: '3',
      reason: '5xx after release',
      http: ['http://web/healthz', 'http://api/healthz'],
      validationTimeout: '30s',
    });
    expect(p.metadata.name).toBe('emergency-app-20261129-090507-3fa1');
    expect(p.spec).toEqual({
      scope: 'app',
      severity: 'critical',
      reason: '5xx after release',
      targets: {
        deployments: [
          { name: 'web', toRevision: 3 },
          { name: 'api', toRevision: 3 },
        ],
      },
      validation: {
        timeout: '30s',
        http: [
          { url: 'http://web/healthz', expectStatus: 200 },
          { url: 'http://api/healthz', expectStatus: 200 },
        ],
      },
    });
    expect(parseRollbackPlan(p).ok, JSON.stringify(parseRollbackPlan(p))).toBe(true);
  });

  it('builds database, feature and full plans', () => {
    const db = build({
      scope: 'database',
      schedule: 'shop-db',
      backup: 'before=2026-11-29T08:00:00Z',
      mode: 'newDatabaseSwap',
      safetyBackup: false,
    });
    expect(db.spec.targets).toEqual({
      database: {
        backupScheduleRef: { name: 'shop-db' },
        backup: { before: '2026-11-29T08:00:00Z' },
        mode: 'newDatabaseSwap',
        safetyBackup: false,
      },
    });
    // commander's default for --no-safety-backup is true: nothing written, the runtime default applies.
    expect(build({ scope: 'database', schedule: 'db', safetyBackup: true }).spec.targets.database).toEqual({
      backupScheduleRef: { name: 'db' },
    });
    const ff = build({
      scope: 'feature',
      flags: 'featureflag/shop-flags',
      disable: 'new-checkout, beta,beta',
    });
    expect(ff.spec.targets.featureFlags).toEqual({
      featureFlagRef: { name: 'shop-flags' },
      disable: ['new-checkout', 'beta'],
    });
    const full = build({
      scope: 'full',
      deployments: ['web'],
      schedule: 'db',
      flags: 'flags',
      disable: 'x',
      dryRun: true,
    });
    expect(full.spec.dryRun).toBe(true);
    expect(Object.keys(full.spec.targets)).toEqual(['deployments', 'database', 'featureFlags']);
    for (const p of [db, ff, full]) expect(parseRollbackPlan(p).ok).toBe(true);
  });

  it('reads --backup and --flags forms', () => {
    expect(backupSelector('latest')).toEqual({ latestVerified: true });
    expect(backupSelector('20261129T080000Z-ab12')).toEqual({ id: '20261129T080000Z-ab12' });
    expect(() => backupSelector('before=yesterday')).toThrow(/RFC 3339/);
    expect(flagsTarget('shop-flags')).toEqual({ configMapRef: { name: 'shop-flags' } });
    expect(flagsTarget('configmap/shop-flags')).toEqual({ configMapRef: { name: 'shop-flags' } });
    expect(flagsTarget('ff/f')).toEqual({ featureFlagRef: { name: 'f' } });
  });

  it.each<[string, Partial<EmergencyFlags> & Pick<EmergencyFlags, 'scope'>, RegExp]>([
    ['app without deployments', { scope: 'app' }, /--scope app needs at least one Deployment/],
    ['database without --schedule', { scope: 'database' }, /needs --schedule/],
    ['feature without --disable', { scope: 'feature', flags: 'f' }, /needs --flags .* and --disable/],
    [
      'full without targets (npm run rollback:emergency alone), with an example',
      { scope: 'full' },
      /needs Deployments, --schedule.*e\.g\. nxt-rollback emergency --scope full checkout.*npm run rollback:emergency -- checkout/,
    ],
    [
      'deployments with database',
      { scope: 'database', schedule: 'db', deployments: ['web'] },
      /does not roll back Deployments/,
    ],
    [
      '--schedule with app',
      { scope: 'app', deployments: ['web'], schedule: 'db' },
      /--schedule apply to --scope database/,
    ],
    [
      '--mode without --schedule',
      { scope: 'full', deployments: ['web'], mode: 'inPlace' },
      /--mode need --schedule/,
    ],
    [
      '--flags with app',
      { scope: 'app', deployments: ['web'], flags: 'f', disable: 'x' },
      /apply to --scope feature/,
    ],
    ['--flags without --disable in full', { scope: 'full', deployments: ['web'], flags: 'f' }, /go together/],
    [
      '--to-revision not a number',
      { scope: 'app', deployments: ['web'], toRevision: 'two' },
      /not a revision number/,
    ],
    [
      '--to-revision with database',
      { scope: 'database', schedule: 'db', toRevision: '1' },
      /--to-revision applies/,
    ],
    [
      '--validation-timeout not a duration',
      { scope: 'app', deployments: ['web'], validationTimeout: '5 minutes' },
      /not a duration/,
    ],
  ])('refuses %s as usage', (_, f, message) => {
    expect(usageError(f)).toMatch(message);
  });
});
