import { promises as dnsPromises, type LookupAddress, type LookupOptions } from "node:dns";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { isIPv4, type LookupFunction } from "node:net";
import { createSecureContext, type SecureContext } from "node:tls";
import type { EgressPolicy } from "../policy/egress-policy.js";
import { aes128First } from "../tls/cipher-preference.js";
import { upstreamTrustAnchors } from "../tls/host-trust.js";
import type { NetworkBlockCode } from "./contract.js";

/** A dial that policy refused after resolution (the address, not the name, was refused). */
export class DialRefused extends Error {
  constructor(
    readonly code: NetworkBlockCode,
    reason: string,
  ) {
    super(reason);
  }
}

export interface HostDialerOptions {
  policy: EgressPolicy;
  /** name -> IPv4, asked before the host resolver. */
  resolveOverrides?: ReadonlyMap<string, string>;
  resolve4?(name: string): Promise<string[]>;
  /** Added to the trust store for upstream TLS (Node's roots plus the host's system bundle). */
  upstreamCaPems?: readonly string[];
  connectTimeoutMs?: number;
}

export const UPSTREAM_HIGH_WATER_BYTES = 64 * 1024;

async function systemResolve4(name: string): Promise<string[]> {
  return (await dnsPromises.lookup(name, { family: 4, all: true })).map((a) => a.address);
}

/**
 * How the proxy reaches real hosts: names are resolved here on the host (overrides first), and
 * the address a socket is about to connect to is checked by `lookup` itself, so what was
 * checked is what is connected to (no DNS-rebinding window). Keep-alive agents reuse
 * connections per host; each new one goes through the same lookup.
 */
export class HostDialer {
  readonly httpAgent: HttpAgent;
  readonly httpsAgent: HttpsAgent;
  readonly lookup: LookupFunction;
  readonly connectTimeoutMs: number;
  /** Trust anchors for upstream TLS (the agents' and the HTTP/2 sessions'). */
  readonly upstreamTls: SecureContext;
  private readonly overrides = new Map<string, string>();

  constructor(private readonly opts: HostDialerOptions) {
    for (const [name, ip] of opts.resolveOverrides ?? [])
      this.overrides.set(name.toLowerCase(), ip);
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 30_000;
    this.lookup = (hostname, options, callback) => {
      this.resolveChecked(hostname).then(
        (address) => {
          if ((options as LookupOptions).all) {
            const all: LookupAddress[] = [{ address, family: 4 }];
            (callback as (e: null, a: LookupAddress[]) => void)(null, all);
          } else callback(null, address, 4);
        },
        (err: Error) => callback(err as NodeJS.ErrnoException, "", 4),
      );
    };
    const agentOptions = {
      keepAlive: true,
      maxFreeSockets: 16,
      scheduling: "lifo" as const,
      // Per upstream socket, read ahead of the guest: Node's 16 KiB default stalls a download
      // once per TLS record (bench/intercept.ts).
      highWaterMark: UPSTREAM_HIGH_WATER_BYTES,
    };
    // One context built here: a `ca` list would be parsed again for every new upstream
    // connection (~145 roots, ~50 ms under load), a context is reused as is. The suites are
    // Node's, AES-128-GCM offered first (a server that follows the client's order picks it).
    this.upstreamTls = createSecureContext({
      ca: upstreamTrustAnchors(opts.upstreamCaPems),
      ciphers: aes128First(),
    });
    this.httpAgent = new HttpAgent(agentOptions);
    this.httpsAgent = new HttpsAgent({ ...agentOptions, secureContext: this.upstreamTls });
  }

  /** The first IPv4 address for `name`, refused unless policy allows dialing it. */
  async resolveChecked(name: string): Promise<string> {
    const address = await this.resolveName(name);
    this.checkAddress(address, name);
    return address;
  }

  /**
   * The address a dial to `name` would go to, known without asking DNS: a resolve override or
   * an IP literal. What a person deciding about a refused name is shown. No DNS query is made
   * for it: the name is the guest's choice and not allowed yet, and a lookup would carry
   * whatever the guest wrote into it to the name's authoritative server (docs/SECURITY.md,
   * "DNS exfiltration"). Undefined otherwise.
   */
  knownAddressOf(name: string): string | undefined {
    const override = this.overrides.get(name.toLowerCase());
    if (override !== undefined) return override;
    return isIPv4(name) ? name : undefined;
  }

  private async resolveName(name: string): Promise<string> {
    const known = this.knownAddressOf(name);
    if (known !== undefined) return known;
    let addresses: string[];
    try {
      addresses = await (this.opts.resolve4 ?? systemResolve4)(name);
    } catch (err) {
      throw new Error(`cannot resolve ${name}: ${(err as Error).message}`);
    }
    const address = addresses.find((a) => isIPv4(a));
    if (address === undefined) throw new Error(`cannot resolve ${name}: no IPv4 address`);
    return address;
  }

  /** The override for an IPv4 literal (the gateway address stands for host loopback), if any. */
  literalOverride(host: string): string | undefined {
    return isIPv4(host) ? this.overrides.get(host) : undefined;
  }

  /** Throws DialRefused for an address policy does not let the proxy connect to. */
  checkAddress(address: string, name: string = address): void {
    const decision = this.opts.policy.checkDialAddress(address, name);
    if (!decision.allowed) throw new DialRefused("private_address", decision.reason);
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
