import { formatIpv4, parseIpv4 } from "../addresses.js";

/** 198.18.0.0/15 (RFC 2544 benchmarking): never routed, so never confused with a real host. */
const BASE = parseIpv4("198.18.0.0") ?? 0;
const SIZE = 1 << 17;

/**
 * The guest's DNS in intercept mode: every name gets a synthetic address from 198.18.0.0/15,
 * stable while it stays in the table, and a flow to that address maps back to the name. No
 * query leaves the host, so names that are never allowed cause no DNS traffic. Addresses are
 * handed out round-robin over the whole range, so an evicted name's old address is reused
 * only after 131 070 other allocations.
 */
export class SyntheticNames {
  private readonly byName = new Map<string, number>();
  private readonly byAddress = new Map<number, string>();
  private next = 1;

  constructor(private readonly maxEntries = 16_384) {}

  /** `name` must be canonical. */
  addressFor(name: string): string {
    const known = this.byName.get(name);
    if (known !== undefined) {
      this.byName.delete(name); // Map order is the LRU order
      this.byName.set(name, known);
      return formatIpv4(known);
    }
    while (this.byName.size >= this.maxEntries) {
      const oldest = this.byName.keys().next().value;
      if (oldest === undefined) break;
      const ip = this.byName.get(oldest);
      this.byName.delete(oldest);
      if (ip !== undefined) this.byAddress.delete(ip);
    }
    let ip = this.allocate();
    while (this.byAddress.has(ip)) ip = this.allocate();
    this.byName.set(name, ip);
    this.byAddress.set(ip, name);
    return formatIpv4(ip);
  }

  /** The name behind a synthetic address; undefined for any other address. */
  nameFor(address: string): string | undefined {
    const ip = parseIpv4(address);
    return ip === undefined ? undefined : this.byAddress.get(ip);
  }

  isSynthetic(address: string): boolean {
    const ip = parseIpv4(address);
    return ip !== undefined && ip - BASE >= 0 && ip - BASE < SIZE;
  }

  private allocate(): number {
    const offset = this.next;
    // Skip .0 and .255 style edges of the range: .0 network, last broadcast.
    this.next = this.next + 1 >= SIZE - 1 ? 1 : this.next + 1;
    return (BASE + offset) >>> 0;
  }
}
