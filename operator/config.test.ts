import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { flagsToEnv, leaderElectionProblems, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('applies defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      WATCH_NAMESPACES: [],
      LEADER_ELECT: false,
      LEASE_DURATION: 15_000,
      RENEW_DEADLINE: 10_000,
      RETRY_PERIOD: 2_000,
      METRICS_ADDR: ':8080',
      HEALTH_ADDR: ':8081',
    });
    expect(c.identity).toMatch(/_[0-9a-f-]{36}$/);
  });

  it('gives the RollbackPlan controller 16 workers by default, the other controllers MAX_CONCURRENT_RECONCILES (4)', () => {
    expect(loadConfig({})).toMatchObject({
      MAX_CONCURRENT_RECONCILES: 4,
      PLAN_MAX_CONCURRENT_RECONCILES: 16,
    });
    expect(
      loadConfig({ MAX_CONCURRENT_RECONCILES: '2', PLAN_MAX_CONCURRENT_RECONCILES: '32' }),
    ).toMatchObject({ MAX_CONCURRENT_RECONCILES: 2, PLAN_MAX_CONCURRENT_RECONCILES: 32 });
    expect(() => loadConfig({ PLAN_MAX_CONCURRENT_RECONCILES: '65' })).toThrow(
      /PLAN_MAX_CONCURRENT_RECONCILES/,
    );
  });

  it('parses namespaces, booleans and durations; flags override env', () => {
    const c = loadConfig({ WATCH_NAMESPACES: 'shop, billing', LEADER_ELECT: 'true', LEASE_DURATION: '30s' }, [
      '--lease-duration=1m',
      '--metrics-addr=0',
    ]);
    expect(c.WATCH_NAMESPACES).toEqual(['shop', 'billing']);
    expect(c.LEADER_ELECT).toBe(true);
    expect(c.LEASE_DURATION).toBe(60_000);
    expect(c.METRICS_ADDR).toBe('0');
  });

  it('names every invalid setting', () => {
    expect(() =>
      loadConfig({ WATCH_NAMESPACES: 'Bad_NS', LEADER_ELECT: 'maybe', METRICS_ADDR: 'nope' }),
    ).toThrow(/WATCH_NAMESPACES[\s\S]*LEADER_ELECT[\s\S]*METRICS_ADDR/);
  });

  it('GITOPS_OWNER_NAMESPACES: unset is flux-system,argocd; empty (the chart default) is only the namespace of the plan', () => {
    expect(loadConfig({}).GITOPS_OWNER_NAMESPACES).toEqual(['flux-system', 'argocd']);
    expect(loadConfig({ GITOPS_OWNER_NAMESPACES: '' }).GITOPS_OWNER_NAMESPACES).toEqual([]);
    expect(loadConfig({ GITOPS_OWNER_NAMESPACES: ' , ' }).GITOPS_OWNER_NAMESPACES).toEqual([]);
    expect(loadConfig({ GITOPS_OWNER_NAMESPACES: 'flux-system, argocd' }).GITOPS_OWNER_NAMESPACES).toEqual([
      'flux-system',
      'argocd',
    ]);
    expect(loadConfig({ ARGOCD_NAMESPACE: 'argo-cd' }).ARGOCD_NAMESPACE).toBe('argo-cd');
    expect(() => loadConfig({ GITOPS_OWNER_NAMESPACES: 'Flux_System' })).toThrow(/GITOPS_OWNER_NAMESPACES/);
  });

  it('CLUSTER_ID: a cluster id or unset (empty is unset); anything else is refused', () => {
    expect(loadConfig({ CLUSTER_ID: 'prod-eu-1' }).CLUSTER_ID).toBe('prod-eu-1');
    expect(loadConfig({ CLUSTER_ID: '6c0e7f5e-1f0b-4a53-9d53-8d1a2b7a9c11' }).CLUSTER_ID).toBe(
      '6c0e7f5e-1f0b-4a53-9d53-8d1a2b7a9c11',
    );
    expect(loadConfig({ CLUSTER_ID: '' }).CLUSTER_ID).toBeUndefined();
    expect(loadConfig({}).CLUSTER_ID).toBeUndefined();
    for (const bad of ['-leading-dash', 'has space', 'a/b', 'x'.repeat(129)])
      expect(() => loadConfig({ CLUSTER_ID: bad }), bad).toThrow(/CLUSTER_ID/);
  });

  it('turns flags into env names', () => {
    expect(flagsToEnv(['--leader-elect', '--watch-namespaces=a,b', 'positional'])).toEqual({
      LEADER_ELECT: 'true',
      WATCH_NAMESPACES: 'a,b',
    });
  });

  it('applies the runtime defaults: 2m cache sync timeout, link-local denied, no extra CIDRs', () => {
    expect(loadConfig({})).toMatchObject({
      CACHE_SYNC_TIMEOUT: 120_000,
      HTTP_CHECK_DENY_LINK_LOCAL: true,
      HTTP_CHECK_DENIED_CIDRS: [],
    });
    const c = loadConfig({ HTTP_CHECK_DENIED_CIDRS: '10.0.0.0/8, fd00::/8', CACHE_SYNC_TIMEOUT: '30s' });
    expect(c.HTTP_CHECK_DENIED_CIDRS).toEqual(['10.0.0.0/8', 'fd00::/8']);
    expect(c.CACHE_SYNC_TIMEOUT).toBe(30_000);
    expect(() => loadConfig({ HTTP_CHECK_DENIED_CIDRS: '10.0.0.0/8,not-a-cidr' })).toThrow(
      /HTTP_CHECK_DENIED_CIDRS/,
    );
  });

  it('denies loopback to HTTP checks unless HTTP_CHECK_DENY_LOOPBACK=false', () => {
    expect(loadConfig({}).HTTP_CHECK_DENY_LOOPBACK).toBe(true);
    expect(loadConfig({ HTTP_CHECK_DENY_LOOPBACK: 'false' }).HTTP_CHECK_DENY_LOOPBACK).toBe(false);
  });

  // Addresses are judged in their IPv4 form when IPv4-mapped, so a mapped CIDR was accepted and never matched.
  it('turns an IPv4-mapped denied CIDR into its IPv4 form, and refuses one that mixes address families', () => {
    const c = loadConfig({ HTTP_CHECK_DENIED_CIDRS: '::ffff:10.0.0.0/104,::ffff:192.168.1.1/128,fd00::/8' });
    expect(c.HTTP_CHECK_DENIED_CIDRS).toEqual(['10.0.0.0/8', '192.168.1.1/32', 'fd00::/8']);
    expect(() => loadConfig({ HTTP_CHECK_DENIED_CIDRS: '::ffff:0:0/90' })).toThrow(
      /HTTP_CHECK_DENIED_CIDRS.*IPv4-mapped range with a prefix shorter than \/96/,
    );
  });
});

describe('leader election settings (client-go rules)', () => {
  const ok = { LEASE_DURATION: 15_000, RENEW_DEADLINE: 10_000, RETRY_PERIOD: 2_000 };
  it.each([
    ['the defaults', ok, []],
    ['10s/7s/2s', { LEASE_DURATION: 10_000, RENEW_DEADLINE: 7_000, RETRY_PERIOD: 2_000 }, []],
    ['renewDeadline == leaseDuration', { ...ok, RENEW_DEADLINE: 15_000 }, ['RENEW_DEADLINE']],
    ['renewDeadline > leaseDuration', { ...ok, RENEW_DEADLINE: 20_000 }, ['RENEW_DEADLINE']],
    ['retryPeriod >= renewDeadline', { ...ok, RETRY_PERIOD: 10_000 }, ['RETRY_PERIOD']],
    ['retryPeriod * 1.2 >= renewDeadline', { ...ok, RETRY_PERIOD: 9_000 }, ['RETRY_PERIOD']],
    ['a zero retry period', { ...ok, RETRY_PERIOD: 0 }, ['RETRY_PERIOD']],
    ['a lease under 1s', { LEASE_DURATION: 500, RENEW_DEADLINE: 400, RETRY_PERIOD: 100 }, ['LEASE_DURATION']],
  ])('%s', (_name, cfg, settings) => {
    expect(leaderElectionProblems(cfg).map((p) => p.setting)).toEqual(settings);
  });

  it('refuses RENEW_DEADLINE >= LEASE_DURATION at load, naming the setting', () => {
    expect(() => loadConfig({ LEASE_DURATION: '10s', RENEW_DEADLINE: '10s' })).toThrow(
      /invalid configuration:\n {2}RENEW_DEADLINE: must be shorter than LEASE_DURATION/,
    );
    expect(() => loadConfig({ RETRY_PERIOD: '10s' })).toThrow(/RETRY_PERIOD: must be shorter/);
  });
});

describe('Alertmanager receiver settings', () => {
  it('is off by default', () => {
    expect(loadConfig({}).ALERT_RECEIVER_ADDR).toBe('0');
  });

  it('needs a token file when on, and TLS cert and key together', () => {
    expect(() => loadConfig({ ALERT_RECEIVER_ADDR: ':9095' })).toThrow(
      /ALERT_RECEIVER_TOKEN_FILE: is required when ALERT_RECEIVER_ADDR is set/,
    );
    expect(() =>
      loadConfig({
        ALERT_RECEIVER_ADDR: ':9095',
        ALERT_RECEIVER_TOKEN_FILE: '/etc/token',
        ALERT_RECEIVER_TLS_CERT_FILE: '/etc/tls.crt',
      }),
    ).toThrow(/ALERT_RECEIVER_TLS_KEY_FILE: set both/);
    expect(() => loadConfig({ ALERT_RECEIVER_ADDR: 'nope' })).toThrow(/ALERT_RECEIVER_ADDR/);
    expect(() =>
      loadConfig({ ALERT_RECEIVER_ADDR: ':9095', ALERT_RECEIVER_TOKEN_FILE: '/no/such/token' }),
    ).toThrow(/ALERT_RECEIVER_TOKEN_FILE: \/no\/such\/token cannot be read \(ENOENT\)/);
    const file = fileURLToPath(import.meta.url); // any readable file
    const c = loadConfig({
      ALERT_RECEIVER_ADDR: ':9095',
      ALERT_RECEIVER_TOKEN_FILE: file,
      ALERT_RECEIVER_TLS_CERT_FILE: file,
      ALERT_RECEIVER_TLS_KEY_FILE: file,
    });
    expect(c.ALERT_RECEIVER_ADDR).toBe(':9095');
    expect(
      loadConfig({ ALERT_RECEIVER_TOKEN_FILE: '/no/such/token' }).ALERT_RECEIVER_ADDR,
      'off: not read',
    ).toBe('0');
  });
});
