import { defaultAddressing, formatIpv4, type LinkAddressing } from "./addresses.js";
import { buildArpReply, parseArpRequest } from "./arp.js";
import { ByteBudget } from "./byte-budget.js";
import { DnsResponder } from "./dns-responder.js";
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, parseEthernet } from "./ethernet.js";
import { buildEchoReply } from "./icmp.js";
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP, parseIpv4Packet } from "./ipv4.js";
import { TcpConnection, DEFAULT_TCP_TUNING, type TcpTuning } from "./tcp-connection.js";
import {
  TCP_ACK,
  TCP_RST,
  TCP_SYN,
  buildTcpFrame,
  seqAdd,
  type TcpSegment,
} from "./tcp-segment.js";
import { parseTcp } from "./tcp-segment.js";
import { DEFAULT_UDP_LIMITS, UdpFlows, type UdpFlowLimits } from "./udp-flows.js";
import { buildUdpFrame, parseUdp } from "./udp.js";
import { isDenied, type Upstream } from "./upstream.js";

const HOST_LOOPBACK = (127 << 24) >>> 0;
const DNS_PORT = 53;

export interface NetworkStackOptions {
  upstream: Upstream;
  /** Hands a frame to the guest link. */
  sendFrame(frame: Buffer): void;
  /** False while the link is congested; call `linkDrained()` when it is not. */
  linkWritable?(): boolean;
  addressing?: LinkAddressing;
  tcp?: Partial<TcpTuning>;
  maxTcpFlows?: number;
  /** Bytes buffered for all TCP flows together (default 64 MiB). */
  bufferBudgetBytes?: number;
  udp?: Partial<UdpFlowLimits>;
}

export interface NetworkStackStats {
  framesIn: number;
  framesDropped: number;
  tcpFlows: number;
  /** Bytes held for TCP flows (both directions), bounded by the buffer budget. */
  bufferedBytes: number;
  udpFlows: number;
  tcpDenied: number;
  udpDenied: number;
}

/**
 * The host end of the guest's Ethernet link: answers ARP, ping and DNS for the gateway, and
 * terminates the guest's TCP and UDP flows, relaying them through `upstream`. Every frame is
 * hostile input: malformed ones are counted and dropped, never thrown.
 *
 * The gateway address doubles as "the host": a flow to it is dialed on host loopback (which
 * policy blocks unless private hosts are allowed), and DNS answers naming host loopback are
 * rewritten to it, since 127.0.0.1 inside the guest is the guest itself.
 */
export class NetworkStack {
  readonly addressing: LinkAddressing;
  private readonly tuning: TcpTuning;
  private readonly maxTcpFlows: number;
  private readonly tcpFlows = new Map<string, TcpConnection>();
  private readonly udpFlows: UdpFlows;
  private readonly dns: DnsResponder;
  private readonly budget: ByteBudget;
  private guestMac: Buffer | undefined;
  private closed = false;
  private readonly counters = { framesIn: 0, framesDropped: 0, tcpDenied: 0 };

  constructor(private readonly opts: NetworkStackOptions) {
    this.addressing = opts.addressing ?? defaultAddressing();
    this.tuning = {
      ...DEFAULT_TCP_TUNING,
      maxSegmentBytes: this.addressing.mtuBytes - 40,
      ...opts.tcp,
    };
    this.maxTcpFlows = opts.maxTcpFlows ?? 1024;
    this.budget = new ByteBudget(opts.bufferBudgetBytes ?? 64 * 1024 * 1024, () => {
      for (const flow of this.tcpFlows.values()) flow.onBudgetFreed();
    });
    this.udpFlows = new UdpFlows(
      opts.upstream,
      { ...DEFAULT_UDP_LIMITS, ...opts.udp },
      (srcIp, srcPort, guestPort, payload) => this.sendUdp(srcIp, srcPort, guestPort, payload),
    );
    this.dns = new DnsResponder({
      resolveIpv4: (name) => opts.upstream.resolveIpv4(name),
      toGuestAddress: (ip) => (ip >>> 24 === 127 ? this.addressing.gatewayIp : ip),
    });
  }

  get stats(): NetworkStackStats {
    return {
      ...this.counters,
      tcpFlows: this.tcpFlows.size,
      bufferedBytes: this.budget.used,
      udpFlows: this.udpFlows.size,
      udpDenied: this.udpFlows.denied,
    };
  }

  /** One Ethernet frame from the guest. Never throws. */
  handleFrame(frame: Buffer): void {
    if (this.closed) return;
    this.counters.framesIn++;
    try {
      if (!this.dispatch(frame)) this.counters.framesDropped++;
    } catch {
      // A bug in a parser must cost one frame, not the host process.
      this.counters.framesDropped++;
    }
  }

  /** The link can take frames again: let flows that stopped for it continue. */
  linkDrained(): void {
    for (const flow of this.tcpFlows.values()) flow.pump();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const flow of [...this.tcpFlows.values()]) flow.abort();
    this.tcpFlows.clear();
    this.udpFlows.close();
  }

  private dispatch(frame: Buffer): boolean {
    const eth = parseEthernet(frame);
    if (!eth) return false;
    if (eth.etherType === ETHERTYPE_ARP) return this.handleArp(eth.payload);
    if (eth.etherType !== ETHERTYPE_IPV4) return false;
    const parsed = parseIpv4Packet(eth.payload);
    if (!parsed.ok) return false;
    const ip = parsed.packet;
    // The guest may only speak from its own address: no spoofed flows.
    if (ip.srcIp !== this.addressing.guestIp) return false;
    this.guestMac = Buffer.from(eth.srcMac);
    if (ip.protocol === PROTO_TCP) {
      const seg = parseTcp(ip.payload, ip.srcIp, ip.dstIp);
      if (!seg) return false;
      this.handleTcp(ip.dstIp, seg);
      return true;
    }
    if (ip.protocol === PROTO_UDP) {
      const dgram = parseUdp(ip.payload, ip.srcIp, ip.dstIp);
      if (!dgram) return false;
      return this.handleUdp(ip.dstIp, dgram.srcPort, dgram.dstPort, dgram.payload);
    }
    if (ip.protocol === PROTO_ICMP && ip.dstIp === this.addressing.gatewayIp) {
      const reply = buildEchoReply(ip.payload, this.header(ip.dstIp));
      if (!reply) return false;
      this.opts.sendFrame(reply);
      return true;
    }
    return false;
  }

  private handleArp(payload: Buffer): boolean {
    const req = parseArpRequest(payload);
    if (!req || req.targetIp !== this.addressing.gatewayIp) return false;
    this.opts.sendFrame(buildArpReply(req, this.addressing.gatewayMac, this.addressing.gatewayIp));
    return true;
  }

  private header(srcIp: number) {
    return {
      dstMac: this.guestMac ?? Buffer.alloc(6, 0xff),
      srcMac: this.addressing.gatewayMac,
      srcIp,
      dstIp: this.addressing.guestIp,
    };
  }

  /** The address the host dials for a guest destination. */
  private dialAddress(dstIp: number): string {
    return formatIpv4(dstIp === this.addressing.gatewayIp ? HOST_LOOPBACK + 1 : dstIp);
  }

  // ---- UDP ----

  private handleUdp(dstIp: number, srcPort: number, dstPort: number, payload: Buffer): boolean {
    if (dstIp === this.addressing.gatewayIp && dstPort === DNS_PORT) {
      void this.dns.answer(payload).then((reply) => {
        if (reply && !this.closed) this.sendUdp(dstIp, DNS_PORT, srcPort, reply);
      });
      return true;
    }
    this.udpFlows.send(srcPort, dstIp, this.dialAddress(dstIp), dstPort, payload);
    return true;
  }

  private sendUdp(srcIp: number, srcPort: number, guestPort: number, payload: Buffer): void {
    if (this.closed) return;
    // Replies larger than the link can carry, or arriving while it is congested, are dropped
    // as a router would: UDP senders expect loss, and the host must not queue for them.
    if (payload.length > this.addressing.mtuBytes - 28) return;
    if (this.opts.linkWritable && !this.opts.linkWritable()) return;
    this.opts.sendFrame(buildUdpFrame(this.header(srcIp), srcPort, guestPort, payload));
  }

  // ---- TCP ----

  private handleTcp(dstIp: number, seg: TcpSegment): void {
    const key = `${seg.srcPort}|${dstIp}|${seg.dstPort}`;
    const existing = this.tcpFlows.get(key);
    if (existing) {
      existing.handleSegment(seg);
      return;
    }
    if (seg.flags & TCP_RST) return;
    const isOpen = (seg.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN;
    if (!isOpen || this.tcpFlows.size >= this.maxTcpFlows) {
      this.resetUnknown(dstIp, seg);
      return;
    }
    const conn = new TcpConnection(seg, this.tuning, {
      budget: this.budget,
      emit: (out) => {
        if (this.closed) return;
        out.srcPort = seg.dstPort;
        out.dstPort = seg.srcPort;
        this.opts.sendFrame(buildTcpFrame(this.header(dstIp), out));
      },
      linkWritable: () => this.opts.linkWritable?.() ?? true,
      onClosed: () => {
        if (this.tcpFlows.get(key) === conn) this.tcpFlows.delete(key);
      },
    });
    this.tcpFlows.set(key, conn);
    // The SYN that made the flow says who opened it; later SYNs on this 4-tuple go to the flow
    // above and never change that.
    const upstream = this.opts.upstream.connectTcp(this.dialAddress(dstIp), seg.dstPort, conn, {
      srcPort: seg.srcPort,
      ...(seg.stamp ? { stamp: seg.stamp } : {}),
    });
    if (isDenied(upstream)) {
      this.counters.tcpDenied++;
      conn.onError();
      return;
    }
    conn.attach(upstream);
  }

  /** RFC 793 reset for a segment that belongs to no flow. */
  private resetUnknown(dstIp: number, seg: TcpSegment): void {
    const h = this.header(dstIp);
    const base = { srcPort: seg.dstPort, dstPort: seg.srcPort, window: 0 };
    const frame =
      seg.flags & TCP_ACK
        ? buildTcpFrame(h, { ...base, seq: seg.ack, ack: 0, flags: TCP_RST })
        : buildTcpFrame(h, {
            ...base,
            seq: 0,
            ack: seqAdd(seg.seq, seg.payload.length + (seg.flags & TCP_SYN ? 1 : 0)),
            flags: TCP_RST | TCP_ACK,
          });
    this.opts.sendFrame(frame);
  }
}
