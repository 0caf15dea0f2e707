import { createSocket } from "node:dgram";
import { promises as dnsPromises } from "node:dns";
import { Socket, isIPv4 } from "node:net";
import { EgressPolicy } from "./policy/egress-policy.js";
import type {
  Denied,
  Upstream,
  UpstreamTcp,
  UpstreamTcpEvents,
  UpstreamUdp,
  UpstreamUdpEvents,
} from "./upstream.js";

export interface OpenUpstreamOptions {
  /** Let the guest reach private and special-purpose addresses (the host's loopback included). */
  allowPrivateHosts?: boolean;
  /** name -> IPv4 answered to the guest's DNS before the host resolver is asked. */
  resolveOverrides?: ReadonlyMap<string, string>;
  /** Host resolver; default getaddrinfo (`dns.promises.lookup`), so /etc/hosts applies. */
  resolve4?: (name: string) => Promise<string[]>;
  connectTimeoutMs?: number;
}

/**
 * Open mode: no host allowlist, every public IPv4 destination is dialed directly; private and
 * special-purpose ranges are refused unless allowed. The check is on the literal address
 * dialed (the guest chose it), so there is no resolution step to race.
 */
export class OpenUpstream implements Upstream {
  private readonly overrides: ReadonlyMap<string, string>;
  /** Only its dialed-address check applies in open mode (no allowlist). */
  private readonly policy: EgressPolicy;

  constructor(private readonly opts: OpenUpstreamOptions = {}) {
    this.policy = new EgressPolicy({ allowPrivateHosts: opts.allowPrivateHosts ?? false });
    const lowered = new Map<string, string>();
    for (const [name, ip] of opts.resolveOverrides ?? []) lowered.set(name.toLowerCase(), ip);
    this.overrides = lowered;
  }

  private check(ip: string): Denied | undefined {
    if (!isIPv4(ip)) return { denied: "not an IPv4 address" };
    const decision = this.policy.checkDialAddress(ip);
    return decision.allowed ? undefined : { denied: decision.reason };
  }

  connectTcp(ip: string, port: number, events: UpstreamTcpEvents): UpstreamTcp | Denied {
    const denied = this.check(ip);
    if (denied) return denied;
    if (port === 0) return { denied: "port 0" };
    // Half-open: the remote finishing its side must not end ours while the guest still sends.
    const socket = new Socket({ allowHalfOpen: true });
    socket.setNoDelay(true);
    let done = false;
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      events.onError(err);
    };
    const timer = setTimeout(
      () => socket.destroy(new Error("connect timed out")),
      this.opts.connectTimeoutMs ?? 30_000,
    );
    socket.once("connect", () => {
      clearTimeout(timer);
      events.onConnect();
    });
    socket.on("data", (chunk: Buffer) => events.onData(chunk));
    socket.on("end", () => {
      if (!done) events.onEnd();
    });
    socket.on("drain", () => events.onDrain());
    socket.on("error", (err) => fail(err));
    socket.on("close", () => {
      clearTimeout(timer);
      // A close after a clean end is normal; any other close is a reset from the guest's view.
      if (!socket.readableEnded) fail(new Error("connection closed"));
      done = true;
    });
    socket.connect({ host: ip, port, family: 4 });
    return {
      write: (chunk, onFlushed) => {
        if (socket.destroyed) onFlushed();
        else socket.write(chunk, () => onFlushed());
      },
      end: () => {
        if (!socket.destroyed) socket.end();
      },
      destroy: () => {
        done = true;
        socket.destroy();
      },
      pause: () => socket.pause(),
      resume: () => socket.resume(),
    };
  }

  openUdp(ip: string, port: number, events: UpstreamUdpEvents): UpstreamUdp | Denied {
    const denied = this.check(ip);
    if (denied) return denied;
    if (port === 0) return { denied: "port 0" };
    const socket = createSocket("udp4");
    socket.on("message", (msg) => events.onMessage(msg));
    socket.on("error", (err) => events.onError(err));
    socket.connect(port, ip);
    let connected = false;
    const queued: Buffer[] = [];
    socket.once("connect", () => {
      connected = true;
      for (const p of queued.splice(0)) socket.send(p);
    });
    return {
      send: (payload) => {
        if (connected) socket.send(payload);
        else if (queued.length < 16) queued.push(payload);
      },
      close: () => {
        try {
          socket.close();
        } catch {
          // already closed after an error
        }
      },
    };
  }

  async resolveIpv4(name: string): Promise<string[]> {
    const override = this.overrides.get(name.toLowerCase());
    if (override !== undefined) return [override];
    const resolve4 =
      this.opts.resolve4 ??
      (async (n: string) =>
        (await dnsPromises.lookup(n, { family: 4, all: true })).map((a) => a.address));
    try {
      return await resolve4(name);
    } catch {
      return [];
    }
  }
}
