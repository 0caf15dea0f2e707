import { TLSSocket, type TLSSocketOptions } from "node:tls";
import { canonicalHost } from "../policy/host-name.js";
import { HostAllowlist } from "../policy/allowlist.js";
import type { EgressPolicy } from "../policy/egress-policy.js";
import { LeafCertificates } from "../tls/leaf-certificates.js";
import type { CaMaterial } from "../tls/ca.js";
import type {
  Denied,
  FlowSource,
  Upstream,
  UpstreamTcp,
  UpstreamTcpEvents,
  UpstreamUdp,
  UpstreamUdpEvents,
} from "../upstream.js";
import type { ConnectionInfo } from "./admission.js";
import type { HttpPolicy, NetworkEventInfo, ProxyHooks } from "./contract.js";
import { FlowOrigin } from "./flow-origin.js";
import type { GuestStream } from "./guest-stream.js";
import { H2Interceptor } from "./h2-interceptor.js";
import { H2Origins } from "./h2-origins.js";
import { HttpInterceptor } from "./http-interceptor.js";
import { InterceptedFlow, type FlowKind } from "./intercepted-flow.js";
import { relayRaw } from "./raw-relay.js";
import { RequestEvents, type RequestOutcome } from "./request-event.js";
import { SyntheticNames } from "./synthetic-dns.js";
import { HostDialer } from "./upstream-dial.js";
import { RelayBudget } from "./body-relay.js";
import { ByteBudget } from "../byte-budget.js";
import { BODY_BUDGET_BYTES } from "./headers.js";

/**
 * Cleartext buffered toward a guest TLS connection before backpressure. A write into the guest
 * flow completes only on the next turn of the event loop (Node's JS-stream adapter under
 * TLSSocket defers it with setImmediate), so whatever this holds is all a download can move
 * per turn: at 64 KiB the response stream paused and resumed, and the upstream socket stopped
 * and restarted reading, every 64 KiB, with a turn spent waiting each time. 1 MiB (the stack's
 * send buffer per flow) lets a turn carry what the upstream delivered meanwhile: ~10% less
 * proxy CPU per byte (docs/PERFORMANCE.md, "Intercepted HTTPS, session 11"). It is also what a
 * connection whose guest stops reading holds here, outside the stack's budget, besides the
 * upstream socket's 64 KiB read-ahead (and the kernel's socket buffers, larger than either).
 */
const GUEST_TLS_HIGH_WATER_BYTES = 1024 * 1024;

export interface InterceptUpstreamOptions extends ProxyHooks {
  policy: EgressPolicy;
  httpPolicy: HttpPolicy;
  ca: CaMaterial;
  /** Trusted for upstream TLS in addition to the host's store. */
  upstreamCaPems?: string[];
  /** name -> IPv4 for upstream dials, asked before the host resolver. */
  resolveOverrides?: ReadonlyMap<string, string>;
  /** "host:port" globs (allowlist syntax) whose non-HTTP traffic is relayed as raw TCP. */
  rawTcpAllow?: readonly string[];
  onEvent?(e: NetworkEventInfo): void;
  /** Host resolver for upstream dials; default getaddrinfo. */
  resolve4?(name: string): Promise<string[]>;
  connectTimeoutMs?: number;
  /** How long a flow may stay silent before it is judged not HTTP/TLS (default 15 s). */
  sniffTimeoutMs?: number;
  /** The same, for destinations a raw-TCP rule allows (server-speaks-first; default 1 s). */
  rawSniffTimeoutMs?: number;
  /** What the bodies the HTTP policy reads may hold together (default BODY_BUDGET_BYTES). */
  bodyBudgetBytes?: number;
}

/**
 * Intercept mode: every guest TCP flow ends here. HTTP and TLS are recognised by content; TLS
 * is terminated with a per-name certificate from the local CA; each HTTP/1.1 request is
 * checked (Host, SNI, allowlist, HTTP policy) and forwarded from the host, whose resolver and
 * address check decide where it really goes. Other TCP passes only where a raw rule allows it;
 * UDP never (the stack answers DNS itself, from `resolveIpv4`'s synthetic addresses).
 */
export class InterceptUpstream implements Upstream {
  private readonly names = new SyntheticNames();
  private readonly leaves: LeafCertificates;
  private readonly dialer: HostDialer;
  private readonly http: HttpInterceptor;
  private readonly h2: H2Interceptor;
  private readonly origins: H2Origins;
  private readonly rawAllow: HostAllowlist;
  private readonly events: RequestEvents;

  constructor(private readonly opts: InterceptUpstreamOptions) {
    this.events = new RequestEvents(opts.onEvent);
    this.leaves = new LeafCertificates(opts.ca);
    this.dialer = new HostDialer({
      policy: opts.policy,
      ...(opts.resolveOverrides ? { resolveOverrides: opts.resolveOverrides } : {}),
      ...(opts.resolve4 ? { resolve4: opts.resolve4 } : {}),
      ...(opts.upstreamCaPems ? { upstreamCaPems: opts.upstreamCaPems } : {}),
      ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
    });
    const exchange = {
      policy: opts.policy,
      httpPolicy: opts.httpPolicy,
      dialer: this.dialer,
      events: this.events,
      relayBudget: new RelayBudget(),
      bodyBudget: new ByteBudget(opts.bodyBudgetBytes ?? BODY_BUDGET_BYTES),
      ...(opts.onHostRefused ? { onHostRefused: opts.onHostRefused } : {}),
      ...(opts.upstreamHeaders ? { upstreamHeaders: opts.upstreamHeaders } : {}),
    };
    this.http = new HttpInterceptor(exchange);
    this.origins = new H2Origins(this.dialer);
    this.h2 = new H2Interceptor({ ...exchange, origins: this.origins });
    this.rawAllow = new HostAllowlist(opts.rawTcpAllow ?? [], { denyWhenEmpty: true });
  }

  connectTcp(
    dstIp: string,
    dstPort: number,
    events: UpstreamTcpEvents,
    from?: FlowSource,
  ): UpstreamTcp | Denied {
    if (dstPort === 0) return { denied: "port 0" };
    // A synthetic address stands for the name it was handed out for; an unknown one for nothing.
    const name = this.names.isSynthetic(dstIp) ? this.names.nameFor(dstIp) : dstIp;
    if (name === undefined) return { denied: `${dstIp} is not a known synthetic address` };
    const rawAllowed = this.rawAllow.allows(name, dstPort);
    const origin = this.originOf("tcp", from);
    const flow = new InterceptedFlow(
      events,
      rawAllowed ? (this.opts.rawSniffTimeoutMs ?? 1000) : (this.opts.sniffTimeoutMs ?? 15_000),
      (kind, stream) => this.classified(kind, stream, name, dstPort, origin),
    );
    // The guest's handshake completes at once; the protocol is judged from what it sends.
    setImmediate(() => events.onConnect());
    return flow;
  }

  openUdp(
    dstIp: string,
    dstPort: number,
    _events: UpstreamUdpEvents,
    from?: FlowSource,
  ): UpstreamUdp | Denied {
    const host = this.names.nameFor(dstIp) ?? dstIp;
    const reason = "UDP is not relayed in intercept mode";
    this.events
      .start(
        { method: "", url: `udp://${host}:${dstPort}`, scheme: "udp", host, port: dstPort },
        this.originOf("udp", from),
      )
      .finish({ blocked: true, code: "protocol_not_allowed", reason });
    return { denied: reason };
  }

  async resolveIpv4(name: string): Promise<string[]> {
    const canonical = canonicalHost(name);
    if (!canonical.ok) return [];
    if (/^[0-9.]+$/.test(canonical.host)) return [canonical.host];
    return [this.names.addressFor(canonical.host)];
  }

  /** Stops keep-alive connections and idle guest connections (the sandbox is going away). */
  /** Reports the requests still in flight with `outcome` (the sandbox is stopping). */
  endInFlight(outcome: RequestOutcome): void {
    this.events.finishOpen(outcome);
  }

  close(): void {
    this.http.close();
    this.h2.close();
    this.origins.close();
    this.dialer.close();
  }

  private originOf(protocol: "tcp" | "udp", from: FlowSource | undefined): FlowOrigin | undefined {
    const ask = this.opts.origin;
    if (!ask || !from) return undefined;
    const stamp = protocol === "tcp" ? from.stamp : undefined;
    return new FlowOrigin(ask({ protocol, guestPort: from.srcPort, ...(stamp ? { stamp } : {}) }));
  }

  private classified(
    kind: FlowKind,
    stream: GuestStream,
    name: string,
    port: number,
    origin: FlowOrigin | undefined,
  ): void {
    const withOrigin = origin ? { origin } : {};
    const conn: ConnectionInfo = { scheme: "http", port, name, ...withOrigin };
    if (kind.kind === "http") return this.http.accept(stream, conn);
    if (kind.kind === "h2c") return this.h2.accept(stream, conn);
    if (kind.kind === "tls") return this.terminateTls(stream, kind, name, port, origin);
    const event = this.events.start(
      { method: "", url: `tcp://${name}:${port}`, scheme: "tcp", host: name, port },
      origin,
    );
    if (this.rawAllow.allows(name, port)) {
      const refusal = this.opts.refuseRawRelay?.();
      if (refusal === undefined) return void relayRaw(this.dialer, stream, name, port, event);
      event.finish({ blocked: true, code: "budget_exceeded", reason: refusal });
      return void stream.destroy();
    }
    event.finish({
      blocked: true,
      code: "protocol_not_allowed",
      reason: `not HTTP or TLS, and no raw TCP rule allows ${name}:${port}`,
    });
    stream.destroy();
  }

  private terminateTls(
    stream: GuestStream,
    { sni, offersH2 }: { sni: string | undefined; offersH2: boolean },
    name: string,
    port: number,
    origin: FlowOrigin | undefined,
  ) {
    let tlsName = name;
    if (sni !== undefined) {
      const canonical = canonicalHost(sni);
      if (!canonical.ok) {
        this.events
          .start(
            { method: "", url: `https://${name}:${port}/`, scheme: "https", host: name, port },
            origin,
          )
          .finish({
            blocked: true,
            code: "invalid_request",
            reason: `bad SNI: ${canonical.reason}`,
          });
        return void stream.destroy();
      }
      tlsName = canonical.host;
    }
    const conn: ConnectionInfo = {
      scheme: "https",
      port,
      name: tlsName,
      tlsName,
      ...(origin ? { origin } : {}),
    };
    // A client that offers h2 gets it (ALPN), one that does not stays on the HTTP/1.1 path.
    const options: TLSSocketOptions & { highWaterMark: number } = {
      isServer: true,
      secureContext: this.leaves.contextFor(tlsName),
      ALPNProtocols: offersH2 ? ["h2"] : ["http/1.1"],
      requestCert: false,
      highWaterMark: GUEST_TLS_HIGH_WATER_BYTES,
    };
    const tls = new TLSSocket(stream, options);
    tls.once("close", () => stream.destroy());
    if (offersH2) this.h2.accept(tls, conn);
    else this.http.accept(tls, conn);
  }
}
