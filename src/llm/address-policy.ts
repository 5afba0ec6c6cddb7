import ipaddr from 'ipaddr.js';
import { isIP } from 'node:net';

/**
 * Which network addresses a client-supplied backend may be reached at (CONTRACT §3, issue 7).
 *
 * - `forbidden`, refused unless an allowlist entry names the address literally: link-local (where
 *   cloud metadata services live: 169.254.169.254, fe80::/10), the known metadata addresses outside
 *   it (AWS's fd00:ec2::254, Alibaba's 100.100.100.200), multicast, broadcast and the reserved
 *   240/4; and anything unparseable.
 * - `private`, refused unless the operator opts in (`llmAllowPrivateAddresses`) or an allowlist
 *   entry names the address literally (or names `localhost`, for loopback): loopback, RFC 1918,
 *   CGNAT, unique-local, "this network", the IETF protocol and benchmarking ranges.
 * - `public`: everything else.
 *
 * The allowlist's say comes through {@link HostNaming} (see `allowlistNaming` in base-url.policy.ts).
 *
 * An IPv6 address that embeds an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible,
 * NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4 `2002::/16`, Teredo `2001::/32`) is judged by
 * the worse of the two, so `[::ffff:169.254.169.254]` is as forbidden as `169.254.169.254`.
 */
export type AddressKind = 'public' | 'private' | 'forbidden';

export interface AddressVerdict {
  kind: AddressKind;
  /** The address as checked (normalised), for logs. */
  address: string;
  /** The range that decided, e.g. "link-local (169.254.0.0/16)"; "public" for public addresses. */
  range: string;
}

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

const cidrs = (list: Record<string, string>): [string, Cidr][] =>
  Object.entries(list).map(([name, cidr]) => [name, ipaddr.parseCIDR(cidr)]);

const FORBIDDEN_V4 = cidrs({
  'link-local / metadata (169.254.0.0/16)': '169.254.0.0/16',
  'cloud metadata (100.100.100.200)': '100.100.100.200/32',
  'multicast (224.0.0.0/4)': '224.0.0.0/4',
  'reserved / broadcast (240.0.0.0/4)': '240.0.0.0/4',
});

const PRIVATE_V4 = cidrs({
  'this network (0.0.0.0/8)': '0.0.0.0/8',
  'private (10.0.0.0/8)': '10.0.0.0/8',
  'carrier-grade NAT (100.64.0.0/10)': '100.64.0.0/10',
  'loopback (127.0.0.0/8)': '127.0.0.0/8',
  'private (172.16.0.0/12)': '172.16.0.0/12',
  'IETF protocol assignments (192.0.0.0/24)': '192.0.0.0/24',
  'private (192.168.0.0/16)': '192.168.0.0/16',
  'benchmarking (198.18.0.0/15)': '198.18.0.0/15',
});

const FORBIDDEN_V6 = cidrs({
  'link-local (fe80::/10)': 'fe80::/10',
  'cloud metadata (fd00:ec2::254)': 'fd00:ec2::254/128',
  'multicast (ff00::/8)': 'ff00::/8',
});

const PRIVATE_V6 = cidrs({
  'unspecified (::)': '::/128',
  'loopback (::1)': '::1/128',
  'unique-local (fc00::/7)': 'fc00::/7',
  'site-local (fec0::/10)': 'fec0::/10',
});

const SEVERITY: Record<AddressKind, number> = { public: 0, private: 1, forbidden: 2 };

/** Classifies one IP address (v4 or v6, any spelling `ipaddr.js` accepts; brackets allowed). */
export function classifyAddress(raw: string): AddressVerdict {
  const text = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
  // Zone ids (fe80::1%eth0) are link-local by construction; isIP refuses them, so does this.
  if (isIP(text) === 0) {
    return { kind: 'forbidden', address: raw, range: 'not an IP address' };
  }
  const parsed = ipaddr.parse(text);
  return parsed.kind() === 'ipv4' ? classifyV4(parsed as ipaddr.IPv4) : classifyV6(parsed as ipaddr.IPv6);
}

/** Whether a client backend may be reached at this address, by the classes alone. */
export function addressAllowed(verdict: AddressVerdict, allowPrivate: boolean): boolean {
  return verdict.kind === 'public' || (verdict.kind === 'private' && allowPrivate);
}

/**
 * How the allowlist entry that admits a client base URL names its host (the origins are equal, so
 * it is the base URL's own host): an IP address literally, `localhost`, or a host name. `null`:
 * no entry admits it (a stored session's URL after the allowlist changed): the classes decide.
 */
export type HostNaming = 'literal' | 'localhost' | 'name' | null;

/**
 * CONTRACT §3's address policy. An entry naming an IP address literally admits that address, even
 * private, loopback, link-local or metadata: the operator named it (a llama.cpp beside the server
 * at `http://127.0.0.1:8080/v1`). An entry naming `localhost` admits the loopback addresses it
 * resolves to, nothing else. A host name is trusted no further than what it resolves to: private
 * and loopback only with `allowPrivate`, link-local and metadata never.
 */
export function addressAdmitted(verdict: AddressVerdict, naming: HostNaming, allowPrivate: boolean): boolean {
  if (naming === 'literal') {
    return true;
  }
  if (naming === 'localhost' && isLoopback(verdict.address)) {
    return true;
  }
  return addressAllowed(verdict, allowPrivate);
}

/** 127.0.0.0/8, ::1, and their IPv4-mapped spelling. */
export function isLoopback(raw: string): boolean {
  const text = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
  if (isIP(text) === 0) {
    return false;
  }
  const parsed = ipaddr.parse(text);
  const address = parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress() ? (parsed as ipaddr.IPv6).toIPv4Address() : parsed;
  return address.range() === 'loopback';
}

/** The IP address a WHATWG-parsed URL host names literally, or null for a host name. */
export function ipLiteral(hostname: string): string | null {
  const text = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return isIP(text) !== 0 ? text : null;
}

function classifyV4(address: ipaddr.IPv4): AddressVerdict {
  const text = address.toString();
  for (const [range, cidr] of FORBIDDEN_V4) {
    if (address.match(cidr)) {
      return { kind: 'forbidden', address: text, range };
    }
  }
  for (const [range, cidr] of PRIVATE_V4) {
    if (address.match(cidr)) {
      return { kind: 'private', address: text, range };
    }
  }
  return { kind: 'public', address: text, range: 'public' };
}

function classifyV6(address: ipaddr.IPv6): AddressVerdict {
  const text = address.toRFC5952String();
  let own: AddressVerdict = { kind: 'public', address: text, range: 'public' };
  const found = [...FORBIDDEN_V6.map((e) => ['forbidden', e] as const), ...PRIVATE_V6.map((e) => ['private', e] as const)].find(
    ([, [, cidr]]) => address.match(cidr as [ipaddr.IPv6, number]),
  );
  if (found) {
    own = { kind: found[0], address: text, range: found[1][0] };
  }
  const embedded = embeddedV4(address);
  if (!embedded) {
    return own;
  }
  const inner = classifyV4(embedded);
  return SEVERITY[inner.kind] > SEVERITY[own.kind]
    ? { kind: inner.kind, address: text, range: `${inner.range}, embedded in ${text}` }
    : own;
}

/** The IPv4 address an IPv6 address carries, for the transition formats that route to it. */
function embeddedV4(address: ipaddr.IPv6): ipaddr.IPv4 | null {
  const p = address.parts;
  const v4 = (hi: number, lo: number): ipaddr.IPv4 => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  const zero = (from: number, to: number): boolean => p.slice(from, to).every((x) => x === 0);
  if (address.isIPv4MappedAddress()) {
    return address.toIPv4Address();
  }
  // IPv4-translated ::ffff:0:a.b.c.d (RFC 2765) and IPv4-compatible ::a.b.c.d (deprecated).
  if ((zero(0, 4) && p[4] === 0xffff && p[5] === 0) || (zero(0, 6) && (p[6] !== 0 || p[7] > 1))) {
    return v4(p[6], p[7]);
  }
  // NAT64: well-known 64:ff9b::/96 and local-use 64:ff9b:1::/48.
  if ((p[0] === 0x64 && p[1] === 0xff9b && zero(2, 6)) || (p[0] === 0x64 && p[1] === 0xff9b && p[2] === 1)) {
    return v4(p[6], p[7]);
  }
  if (p[0] === 0x2002) {
    return v4(p[1], p[2]);
  }
  if (p[0] === 0x2001 && p[1] === 0) {
    // Teredo: the client's address is the last 32 bits, inverted.
    return v4(p[6] ^ 0xffff, p[7] ^ 0xffff);
  }
  return null;
}
