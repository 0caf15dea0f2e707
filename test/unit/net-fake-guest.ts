/**
 * The guest side of the virtual link for unit tests: builds the frames a guest kernel would
 * send and decodes what the stack sends back. No VM involved.
 */
import { defaultAddressing, parseIpv4 } from "../../src/net/addresses.js";
import { parseEthernet } from "../../src/net/ethernet.js";
import { parseIpv4Packet, PROTO_TCP, PROTO_UDP } from "../../src/net/ipv4.js";
import { NetworkStack, type NetworkStackOptions } from "../../src/net/stack.js";
import {
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  buildTcpFrame,
  parseTcp,
  seqAdd,
  seqDiff,
  type TcpOutSegment,
  type TcpSegment,
} from "../../src/net/tcp-segment.js";
import { buildUdpFrame, parseUdp } from "../../src/net/udp.js";
import type {
  Denied,
  FlowSource,
  Upstream,
  UpstreamTcp,
  UpstreamTcpEvents,
  UpstreamUdp,
  UpstreamUdpEvents,
} from "../../src/net/upstream.js";

export const addressing = defaultAddressing();
export const GUEST_MAC = Buffer.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
export const PUBLIC_IP = parseIpv4("93.184.216.34") ?? 0;

export function guestHeader(dstIp: number) {
  return {
    srcMac: GUEST_MAC,
    dstMac: addressing.gatewayMac,
    srcIp: addressing.guestIp,
    dstIp,
  };
}

export function guestTcp(dstIp: number, seg: TcpOutSegment): Buffer {
  return buildTcpFrame(guestHeader(dstIp), seg);
}

export function guestUdp(dstIp: number, srcPort: number, dstPort: number, payload: Buffer) {
  return buildUdpFrame(guestHeader(dstIp), srcPort, dstPort, payload);
}

export interface Received {
  frame: Buffer;
  srcIp: number;
  tcp?: TcpSegment;
  udp?: { srcPort: number; dstPort: number; payload: Buffer };
}

export function decode(frame: Buffer): Received {
  const eth = parseEthernet(frame);
  if (!eth) throw new Error("bad ethernet frame from the stack");
  const ip = parseIpv4Packet(eth.payload);
  if (!ip.ok) return { frame, srcIp: 0 };
  const r: Received = { frame, srcIp: ip.packet.srcIp };
  if (ip.packet.protocol === PROTO_TCP) {
    const tcp = parseTcp(ip.packet.payload, ip.packet.srcIp, ip.packet.dstIp);
    if (!tcp) throw new Error("bad TCP checksum from the stack");
    r.tcp = tcp;
  }
  if (ip.packet.protocol === PROTO_UDP) {
    const udp = parseUdp(ip.packet.payload, ip.packet.srcIp, ip.packet.dstIp);
    if (!udp) throw new Error("bad UDP checksum from the stack");
    r.udp = udp;
  }
  return r;
}

export class FakeTcp implements UpstreamTcp {
  written: Buffer[] = [];
  ended = false;
  destroyed = false;
  paused = false;
  constructor(
    readonly ip: string,
    readonly port: number,
    readonly events: UpstreamTcpEvents,
    /** Where the stack said the flow came from (its port, its SYN's stamp). */
    readonly from?: FlowSource,
  ) {}
  flushers: (() => void)[] = [];
  write(chunk: Buffer, onFlushed: () => void): void {
    this.written.push(Buffer.from(chunk));
    this.flushers.push(onFlushed);
  }
  /** Pretends the kernel took everything written so far. */
  flush(): void {
    for (const f of this.flushers.splice(0)) f();
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  get writtenText(): string {
    return Buffer.concat(this.written).toString();
  }
}

export class FakeUpstream implements Upstream {
  tcp: FakeTcp[] = [];
  udp: { ip: string; port: number; sent: Buffer[]; events: UpstreamUdpEvents }[] = [];
  deny = false;
  names = new Map<string, string[]>();
  connectTcp(
    ip: string,
    port: number,
    events: UpstreamTcpEvents,
    from?: FlowSource,
  ): UpstreamTcp | Denied {
    if (this.deny) return { denied: "test" };
    const c = new FakeTcp(ip, port, events, from);
    this.tcp.push(c);
    return c;
  }
  openUdp(ip: string, port: number, events: UpstreamUdpEvents): UpstreamUdp | Denied {
    if (this.deny) return { denied: "test" };
    const entry = { ip, port, sent: [] as Buffer[], events };
    this.udp.push(entry);
    return { send: (p) => entry.sent.push(Buffer.from(p)), close: () => undefined };
  }
  async resolveIpv4(name: string): Promise<string[]> {
    return this.names.get(name) ?? [];
  }
}

export function makeStack(extra: Partial<NetworkStackOptions> = {}) {
  const upstream = new FakeUpstream();
  const out: Buffer[] = [];
  const stack = new NetworkStack({
    upstream,
    sendFrame: (f) => out.push(Buffer.from(f)),
    ...extra,
  });
  const take = (): Received[] => out.splice(0).map(decode);
  return { stack, upstream, out, take };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A minimal guest TCP client: connects, sends `request`, reads to FIN, acks everything. */
export function guestFetch(
  stack: NetworkStack,
  inbox: { deliver?: (s: TcpSegment) => void },
  port: number,
  request: Buffer,
  /** Send the request only after the remote has finished sending (half-close). */
  requestAfterRemoteFin = false,
  /** Where the guest connects: the gateway (host loopback) unless told otherwise. */
  dstIp = addressing.gatewayIp,
) {
  return new Promise<{ data: Buffer; reset: boolean }>((resolve) => {
    const GUEST_PORT = 50000;
    const chunks: Buffer[] = [];
    let rcvNxt = 0;
    let seq = 7000;
    const send = (flags: number, payload?: Buffer) =>
      stack.handleFrame(
        guestTcp(dstIp, {
          srcPort: GUEST_PORT,
          dstPort: port,
          seq,
          ack: rcvNxt,
          flags,
          window: 0xffff,
          ...(flags & TCP_SYN ? { mss: 65480, windowScale: 7 } : {}),
          ...(payload ? { payload } : {}),
        }),
      );
    inbox.deliver = (s) => {
      if (s.flags & TCP_RST) return resolve({ data: Buffer.concat(chunks), reset: true });
      if (s.flags & TCP_SYN) {
        rcvNxt = seqAdd(s.seq, 1);
        seq = seqAdd(seq, 1);
        send(TCP_ACK);
        if (!requestAfterRemoteFin) {
          send(TCP_ACK, request);
          seq = seqAdd(seq, request.length);
        }
        return;
      }
      if (s.payload.length > 0 && seqDiff(s.seq, rcvNxt) === 0) {
        chunks.push(Buffer.from(s.payload));
        rcvNxt = seqAdd(rcvNxt, s.payload.length);
      }
      if (s.flags & TCP_FIN && seqDiff(seqAdd(s.seq, s.payload.length), rcvNxt) === 0) {
        rcvNxt = seqAdd(rcvNxt, 1);
        if (requestAfterRemoteFin) {
          send(TCP_ACK, request);
          seq = seqAdd(seq, request.length);
        }
        send(TCP_ACK | TCP_FIN);
        seq = seqAdd(seq, 1);
        return resolve({ data: Buffer.concat(chunks), reset: false });
      }
      if (s.payload.length > 0) send(TCP_ACK);
    };
    send(TCP_SYN);
    seq = 7000;
  });
}
