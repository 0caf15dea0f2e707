/**
 * An Upstream whose flows count their bytes, both directions, for the egress budget and
 * `usage().network.bytes`. It sits between the stack and the real upstream (open mode or the
 * proxy), so it counts the same in both modes: what the guest's TCP and UDP flows carried,
 * headers and TLS included, and the DNS lookups the stack answers for the guest.
 */
import {
  isDenied,
  type Denied,
  type FlowSource,
  type Upstream,
  type UpstreamTcp,
  type UpstreamTcpEvents,
  type UpstreamUdp,
  type UpstreamUdpEvents,
} from "../net/index.js";

/** A DNS message about `name` with `answers` A records: header, question, answers. */
export function dnsMessageBytes(name: string, answers: number): number {
  return 12 + (name.length + 2) + 4 + answers * 16;
}

export function meteredUpstream(inner: Upstream, count: (bytes: number) => void): Upstream {
  return {
    connectTcp(
      dstIp: string,
      dstPort: number,
      events: UpstreamTcpEvents,
      from?: FlowSource,
    ): UpstreamTcp | Denied {
      const counted: UpstreamTcpEvents = {
        onConnect: () => events.onConnect(),
        onData: (chunk) => {
          count(chunk.length);
          events.onData(chunk);
        },
        onEnd: () => events.onEnd(),
        onDrain: () => events.onDrain(),
        onError: (err) => events.onError(err),
      };
      const flow = inner.connectTcp(dstIp, dstPort, counted, from);
      if (isDenied(flow)) return flow;
      return {
        write: (chunk, onFlushed) => {
          count(chunk.length);
          flow.write(chunk, onFlushed);
        },
        end: () => flow.end(),
        destroy: () => flow.destroy(),
        pause: () => flow.pause(),
        resume: () => flow.resume(),
      };
    },
    openUdp(
      dstIp: string,
      dstPort: number,
      events: UpstreamUdpEvents,
      from?: FlowSource,
    ): UpstreamUdp | Denied {
      const counted: UpstreamUdpEvents = {
        onMessage: (payload) => {
          count(payload.length);
          events.onMessage(payload);
        },
        onError: (err) => events.onError(err),
      };
      const flow = inner.openUdp(dstIp, dstPort, counted, from);
      if (isDenied(flow)) return flow;
      return {
        send: (payload) => {
          count(payload.length);
          flow.send(payload);
        },
        close: () => flow.close(),
      };
    },
    // A lookup through the gateway's DNS carries the guest's name out (open mode asks the
    // host's resolvers): it counts like the UDP it stands for, or a guest could move data
    // through names without the egress budget seeing a byte.
    resolveIpv4: async (name) => {
      count(dnsMessageBytes(name, 0));
      const found = await inner.resolveIpv4(name);
      count(dnsMessageBytes(name, found.length));
      return found;
    },
  };
}
