import { parseIpv4 } from "./addresses.js";
import {
  DNS_TYPE_A,
  RCODE_NOTIMP,
  RCODE_NXDOMAIN,
  RCODE_OK,
  RCODE_SERVFAIL,
  buildDnsResponse,
  isInternetClass,
  parseDnsQuery,
} from "./dns-message.js";

/** Queries being resolved at once; more are dropped (the guest's resolver retries). */
const MAX_IN_FLIGHT = 64;

export interface DnsResponderOptions {
  resolveIpv4(name: string): Promise<string[]>;
  /** Maps a host address to what the guest should see (host loopback becomes the gateway). */
  toGuestAddress(ip: number): number;
}

/**
 * Answers the guest's DNS queries with the host's resolver. Only A queries get records: the
 * guest network is IPv4-only, so AAAA and the rest answer empty (NODATA) or NOTIMP, which makes
 * resolvers fall back to A quickly instead of timing out.
 */
export class DnsResponder {
  private inFlight = 0;

  constructor(private readonly opts: DnsResponderOptions) {}

  /** The reply for one UDP payload, or undefined when the message deserves no answer. */
  async answer(message: Buffer): Promise<Buffer | undefined> {
    const parsed = parseDnsQuery(message);
    if (!parsed.ok) {
      if (parsed.id === undefined) return undefined;
      return buildDnsResponse(
        { id: parsed.id, recursionDesired: false, questionBytes: Buffer.alloc(0) },
        parsed.rcode,
      );
    }
    const q = parsed.question;
    if (!isInternetClass(q)) return buildDnsResponse(q, RCODE_NOTIMP);
    if (q.type !== DNS_TYPE_A) return buildDnsResponse(q, RCODE_OK);
    if (q.name === "") return buildDnsResponse(q, RCODE_NXDOMAIN);
    if (this.inFlight >= MAX_IN_FLIGHT) return undefined;
    this.inFlight++;
    try {
      const found = await this.opts.resolveIpv4(q.name);
      const ips = found
        .map((a) => parseIpv4(a))
        .filter((ip): ip is number => ip !== undefined)
        .map((ip) => this.opts.toGuestAddress(ip));
      return buildDnsResponse(q, ips.length > 0 ? RCODE_OK : RCODE_NXDOMAIN, ips);
    } catch {
      return buildDnsResponse(q, RCODE_SERVFAIL);
    } finally {
      this.inFlight--;
    }
  }
}
