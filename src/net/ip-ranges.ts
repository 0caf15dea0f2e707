import { BlockList, isIPv4, isIPv6 } from "node:net";

/**
 * Private and special-purpose ranges (IANA special-purpose registries) that the guest may not
 * reach unless the user allows private hosts: the host itself, the LAN, cloud metadata, CGNAT.
 * Checked on the address actually dialed, so DNS answers cannot steer around it.
 */
const IPV4_BLOCKED: ReadonlyArray<[string, number]> = [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // RFC 1918
  ["100.64.0.0", 10], // CGNAT (RFC 6598)
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, incl. 169.254.169.254 metadata
  ["172.16.0.0", 12], // RFC 1918
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // TEST-NET-1
  ["192.88.99.0", 24], // 6to4 relay anycast (deprecated)
  ["192.168.0.0", 16], // RFC 1918
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // TEST-NET-2
  ["203.0.113.0", 24], // TEST-NET-3
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, incl. 255.255.255.255 broadcast
];

const IPV6_BLOCKED: ReadonlyArray<[string, number]> = [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["::ffff:0:0", 96], // IPv4-mapped: would reach IPv4 ranges behind a v6 literal
  ["64:ff9b::", 96], // NAT64 well-known prefix
  ["100::", 64], // discard
  ["2001:db8::", 32], // documentation
  ["fc00::", 7], // unique local (ULA)
  ["fe80::", 10], // link-local
  ["ff00::", 8], // multicast
];

// Separate lists: a BlockList also matches IPv4 addresses against IPv6 rules through their
// mapped form, so ::ffff:0:0/96 in a shared list would block every IPv4 address.
const blockedV4 = new BlockList();
for (const [net, prefix] of IPV4_BLOCKED) blockedV4.addSubnet(net, prefix, "ipv4");
const blockedV6 = new BlockList();
for (const [net, prefix] of IPV6_BLOCKED) blockedV6.addSubnet(net, prefix, "ipv6");

/** True for private, special-purpose or unparseable addresses (fail closed). */
export function isPrivateOrSpecialAddress(address: string): boolean {
  if (isIPv4(address)) return blockedV4.check(address, "ipv4");
  if (isIPv6(address)) return blockedV6.check(address, "ipv6");
  return true;
}

const linkLocal = new BlockList();
linkLocal.addSubnet("169.254.0.0", 16, "ipv4");
linkLocal.addSubnet("fe80::", 10, "ipv6");
linkLocal.addAddress("fd00:ec2::254", "ipv6"); // AWS metadata over IPv6

/**
 * Link-local and cloud metadata addresses (169.254.169.254, fd00:ec2::254), in any spelling
 * including IPv4-mapped IPv6: reachable only through an allowlist entry someone wrote.
 */
export function isLinkLocalAddress(address: string): boolean {
  if (isIPv4(address)) return linkLocal.check(address, "ipv4");
  if (!isIPv6(address)) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] !== undefined) return linkLocal.check(mapped[1], "ipv4");
  return linkLocal.check(address, "ipv6");
}
