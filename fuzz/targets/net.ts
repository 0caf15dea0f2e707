/**
 * The guest's Ethernet link: QEMU's length-prefixed stream (FrameDecoder) into the userspace
 * stack (Ethernet, ARP, IPv4, ICMP, UDP, TCP, the DNS responder), with an upstream that
 * accepts every dial and echoes. Oracles: the stack's catch-all (which turns a parser bug into
 * a dropped frame in production) never fires; every frame it sends parses with valid
 * checksums and fits the MTU; flow count and buffered bytes stay within their limits; close()
 * leaves no flow and no buffered byte.
 */
import { defaultAddressing } from "../../src/net/addresses.js";
import { buildArpRequest } from "../../src/net/arp.js";
import { DNS_TYPE_A, DNS_TYPE_AAAA, buildDnsQuery } from "../../src/net/dns-message.js";
import { parseEthernet, ETHERTYPE_ARP } from "../../src/net/ethernet.js";
import { encodeFrame, FrameDecoder } from "../../src/net/frame-codec.js";
import {
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  allocIpv4Frame,
  parseIpv4Packet,
  IPV4_PAYLOAD_OFFSET,
} from "../../src/net/ipv4.js";
import { internetChecksum } from "../../src/net/checksum.js";
import { NetworkStack } from "../../src/net/stack.js";
import {
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  buildTcpFrame,
  parseTcp,
  type TcpOutSegment,
} from "../../src/net/tcp-segment.js";
import { buildUdpFrame, parseUdp } from "../../src/net/udp.js";
import type {
  Upstream,
  UpstreamTcp,
  UpstreamTcpEvents,
  UpstreamUdp,
  UpstreamUdpEvents,
} from "../../src/net/upstream.js";
import { Random, chunked, hashBytes } from "../random.js";
import { check, splitByLength, type FuzzTarget, type UnitCodec } from "../target.js";
import { absoluteAck, fixChecksums, noteIss } from "./net-frames.js";

const addressing = defaultAddressing();
const GUEST_MAC = Buffer.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const PUBLIC_IP = 0x5db8d822; // 93.184.216.34
const MAX_FLOWS = 16;
const BUDGET_BYTES = 1 << 20;
/** Bytes an echo upstream sends back for a request that asks for "BIG". */
const BIG_REPLY_BYTES = 300_000;

const guest = (dstIp: number) => ({
  srcMac: GUEST_MAC,
  dstMac: addressing.gatewayMac,
  srcIp: addressing.guestIp,
  dstIp,
});
const tcp = (dstIp: number, s: TcpOutSegment): Buffer => buildTcpFrame(guest(dstIp), s);

function ping(): Buffer {
  const icmp = Buffer.from([8, 0, 0, 0, 0, 1, 0, 1, 0x61, 0x62]);
  icmp.writeUInt16BE(internetChecksum(icmp), 2);
  const frame = allocIpv4Frame(
    { ...guest(addressing.gatewayIp), protocol: PROTO_ICMP },
    icmp.length,
  );
  icmp.copy(frame, IPV4_PAYLOAD_OFFSET);
  return frame;
}

/** A conversation: ARP, ping, DNS, UDP, and a TCP flow with data both ways (acks relative). */
function conversation(dstIp: number, port: number, request: string): Buffer[] {
  const base = { srcPort: 40000 + port, dstPort: port, window: 0xffff };
  const req = Buffer.from(request);
  return [
    buildArpRequest(GUEST_MAC, addressing.guestIp, addressing.gatewayIp),
    ping(),
    buildUdpFrame(
      guest(addressing.gatewayIp),
      5353,
      53,
      buildDnsQuery(7, "example.com", DNS_TYPE_A),
    ),
    buildUdpFrame(
      guest(addressing.gatewayIp),
      5354,
      53,
      buildDnsQuery(8, "localhost", DNS_TYPE_AAAA),
    ),
    buildUdpFrame(guest(PUBLIC_IP), 5355, 9, Buffer.from("udp")),
    tcp(dstIp, { ...base, seq: 1000, ack: 0, flags: TCP_SYN, mss: 1400, windowScale: 7 }),
    tcp(dstIp, { ...base, seq: 1001, ack: 0, flags: TCP_ACK }),
    tcp(dstIp, { ...base, seq: 1001, ack: 0, flags: TCP_ACK | TCP_PSH, payload: req }),
    tcp(dstIp, { ...base, seq: 1001 + req.length, ack: req.length, flags: TCP_ACK }),
    tcp(dstIp, { ...base, seq: 1001 + req.length, ack: req.length, flags: TCP_ACK | TCP_FIN }),
    tcp(dstIp, { ...base, seq: 1002 + req.length, ack: req.length + 1, flags: TCP_ACK }),
    tcp(dstIp, { ...base, seq: 1002 + req.length, ack: 0, flags: TCP_RST }),
  ];
}

export const netUnits: UnitCodec = {
  split: (input) => splitByLength(input, 4, (b, at) => 4 + b.readUInt32BE(at)),
  fix: (unit) => {
    if (unit.length < 4) return unit;
    return encodeFrame(fixChecksums(unit.subarray(4)));
  },
};

/**
 * The host side of every flow: echoes what the guest sends (300 KB for a request with "BIG"),
 * and — at points the input's hash picks — holds writes unflushed, resets, or half-closes,
 * as real upstreams do. Paused flows get no data until resumed.
 */
class EchoTcp implements UpstreamTcp {
  paused = false;
  private held: Buffer[] = [];
  private unflushed: (() => void)[] = [];
  constructor(
    private readonly events: UpstreamTcpEvents,
    private readonly env: Random,
  ) {
    queueMicrotask(() => events.onConnect());
  }
  write(chunk: Buffer, onFlushed: () => void): void {
    if (this.env.chance(0.3)) this.unflushed.push(onFlushed);
    else onFlushed();
    const reply = chunk.includes("BIG") ? Buffer.alloc(BIG_REPLY_BYTES, 0x61) : Buffer.from(chunk);
    queueMicrotask(() => this.send(reply));
    if (this.env.chance(0.05)) queueMicrotask(() => this.events.onError(new Error("reset")));
  }
  /** Environment step between guest frames. */
  step(): void {
    if (this.unflushed.length > 0 && this.env.chance(0.5)) {
      for (const f of this.unflushed.splice(0)) f();
      this.events.onDrain();
    }
  }
  end(): void {
    queueMicrotask(() => this.events.onEnd());
  }
  destroy(): void {}
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    for (const c of this.held.splice(0)) this.events.onData(c);
  }
  private send(data: Buffer): void {
    if (this.paused) this.held.push(data);
    else this.events.onData(data);
  }
}

class EchoUpstream implements Upstream {
  readonly flows: EchoTcp[] = [];
  constructor(private readonly env: Random) {}
  connectTcp(_ip: string, port: number, events: UpstreamTcpEvents) {
    if (port === 9) return { denied: "port 9 is closed" };
    const flow = new EchoTcp(events, this.env);
    this.flows.push(flow);
    return flow;
  }
  openUdp(_ip: string, _port: number, events: UpstreamUdpEvents): UpstreamUdp {
    return { send: (p) => queueMicrotask(() => events.onMessage(p)), close: () => undefined };
  }
  async resolveIpv4(name: string): Promise<string[]> {
    if (name.startsWith("fail")) throw new Error("resolver down");
    return name === "localhost" ? ["127.0.0.1"] : name.endsWith(".com") ? ["93.184.216.34"] : [];
  }
}

/** What the stack sent must be frames a guest kernel accepts. */
function checkSent(frame: Buffer): void {
  check(frame.length <= addressing.mtuBytes + 14, `sent a ${frame.length}-byte frame`);
  const eth = parseEthernet(frame);
  check(eth !== undefined, "sent a runt frame");
  if (eth.etherType === ETHERTYPE_ARP) return;
  const ip = parseIpv4Packet(eth.payload);
  check(ip.ok, `sent a bad IPv4 packet (${ip.ok ? "" : ip.reason})`);
  const { packet } = ip;
  if (packet.protocol === PROTO_TCP)
    check(
      parseTcp(packet.payload, packet.srcIp, packet.dstIp) !== undefined,
      "sent a bad TCP segment",
    );
  if (packet.protocol === PROTO_UDP)
    check(
      parseUdp(packet.payload, packet.srcIp, packet.dstIp) !== undefined,
      "sent a bad UDP datagram",
    );
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export const netTarget: FuzzTarget = {
  name: "net",
  description: "Ethernet/ARP/IPv4/ICMP/UDP/TCP/DNS through the userspace stack (src/net)",
  maxInputBytes: 256 * 1024,
  timeLimitMs: 3000,
  units: netUnits,
  dictionary: [
    Buffer.from("BIG"),
    Buffer.from([0x08, 0x00]),
    Buffer.from([0x08, 0x06]),
    Buffer.from([0x45]),
  ],
  seeds: () =>
    [
      conversation(PUBLIC_IP, 80, "GET / HTTP/1.1\r\n\r\n"),
      conversation(addressing.gatewayIp, 8080, "BIG please"),
      conversation(PUBLIC_IP, 9, "denied"),
    ].map((frames) => Buffer.concat(frames.map(encodeFrame))),
  async run(input) {
    const issByFlow = new Map<string, number>();
    const internal: unknown[] = [];
    const env = new Random(hashBytes(input));
    const upstream = new EchoUpstream(env);
    let linkBusy = false;
    const stack = new NetworkStack({
      upstream,
      linkWritable: () => !linkBusy,
      sendFrame: (f) => {
        checkSent(f);
        noteIss(f, issByFlow);
      },
      maxTcpFlows: MAX_FLOWS,
      bufferBudgetBytes: BUDGET_BYTES,
      tcp: { initialRtoMs: 2, maxRtoMs: 5, maxRetransmits: 2 },
    });
    // The stack swallows parser exceptions (one bad frame must not kill the host); the fuzzer
    // wants to see them.
    const inner = stack as unknown as { dispatch(frame: Buffer): boolean };
    const dispatch = inner.dispatch.bind(stack);
    inner.dispatch = (frame) => {
      try {
        return dispatch(frame);
      } catch (err) {
        internal.push(err);
        throw err;
      }
    };
    const frames: Buffer[] = [];
    const decoder = new FrameDecoder((f) => frames.push(Buffer.from(f)));
    for (const chunk of chunked(input)) decoder.push(chunk);
    try {
      for (const frame of frames) {
        stack.handleFrame(absoluteAck(frame, issByFlow));
        for (const flow of upstream.flows) flow.step();
        // The link to the guest congests now and then, and drains.
        if (linkBusy && env.chance(0.5)) {
          linkBusy = false;
          stack.linkDrained();
        } else if (env.chance(0.1)) linkBusy = true;
        // Let connects, echoes and DNS answers happen, as they would between guest frames.
        await turn();
        if (internal.length > 0) throw internal[0];
        const { tcpFlows, bufferedBytes } = stack.stats;
        check(tcpFlows <= MAX_FLOWS, `${tcpFlows} TCP flows`);
        check(
          bufferedBytes <= BUDGET_BYTES + MAX_FLOWS * BIG_REPLY_BYTES,
          `${bufferedBytes} bytes buffered`,
        );
      }
      await turn();
    } finally {
      stack.close();
    }
    check(
      stack.stats.tcpFlows === 0 && stack.stats.bufferedBytes === 0,
      "close() left flows or bytes",
    );
  },
};
