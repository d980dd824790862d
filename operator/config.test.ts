import { describe, expect, it } from 'vitest';
import { flagsToEnv, loadConfig } from './config.js';

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

  it('turns flags into env names', () => {
    expect(flagsToEnv(['--leader-elect', '--watch-namespaces=a,b', 'positional'])).toEqual({
      LEADER_ELECT: 'true',
      WATCH_NAMESPACES: 'a,b',
    });
  });
});
