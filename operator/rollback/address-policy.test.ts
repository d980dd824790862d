import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { addressPolicy, deniedReason } from './address-policy.js';

describe('HTTP check address policy', () => {
  const defaults = loadConfig({});
  const byDefault = addressPolicy({
    denyLinkLocal: defaults.HTTP_CHECK_DENY_LINK_LOCAL,
    denyLoopback: defaults.HTTP_CHECK_DENY_LOOPBACK,
    deniedCidrs: defaults.HTTP_CHECK_DENIED_CIDRS,
  });

  it.each([
    ['169.254.169.254', /cloud metadata address of AWS.*\(169\.254\.169\.254\/32\)/],
    ['169.254.0.1', /link-local address \(169\.254\.0\.0\/16\)/],
    ['fe80::1', /link-local address \(fe80::\/10\)/],
    ['[fe80::1]', /link-local/],
    ['fd00:ec2::254', /AWS IPv6 metadata/],
    ['100.100.100.200', /Alibaba Cloud metadata/],
    ['::ffff:169.254.169.254', /cloud metadata address of AWS/],
    ['64:ff9b::a9fe:a9fe', /cloud metadata address of AWS/],
    ['not-an-ip', /is not an IP address/],
  ])('denies %s by default', (address, why) => {
    const r = deniedReason(byDefault, address);
    expect(r).toMatch(why);
    if (!/not an IP/.test(r!)) expect(r).toMatch(/operator setting HTTP_CHECK_DENY_LINK_LOCAL/);
  });

  it.each(['10.96.0.10', '192.168.1.5', 'fd00::1', '100.100.100.201', '8.8.8.8'])(
    'allows %s by default (cluster and public addresses)',
    (address) => expect(deniedReason(byDefault, address)).toBeUndefined(),
  );

  // A sidecar's admin port on loopback (Envoy's 127.0.0.1:15000) would answer a plan's check, and bodyMatch
  // would tell its author what it says. 0.0.0.0 and :: connect to loopback too.
  it.each(['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '0.0.0.0', '::'])(
    'denies the loopback address %s by default, naming HTTP_CHECK_DENY_LOOPBACK',
    (address) =>
      expect(deniedReason(byDefault, address)).toMatch(
        /(loopback|unspecified) address.*operator setting HTTP_CHECK_DENY_LOOPBACK/,
      ),
  );

  it('allows loopback when HTTP_CHECK_DENY_LOOPBACK is false', () => {
    const p = addressPolicy({ denyLinkLocal: true, denyLoopback: false, deniedCidrs: [] });
    for (const a of ['127.0.0.1', '::1', '0.0.0.0']) expect(deniedReason(p, a)).toBeUndefined();
    expect(deniedReason(p, '169.254.169.254')).toBeDefined();
  });

  it('denies extra CIDRs from the configuration, naming the setting', () => {
    const p = addressPolicy({ denyLinkLocal: true, deniedCidrs: ['10.0.0.0/8', 'fd00::/8'] });
    expect(deniedReason(p, '10.1.2.3')).toMatch(
      /10\.1\.2\.3 is in 10\.0\.0\.0\/8.*operator setting HTTP_CHECK_DENIED_CIDRS/,
    );
    expect(deniedReason(p, 'fd12::1')).toMatch(/in fd00::\/8/);
    expect(deniedReason(p, '::ffff:10.0.0.1')).toMatch(/in 10\.0\.0\.0\/8/);
    expect(deniedReason(p, '11.0.0.1')).toBeUndefined();
  });

  it('allows link-local and metadata addresses when opted out', () => {
    const p = addressPolicy({ denyLinkLocal: false, deniedCidrs: [] });
    expect(deniedReason(p, '169.254.169.254')).toBeUndefined();
    expect(deniedReason(p, 'fe80::1')).toBeUndefined();
  });
});
