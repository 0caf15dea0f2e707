/**
 * An Upstream whose flows count their bytes, both directions, for the egress budget and
 * `usage().network.bytes`. It sits between the stack and the real upstream (open mode or the
 * proxy), so it counts the same in both modes: what the guest's TCP and UDP flows carried,
 * headers and TLS included.
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
    resolveIpv4: (name) => inner.resolveIpv4(name),
  };
}
