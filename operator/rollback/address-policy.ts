import ipaddr from 'ipaddr.js';

/**
 * Which addresses an HTTP check may connect to. A plan author chooses the URL but the operator makes the
 * request, with its own network position: without a policy a plan could read the cloud metadata service
 * (instance credentials) through the operator, using `bodyMatch` as an oracle. Link-local and the known
 * metadata addresses are denied by default; operators can deny more ranges, or opt out. Loopback (and the
 * unspecified address, which connects to it) is denied by default too: no in-cluster Service lives there,
 * only the operator pod's own sidecars (a service mesh's admin port, 127.0.0.1:15000), which `bodyMatch`
 * would turn into an oracle. Private ranges stay allowed: in-cluster Services live there.
 */
export interface AddressPolicy {
  denied: { cidr: string; range: [ipaddr.IPv4 | ipaddr.IPv6, number]; what: string; setting: string }[];
}

const DENY_SETTING = 'HTTP_CHECK_DENY_LINK_LOCAL';
const EXTRA_SETTING = 'HTTP_CHECK_DENIED_CIDRS';
const LOOPBACK_SETTING = 'HTTP_CHECK_DENY_LOOPBACK';

/** The default denials, most specific first so the reason names the metadata service. */
export const DEFAULT_DENIED: { cidr: string; what: string }[] = [
  { cidr: '169.254.169.254/32', what: 'the cloud metadata address of AWS, GCP, Azure and OpenStack' },
  { cidr: 'fd00:ec2::254/128', what: 'the AWS IPv6 metadata address' },
  { cidr: '100.100.100.200/32', what: 'the Alibaba Cloud metadata address' },
  { cidr: '169.254.0.0/16', what: 'a link-local address' },
  { cidr: 'fe80::/10', what: 'a link-local address' },
];

/** Denied while HTTP_CHECK_DENY_LOOPBACK is true (the default). */
export const LOOPBACK_DENIED: { cidr: string; what: string }[] = [
  { cidr: '127.0.0.0/8', what: "a loopback address (the operator pod's own sidecars)" },
  { cidr: '::1/128', what: "a loopback address (the operator pod's own sidecars)" },
  { cidr: '0.0.0.0/8', what: 'an unspecified address, which connects to loopback' },
  { cidr: '::/128', what: 'an unspecified address, which connects to loopback' },
];

export function addressPolicy(opts: {
  denyLinkLocal: boolean;
  denyLoopback?: boolean;
  deniedCidrs: string[];
}): AddressPolicy {
  const entries = [
    ...(opts.denyLinkLocal ? DEFAULT_DENIED.map((d) => ({ ...d, setting: DENY_SETTING })) : []),
    ...(opts.denyLoopback ? LOOPBACK_DENIED.map((d) => ({ ...d, setting: LOOPBACK_SETTING })) : []),
    ...opts.deniedCidrs.map((cidr) => ({ cidr, what: `in ${cidr}`, setting: EXTRA_SETTING })),
  ];
  return { denied: entries.map((e) => ({ ...e, range: ipaddr.parseCIDR(e.cidr) })) };
}

/**
 * Why a connection to `address` is refused, or undefined if it is allowed. IPv4-mapped (::ffff:a.b.c.d) and
 * NAT64 (64:ff9b::a.b.c.d) forms are judged as the IPv4 address they reach. Anything that is not an IP
 * address is refused: only resolved addresses are judged.
 */
export function deniedReason(policy: AddressPolicy, address: string): string | undefined {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(address.replace(/^\[|\]$/g, ''));
  } catch {
    return `"${address}" is not an IP address`;
  }
  const candidates = [addr];
  if (addr.kind() === 'ipv6' && addr.range() === 'rfc6052')
    candidates.push(ipaddr.fromByteArray((addr as ipaddr.IPv6).toByteArray().slice(12)));
  for (const a of candidates) {
    for (const d of policy.denied) {
      if (a.kind() !== d.range[0].kind() || !a.match(d.range)) continue;
      return `${address} is ${d.what} (${d.cidr}), which HTTP checks may not reach (operator setting ${d.setting})`;
    }
  }
  return undefined;
}

/**
 * A denied CIDR as the policy can match it. Addresses are judged in their IPv4 form when they are
 * IPv4-mapped (::ffff:a.b.c.d), so an IPv4-mapped CIDR such as ::ffff:10.0.0.0/104 could never match:
 * it is rewritten to its IPv4 form (10.0.0.0/8). One with a prefix shorter than /96 is refused (it would
 * mix mapped and unmapped space). Throws an Error naming the fix for anything else unusable.
 */
export function normaliseDeniedCidr(cidr: string): string {
  if (!ipaddr.isValidCIDR(cidr)) throw new Error(`"${cidr}" is not a CIDR such as 10.0.0.0/8 or fd00::/8`);
  const [addr, prefix] = ipaddr.parseCIDR(cidr);
  if (addr.kind() !== 'ipv6' || !(addr as ipaddr.IPv6).isIPv4MappedAddress()) return cidr;
  if (prefix < 96)
    throw new Error(
      `"${cidr}" is an IPv4-mapped range with a prefix shorter than /96; write the IPv4 range instead`,
    );
  return `${(addr as ipaddr.IPv6).toIPv4Address().toString()}/${prefix - 96}`;
}
