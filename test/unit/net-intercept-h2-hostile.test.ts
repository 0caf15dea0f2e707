/**
 * Hostile HTTP/2 from the guest, in raw frames over an h2c flow: rapid reset (CVE-2023-44487),
 * a header list far over the limit, a CONTINUATION flood (CVE-2024-27983 class) and a huge
 * flow-control window. Each must cost only that connection: it is refused or torn down after
 * a bounded amount of work, little or nothing reaches upstream, and the next connection from
 * the same guest is served normally.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Duplex } from "node:stream";
import {
  InterceptUpstream,
  PASS_THROUGH_POLICY,
  type NetworkEventInfo,
} from "../../src/net/intercept/index.js";
import { EgressPolicy } from "../../src/net/policy/index.js";
import { createCa } from "../../src/net/tls/index.js";
import {
  guestH2,
  h2Request,
  startH2Upstreams,
  type H2Upstreams,
} from "./net-intercept-h2-fixtures.js";
import { guestDial } from "./net-intercept-guest.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const CANCEL = 0x8;

let h2: H2Upstreams;
const ca = createCa();
const proxies: InterceptUpstream[] = [];
before(async () => {
  h2 = await startH2Upstreams();
});
after(() => {
  for (const p of proxies) p.close();
  h2.close();
});

function proxy() {
  const events: NetworkEventInfo[] = [];
  const p = new InterceptUpstream({
    policy: new EgressPolicy({ allowedHosts: ["api.test"], allowPrivateHosts: true }),
    httpPolicy: PASS_THROUGH_POLICY,
    ca,
    resolveOverrides: new Map([["api.test", "127.0.0.1"]]),
    onEvent: (e) => events.push(e),
  });
  proxies.push(p);
  return { p, events };
}

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)) {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK: a literal field without indexing, new name, no Huffman; lengths below 127. */
function literal(name: string, value: string): Buffer {
  return Buffer.from([
    0x00,
    name.length,
    ...Buffer.from(name),
    value.length,
    ...Buffer.from(value),
  ]);
}

/** A GET for `path` to api.test: `:method GET`, `:scheme http`, `:path`, `:authority`. */
function requestBlock(path: string): Buffer {
  const authority = `api.test:${h2.h2cPort}`;
  return Buffer.concat([
    Buffer.from([0x82, 0x86, 0x04, path.length]), // GET, http, :path (indexed name) literal
    Buffer.from(path),
    Buffer.from([0x01, authority.length]), // :authority (indexed name) literal
    Buffer.from(authority),
  ]);
}

/** An h2c connection through the proxy, speaking raw frames; records what comes back. */
async function rawGuest(p: InterceptUpstream) {
  const [ip] = await p.resolveIpv4("api.test");
  const flow: Duplex = await guestDial(p, ip ?? "", h2.h2cPort);
  let received = Buffer.alloc(0);
  const frames: { type: number; code?: number }[] = [];
  flow.on("error", () => undefined);
  flow.on("data", (c: Buffer) => {
    received = Buffer.concat([received, c]);
    while (received.length >= 9) {
      const len = received.readUIntBE(0, 3);
      if (received.length < 9 + len) break;
      const type = received[3] ?? 0;
      const code = type === GOAWAY ? received.readUInt32BE(9 + 4) : undefined;
      frames.push({ type, ...(code !== undefined ? { code } : {}) });
      received = received.subarray(9 + len);
    }
  });
  const closed = new Promise<void>((resolve) => {
    flow.once("end", resolve);
    flow.once("close", resolve);
  });
  flow.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
  /** Writes unless the proxy has closed the flow; false once it has. */
  const send = (b: Buffer): boolean => {
    if (flow.destroyed || flow.writableEnded) return false;
    flow.write(b);
    return true;
  };
  return { flow, frames, closed, send };
}

/** Resolves true if `closed` settles within `ms`. */
function within(closed: Promise<void>, ms: number): Promise<boolean> {
  return Promise.race([
    closed.then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), ms)),
  ]);
}

async function waitFor(ok: () => boolean, ms: number): Promise<void> {
  for (const end = Date.now() + ms; !ok() && Date.now() < end;)
    await new Promise((r) => setTimeout(r, 20));
}

/** The same proxy still serves an ordinary HTTP/2 request on a new connection. */
async function stillServes(p: InterceptUpstream): Promise<void> {
  const session = await guestH2(p, "api.test", h2.h2cPort, undefined);
  const r = await h2Request(session, { ":path": "/echo?after=1" });
  session.close();
  assert.equal(r.status, 200);
}

test("rapid reset: a guest opening and cancelling streams in a loop gets GOAWAY", async () => {
  const { p, events } = proxy();
  const g = await rawGuest(p);
  const seenBefore = h2.seen.length;
  let sent = 0;
  for (let id = 1; sent < 5000; id += 2, sent++) {
    const open = frame(HEADERS, END_STREAM | END_HEADERS, id, requestBlock(`/echo?rr=${id}`));
    const reset = frame(RST_STREAM, 0, id, Buffer.from([0, 0, 0, CANCEL]));
    if (!g.send(Buffer.concat([open, reset]))) break;
    if (sent % 100 === 99) await new Promise((r) => setImmediate(r));
  }
  // nghttp2's own limit (a burst of 1,000 resets) ends the session with GOAWAY; the flow itself
  // stays open, inert, until the guest closes it or the session's idle timeout.
  await waitFor(() => g.frames.some((f) => f.type === GOAWAY), 10_000);
  assert.ok(
    g.frames.some((f) => f.type === GOAWAY),
    `no GOAWAY after ${sent} reset streams`,
  );
  // Far fewer than the streams opened reached upstream: the loop is not free work.
  const reached = h2.seen.length - seenBefore;
  assert.ok(reached < 1000, `${reached} of ${sent} reset streams reached upstream`);
  assert.ok(events.length < 2000, `${events.length} events`);
  await stillServes(p);
});

test("a header list over the limit is refused without reaching upstream", async () => {
  const { p } = proxy();
  const g = await rawGuest(p);
  const seenBefore = h2.seen.length;
  // ~200 KiB of fields (the limit is 64 KiB), in one HEADERS and CONTINUATION frames of 16 KiB.
  const fields: Buffer[] = [requestBlock("/echo?flood=1")];
  for (let i = 0; i < 4000; i++) fields.push(literal(`x-f${i}`, "v".repeat(40)));
  const block = Buffer.concat(fields);
  const chunks: Buffer[] = [];
  for (let at = 0; at < block.length; at += 16384) chunks.push(block.subarray(at, at + 16384));
  chunks.forEach((c, i) => {
    const last = i === chunks.length - 1;
    const flags = (i === 0 ? END_STREAM : 0) | (last ? END_HEADERS : 0);
    g.send(frame(i === 0 ? HEADERS : CONTINUATION, flags, 1, c));
  });
  // Refused one way or the other: the stream reset, or the connection torn down.
  await new Promise((r) => setTimeout(r, 1000));
  const refused = g.frames.some((f) => f.type === RST_STREAM || f.type === GOAWAY);
  assert.ok(refused || g.flow.destroyed, "the oversized header list was not refused");
  assert.equal(h2.seen.length, seenBefore, "the request reached upstream");
  g.flow.destroy();
  await stillServes(p);
});

test("a CONTINUATION flood ends the connection after a bounded number of frames", async () => {
  const { p } = proxy();
  const g = await rawGuest(p);
  g.send(frame(HEADERS, END_STREAM, 1, requestBlock("/echo?cont=1")));
  let sent = 0;
  // Empty CONTINUATION frames never grow the header list, so only a frame count stops them.
  for (; sent < 100_000; sent++) {
    if (!g.send(frame(CONTINUATION, 0, 1))) break;
    if (sent % 1000 === 999) await new Promise((r) => setImmediate(r));
  }
  assert.ok(await within(g.closed, 10_000), `still open after ${sent} CONTINUATION frames`);
  assert.ok(sent < 100_000 || g.frames.some((f) => f.type === GOAWAY));
  await stillServes(p);
});

test("a huge flow-control window from the guest does not make the proxy buffer for it", async () => {
  const { p } = proxy();
  const g = await rawGuest(p);
  // Windows raised to the legal maximum (2^31 - 1) on the connection and on the stream: the
  // guest claims it can take 2 GiB at once, then reads nothing.
  const increment = Buffer.alloc(4);
  increment.writeUInt32BE(0x7fffffff - 65535);
  g.send(frame(WINDOW_UPDATE, 0, 0, increment));
  const big = requestBlock(`/big?bytes=${256 * 1024 * 1024}`);
  g.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, big));
  g.flow.write(frame(SETTINGS, 0x1, 0)); // ACK: the proxy may now use the guest's settings
  g.send(frame(WINDOW_UPDATE, 0, 1, increment));
  g.flow.pause();
  const rss0 = process.memoryUsage().rss;
  await new Promise((r) => setTimeout(r, 3000));
  const grownMiB = (process.memoryUsage().rss - rss0) / 1024 / 1024;
  // The guest side holds 1 MiB before it pauses the proxy, as the stack does; the proxy then
  // stops reading upstream. Far from the 256 MiB the window would allow.
  assert.ok(grownMiB < 96, `RSS grew ${grownMiB.toFixed(0)} MiB`);
  g.flow.destroy();
  await stillServes(p);
});
