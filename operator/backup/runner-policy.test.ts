import { describe, expect, it } from 'vitest';
import { withBackupScheduleDefaults } from '../api/v1alpha1/backupschedule.js';
import { loadConfig } from '../config.js';
import { ALLOW_SUPERUSER_ASSERTIONS_ENV, buildRunnerJobTemplate } from './pod-builders.js';
import { refuseRunnerOverrides, runnerPolicyOf, type RunnerPolicy } from './runner-policy.js';

const policy = (over: Partial<RunnerPolicy> = {}): RunnerPolicy => ({
  operatorImage: 'ghcr.io/nxtnewday/nxt-rollback-operator:0.1.0',
  allowedImages: [],
  allowedServiceAccounts: [],
  allowSuperuserAssertions: false,
  ...over,
});

describe('refuseRunnerOverrides', () => {
  it.each([
    ['no pod template', undefined, policy(), undefined],
    ['placement only', { nodeSelector: { a: 'b' } }, policy(), undefined],
    [
      'the operator image itself',
      { image: 'ghcr.io/nxtnewday/nxt-rollback-operator:0.1.0' },
      policy(),
      undefined,
    ],
    ['any image, empty allow-list', { image: 'evil.example/dump:1' }, policy(), 'ImageNotAllowed'],
    [
      'an exact entry',
      { image: 'reg.example/tools:2' },
      policy({ allowedImages: ['reg.example/tools:2'] }),
      undefined,
    ],
    [
      'another tag of an exact entry',
      { image: 'reg.example/tools:3' },
      policy({ allowedImages: ['reg.example/tools:2'] }),
      'ImageNotAllowed',
    ],
    [
      'below a prefix',
      { image: 'reg.example/team/tools@sha256:ab' },
      policy({ allowedImages: ['reg.example/team/'] }),
      undefined,
    ],
    [
      'beside a prefix',
      { image: 'reg.example/team-evil/tools:1' },
      policy({ allowedImages: ['reg.example/team/'] }),
      'ImageNotAllowed',
    ],
    [
      'the prefix alone',
      { image: 'reg.example/team/' },
      policy({ allowedImages: ['reg.example/team/'] }),
      'ImageNotAllowed',
    ],
    [
      'a ServiceAccount, empty allow-list',
      { serviceAccountName: 'deployer' },
      policy(),
      'ServiceAccountNotAllowed',
    ],
    [
      'an allowed ServiceAccount',
      { serviceAccountName: 'nxt-backup-runner' },
      policy({ allowedServiceAccounts: ['nxt-backup-runner'] }),
      undefined,
    ],
    [
      'an allowed account, a refused image',
      { serviceAccountName: 'nxt-backup-runner', image: 'x:1' },
      policy({ allowedServiceAccounts: ['nxt-backup-runner'] }),
      'ImageNotAllowed',
    ],
  ] as const)('%s', (_what, podTemplate, p, reason) => {
    expect(refuseRunnerOverrides(podTemplate as never, p)?.reason).toBe(reason);
  });

  it('says what is refused, what the configuration allows, and what to do', () => {
    const r = refuseRunnerOverrides(
      { image: 'evil.example/dump:1' },
      policy({ allowedImages: ['reg.example/'] }),
    );
    expect(r?.message).toContain('spec.podTemplate.image "evil.example/dump:1"');
    expect(r?.message).toContain('ALLOWED_RUNNER_IMAGES allows only reg.example/');
    expect(refuseRunnerOverrides({ serviceAccountName: 'deployer' }, policy())?.message).toContain(
      'ALLOWED_RUNNER_SERVICE_ACCOUNTS is empty: no override is allowed',
    );
  });
});

describe('runnerPolicyOf', () => {
  it('defaults to no overrides and no superuser assertions', () => {
    expect(runnerPolicyOf(loadConfig({}))).toMatchObject({
      allowedImages: [],
      allowedServiceAccounts: [],
      allowSuperuserAssertions: false,
    });
  });

  it('reads comma-separated allow-lists and refuses malformed entries', () => {
    const c = loadConfig({
      ALLOWED_RUNNER_IMAGES: 'reg.example/team/, reg.example/tools:2',
      ALLOWED_RUNNER_SERVICE_ACCOUNTS: 'nxt-backup-runner',
      ALLOW_SUPERUSER_ASSERTIONS: 'true',
    });
    expect(runnerPolicyOf(c)).toMatchObject({
      allowedImages: ['reg.example/team/', 'reg.example/tools:2'],
      allowedServiceAccounts: ['nxt-backup-runner'],
      allowSuperuserAssertions: true,
    });
    expect(() => loadConfig({ ALLOWED_RUNNER_SERVICE_ACCOUNTS: 'Not_An_Account' })).toThrow(
      /ALLOWED_RUNNER_SERVICE_ACCOUNTS/,
    );
  });
});

describe('ALLOW_SUPERUSER_ASSERTIONS reaches the runner pod', () => {
  const input = {
    scheduleName: 's',
    spec: withBackupScheduleDefaults({
      database: { secretRef: { name: 'db' } },
      storage: { persistentVolumeClaim: { claimName: 'c' } },
    } as never),
    secret: { name: 'db', keys: new Set(['uri']) },
    claimName: 'c',
    image: 'img',
    args: ['test-restore'],
    component: 'test-restore' as const,
  };
  const envOf = (allow?: boolean) =>
    buildRunnerJobTemplate({ ...input, allowSuperuserAssertions: allow }).spec.template.spec.containers[0]!
      .env;

  it('only when the operator allows it', () => {
    expect(envOf(true)).toContainEqual({ name: ALLOW_SUPERUSER_ASSERTIONS_ENV, value: 'true' });
    for (const allow of [false, undefined])
      expect(envOf(allow).map((e) => e.name)).not.toContain(ALLOW_SUPERUSER_ASSERTIONS_ENV);
  });
});
