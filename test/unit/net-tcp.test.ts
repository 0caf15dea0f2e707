import { test } from "node:test";
import assert from "node:assert/strict";
import {
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  seqAdd,
  type TcpSegment,
} from "../../src/net/tcp-segment.js";
import {
  PUBLIC_IP,
  addressing,
  guestTcp,
  makeStack,
  sleep,
  type FakeTcp,
} from "./net-fake-guest.js";
import { waitUntil } from "../helpers/lifecycle.js";

const GUEST_PORT = 43210;
const GUEST_ISS = 1000;

interface OpenOpts {
  mss?: number;
  window?: number;
  windowScale?: number;
  tcp?: Parameters<typeof makeStack>[0];
}

/** Runs the handshake; returns helpers speaking for the guest on that flow. */
function open(opts: OpenOpts = {}) {
  const ctx = makeStack(opts.tcp);
  const { stack, upstream, take } = ctx;
  const send = (seg: {
    seq: number;
    ack?: number;
    flags: number;
    window?: number;
    payload?: Buffer;
  }) =>
    stack.handleFrame(
      guestTcp(PUBLIC_IP, {
        srcPort: GUEST_PORT,
        dstPort: 443,
        ack: 0,
        window: opts.window ?? 65535,
        ...seg,
      }),
    );
  send({
    seq: GUEST_ISS,
    flags: TCP_SYN,
    ...(opts.mss !== undefined ? { mss: opts.mss } : {}),
    ...(opts.windowScale !== undefined ? { windowScale: opts.windowScale } : {}),
  });
  assert.equal(take().length, 0, "no SYN-ACK before the upstream connects");
  const conn = upstream.tcp[0] as FakeTcp;
  assert.equal(conn.ip, "93.184.216.34");
  assert.equal(conn.port, 443);
  conn.events.onConnect();
  const [synAck] = take();
  const sa = synAck?.tcp as TcpSegment;
  assert.equal(sa.flags, TCP_SYN | TCP_ACK);
  assert.equal(sa.ack, GUEST_ISS + 1);
  let guestSeq = GUEST_ISS + 1;
  let guestAck = seqAdd(sa.seq, 1);
  send({ seq: guestSeq, ack: guestAck, flags: TCP_ACK });
  return {
    ...ctx,
    conn,
    synAck: sa,
    send,
    /** Guest sends data (in order). */
    data(text: string | Buffer, flags = TCP_ACK) {
      const payload = Buffer.from(text);
      send({ seq: guestSeq, ack: guestAck, flags, payload });
      guestSeq = seqAdd(guestSeq, payload.length + (flags & TCP_FIN ? 1 : 0));
    },
    ack(upTo: number, window?: number) {
      guestAck = upTo;
      send({
        seq: guestSeq,
        ack: upTo,
        flags: TCP_ACK,
        ...(window !== undefined ? { window } : {}),
      });
    },
    get guestSeq() {
      return guestSeq;
    },
  };
}

test("TCP: handshake only after the upstream connects; data flows both ways", () => {
  const f = open();
  assert.equal(f.synAck.mss, addressing.mtuBytes - 40);
  f.data("GET / HTTP/1.1\r\n\r\n");
  assert.equal(f.conn.writtenText, "GET / HTTP/1.1\r\n\r\n");
  const [ack] = f.take();
  assert.equal(ack?.tcp?.ack, f.guestSeq);
  f.conn.events.onData(Buffer.from("HTTP/1.1 200 OK\r\n\r\nhi"));
  const [resp] = f.take();
  assert.equal(resp?.tcp?.payload.toString(), "HTTP/1.1 200 OK\r\n\r\nhi");
  assert.equal(resp?.srcIp, PUBLIC_IP);
  f.stack.close();
});

test("TCP: segments honour the guest's MSS and window", () => {
  const f = open({ mss: 1000, window: 3000 });
  f.conn.events.onData(Buffer.alloc(10_000, 7));
  let segs = f.take().map((r) => r.tcp as TcpSegment);
  assert.deepEqual(
    segs.map((s) => s.payload.length),
    [1000, 1000, 1000],
  );
  const start = seqAdd(f.synAck.seq, 1);
  f.ack(seqAdd(start, 2000), 3000);
  segs = f.take().map((r) => r.tcp as TcpSegment);
  assert.deepEqual(
    segs.map((s) => [s.seq - start, s.payload.length]),
    [
      [3000, 1000],
      [4000, 1000],
    ],
  );
  f.stack.close();
});

test("TCP: window scaling is negotiated and applied to the guest's window", () => {
  const f = open({ mss: 60000, windowScale: 4, window: 1000 });
  assert.equal(f.synAck.windowScale, 7);
  f.conn.events.onData(Buffer.alloc(100_000));
  // The SYN's window is unscaled (1000 bytes); the ACK after it said 1000 << 4.
  const sent = f.take().reduce((n, r) => n + (r.tcp?.payload.length ?? 0), 0);
  assert.equal(sent, 16_000);
  f.stack.close();
});

test("TCP: our receive window shrinks while the upstream socket is backed up", () => {
  const f = open({ tcp: { tcp: { receiveWindowBytes: 60_000 } } });
  f.take();
  const seq = f.guestSeq;
  f.data(Buffer.alloc(50_000));
  const [ack] = f.take();
  assert.equal(ack?.tcp?.window, 10_000);
  // A guest that ignores the window gets only what fits; the rest is not acknowledged.
  const ourAck = seqAdd(f.synAck.seq, 1);
  f.send({ seq: seqAdd(seq, 50_000), ack: ourAck, flags: TCP_ACK, payload: Buffer.alloc(20_000) });
  assert.equal(Buffer.concat(f.conn.written).length, 60_000);
  const [zero] = f.take();
  assert.equal(zero?.tcp?.window, 0);
  assert.equal(zero?.tcp?.ack, seqAdd(seq, 60_000));
  // Flushing reopens the window without the guest having to probe.
  f.conn.flush();
  f.conn.events.onDrain();
  const [update] = f.take();
  assert.equal(update?.tcp?.window, 60_000);
  f.stack.close();
});

test("TCP: all flows together stay within the stack's buffer budget", () => {
  const f = open({ mss: 1000, tcp: { bufferBudgetBytes: 100_000 } });
  f.take();
  // Upstream data the guest does not acknowledge fills the budget; the upstream is paused.
  f.conn.events.onData(Buffer.alloc(70_000));
  f.conn.events.onData(Buffer.alloc(40_000));
  assert.equal(f.conn.paused, true);
  assert.equal(f.stack.stats.bufferedBytes, 110_000);
  // Guest data on the same flow gets a zero window: nothing is left in the budget.
  const seq = f.guestSeq;
  f.send({ seq, ack: seqAdd(f.synAck.seq, 1), flags: TCP_ACK, payload: Buffer.alloc(5000) });
  assert.equal(f.conn.written.length, 0);
  // Acknowledgements free the budget: the upstream resumes and the window reopens.
  f.take();
  f.ack(seqAdd(f.synAck.seq, 1 + 60_000));
  assert.equal(f.conn.paused, false);
  const update = f.take().find((r) => (r.tcp?.window ?? 0) > 0);
  assert.ok(update, "window update after the budget freed");
  f.stack.close();
  assert.equal(f.stack.stats.bufferedBytes, 0);
});

test("TCP: a full send buffer pauses the upstream; acknowledgements resume it", () => {
  const f = open({ mss: 1000, window: 1000, tcp: { tcp: { sendBufferBytes: 4000 } } });
  f.conn.events.onData(Buffer.alloc(5000));
  assert.equal(f.conn.paused, true);
  const start = seqAdd(f.synAck.seq, 1);
  f.ack(seqAdd(start, 1000), 1000);
  f.ack(seqAdd(start, 2000), 1000);
  f.ack(seqAdd(start, 3000), 1000);
  assert.equal(f.conn.paused, true, "stays paused until the buffer is half empty");
  f.ack(seqAdd(start, 4000), 1000);
  assert.equal(f.conn.paused, false);
  f.stack.close();
});

test("TCP: unacknowledged data is retransmitted after the timeout", async () => {
  const f = open({ tcp: { tcp: { initialRtoMs: 20 } } });
  f.take();
  f.conn.events.onData(Buffer.from("important"));
  const [first] = f.take();
  // Wait for the retransmission itself (a loaded machine runs a 20 ms timer much later).
  const again: TcpSegment[] = [];
  await waitUntil("the data is retransmitted", () => {
    again.push(...f.take().map((r) => r.tcp as TcpSegment));
    return again.length >= 1;
  });
  assert.equal(again[0]?.seq, first?.tcp?.seq);
  assert.equal(again[0]?.payload.toString(), "important");
  f.ack(seqAdd(first?.tcp?.seq ?? 0, 9));
  await sleep(60);
  f.take();
  await sleep(60);
  assert.equal(f.take().length, 0, "nothing more once acknowledged");
  f.stack.close();
});

test("TCP: a lost SYN-ACK is resent; a flow that never answers is reset", async () => {
  const ctx = makeStack({ tcp: { initialRtoMs: 10, maxRtoMs: 20, maxRetransmits: 3 } });
  ctx.stack.handleFrame(
    guestTcp(PUBLIC_IP, { srcPort: 1, dstPort: 80, seq: 5, ack: 0, flags: TCP_SYN, window: 100 }),
  );
  (ctx.upstream.tcp[0] as FakeTcp).events.onConnect();
  // The retransmissions and the reset run on timers: wait until the flow is gone (a fixed
  // 150 ms sleep was too short on a loaded machine), then look at everything that was sent.
  const segs: TcpSegment[] = [];
  await waitUntil("the unanswered flow is reset", () => {
    segs.push(...ctx.take().map((r) => r.tcp as TcpSegment));
    return ctx.stack.stats.tcpFlows === 0;
  });
  segs.push(...ctx.take().map((r) => r.tcp as TcpSegment));
  assert.ok(segs.filter((s) => s.flags === (TCP_SYN | TCP_ACK)).length >= 3);
  assert.ok(segs.at(-1)?.flags !== undefined && (segs.at(-1)?.flags ?? 0) & TCP_RST);
  assert.equal(ctx.stack.stats.tcpFlows, 0);
  assert.equal((ctx.upstream.tcp[0] as FakeTcp).destroyed, true);
});

test("TCP: FIN both ways closes the flow with no TIME_WAIT", () => {
  const f = open();
  f.data("bye", TCP_ACK | TCP_FIN);
  assert.equal(f.conn.ended, true);
  f.conn.events.onData(Buffer.from("ok"));
  f.conn.events.onEnd();
  const segs = f.take().map((r) => r.tcp as TcpSegment);
  const fin = segs.find((s) => s.flags & TCP_FIN);
  assert.ok(fin);
  assert.equal(f.stack.stats.tcpFlows, 1);
  f.ack(seqAdd(fin.seq, 1));
  assert.equal(f.stack.stats.tcpFlows, 0);
});

test("TCP: upstream closes first, then the guest", () => {
  const f = open();
  f.conn.events.onEnd();
  const fin = f.take().find((r) => (r.tcp?.flags ?? 0) & TCP_FIN)?.tcp as TcpSegment;
  f.ack(seqAdd(fin.seq, 1));
  assert.equal(f.stack.stats.tcpFlows, 1);
  f.data("", TCP_ACK | TCP_FIN);
  assert.equal(f.stack.stats.tcpFlows, 0);
});

test("TCP: a guest RST destroys the upstream; an upstream error resets the guest", () => {
  const f = open();
  f.send({ seq: f.guestSeq, flags: TCP_RST });
  assert.equal(f.conn.destroyed, true);
  assert.equal(f.stack.stats.tcpFlows, 0);
  const g = open();
  g.take();
  g.conn.events.onError(new Error("reset by peer"));
  const [rst] = g.take();
  assert.ok((rst?.tcp?.flags ?? 0) & TCP_RST);
  assert.equal(g.stack.stats.tcpFlows, 0);
});

test("TCP: an out-of-window RST is ignored (blind reset)", () => {
  const f = open();
  f.send({ seq: seqAdd(f.guestSeq, 50_000_000), flags: TCP_RST });
  assert.equal(f.conn.destroyed, false);
  f.stack.close();
});

test("TCP: denied or refused dials answer the SYN with a reset", () => {
  const ctx = makeStack();
  ctx.upstream.deny = true;
  ctx.stack.handleFrame(
    guestTcp(PUBLIC_IP, { srcPort: 7, dstPort: 22, seq: 99, ack: 0, flags: TCP_SYN, window: 100 }),
  );
  const [rst] = ctx.take();
  assert.equal(rst?.tcp?.flags, TCP_RST | TCP_ACK);
  assert.equal(rst?.tcp?.ack, 100);
  assert.equal(ctx.stack.stats.tcpDenied, 1);
  assert.equal(ctx.stack.stats.tcpFlows, 0);
});

test("TCP: segments of unknown flows are reset; the flow table is bounded", () => {
  const ctx = makeStack({ maxTcpFlows: 2 });
  ctx.stack.handleFrame(
    guestTcp(PUBLIC_IP, { srcPort: 7, dstPort: 22, seq: 1, ack: 555, flags: TCP_ACK, window: 9 }),
  );
  const [rst] = ctx.take();
  assert.equal(rst?.tcp?.flags, TCP_RST);
  assert.equal(rst?.tcp?.seq, 555);
  for (let port = 1; port <= 3; port++)
    ctx.stack.handleFrame(
      guestTcp(PUBLIC_IP, {
        srcPort: port,
        dstPort: 80,
        seq: 1,
        ack: 0,
        flags: TCP_SYN,
        window: 9,
      }),
    );
  assert.equal(ctx.upstream.tcp.length, 2);
  assert.equal(ctx.stack.stats.tcpFlows, 2);
  ctx.stack.close();
});

test("TCP: out-of-order data is not buffered; the guest is told what is expected", () => {
  const f = open();
  f.take();
  const ack = seqAdd(f.synAck.seq, 1);
  f.send({ seq: seqAdd(f.guestSeq, 100), ack, flags: TCP_ACK, payload: Buffer.from("later") });
  assert.equal(f.conn.written.length, 0);
  const [dup] = f.take();
  assert.equal(dup?.tcp?.ack, f.guestSeq);
  f.stack.close();
});

test("TCP: a segment acknowledging data never sent is answered and dropped", () => {
  const f = open();
  f.take();
  const bogusAck = seqAdd(f.synAck.seq, 1_000_000);
  f.send({ seq: f.guestSeq, ack: bogusAck, flags: TCP_ACK, payload: Buffer.from("inject") });
  assert.equal(f.conn.written.length, 0);
  const [reply] = f.take();
  assert.equal(reply?.tcp?.ack, f.guestSeq);
  assert.equal(reply?.tcp?.seq, seqAdd(f.synAck.seq, 1));
  f.stack.close();
});

test("TCP: a zero window is probed until the guest opens it again", (t) => {
  // Mocked timers: the probe schedule is exact, however loaded the machine is.
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const f = open({ mss: 1000, tcp: { tcp: { initialRtoMs: 15 } } });
  f.take();
  const start = seqAdd(f.synAck.seq, 1);
  f.ack(start, 0); // the guest's buffer is full
  f.conn.events.onData(Buffer.from("abcdef"));
  assert.equal(f.take().length, 0, "nothing sent into a zero window");
  t.mock.timers.tick(15);
  const probes = f.take().map((r) => r.tcp as TcpSegment);
  assert.equal(probes.length, 1);
  assert.equal(probes[0]?.seq, start);
  assert.equal(probes[0]?.payload.toString(), "a");
  // The guest took the probe byte and reopened its window: the rest follows at once.
  f.ack(seqAdd(start, 1), 1000);
  const rest = f
    .take()
    .map((r) => r.tcp?.payload.toString() ?? "")
    .join("");
  assert.equal(rest, "bcdef");
  f.stack.close();
});

test("TCP: an acknowledgement that arrives after the timer went back still counts", (t) => {
  // The probe's ACK can be late: by then the timer has fired again and gone back to the
  // oldest unacknowledged byte. The ACK covers a byte that was sent, so it must be taken (it
  // was once dropped as acknowledging "data never sent", and the window update with it: on a
  // loaded machine the flow then waited for the next probe).
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const f = open({ mss: 1000, tcp: { tcp: { initialRtoMs: 15 } } });
  f.take();
  const start = seqAdd(f.synAck.seq, 1);
  f.ack(start, 0);
  f.conn.events.onData(Buffer.from("abcdef"));
  t.mock.timers.tick(15); // the probe
  assert.equal(f.take().length, 1);
  t.mock.timers.tick(30); // the timer again, before the guest's ACK arrives
  f.take();
  f.ack(seqAdd(start, 1), 1000);
  const rest = f
    .take()
    .map((r) => r.tcp?.payload.toString() ?? "")
    .join("");
  assert.equal(rest, "bcdef");
  f.stack.close();
});

test("TCP: an upstream that cannot drain slows its own flow only", () => {
  const ctx = makeStack({ tcp: { receiveWindowBytes: 20_000 } });
  const syn = (port: number) =>
    ctx.stack.handleFrame(
      guestTcp(PUBLIC_IP, {
        srcPort: port,
        dstPort: 80,
        seq: 100,
        ack: 0,
        flags: TCP_SYN,
        window: 65535,
      }),
    );
  syn(1);
  syn(2);
  const [stuck, free] = ctx.upstream.tcp as [FakeTcp, FakeTcp];
  stuck.events.onConnect();
  free.events.onConnect();
  const synAcks = new Map(ctx.take().map((r) => [r.tcp?.dstPort, r.tcp as TcpSegment]));
  const push = (port: number, seq: number, bytes: number) =>
    ctx.stack.handleFrame(
      guestTcp(PUBLIC_IP, {
        srcPort: port,
        dstPort: 80,
        seq,
        ack: seqAdd(synAcks.get(port)?.seq ?? 0, 1),
        flags: TCP_ACK,
        window: 65535,
        payload: Buffer.alloc(bytes),
      }),
    );
  push(1, 101, 20_000); // never flushed: this flow's window closes
  push(2, 101, 20_000);
  free.flush();
  push(2, 20_101, 20_000);
  free.flush();
  const windows = new Map<number, number>();
  for (const r of ctx.take()) windows.set(r.tcp?.dstPort ?? 0, r.tcp?.window ?? -1);
  assert.equal(windows.get(1), 0);
  assert.equal(Buffer.concat(free.written).length, 40_000);
  push(2, 40_101, 1000);
  assert.equal(Buffer.concat(free.written).length, 41_000, "the other flow keeps going");
  ctx.stack.close();
});
