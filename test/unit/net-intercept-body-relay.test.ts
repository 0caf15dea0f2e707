/**
 * The response body relay (src/net/intercept/body-relay.ts): toward a guest TLS connection it
 * gathers the body into two reused buffers, one write per turn; toward a plain guest stream,
 * whose stack keeps written buffers until the guest acknowledges them, it must not reuse any.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { PassThrough, Writable } from "node:stream";
import { test } from "node:test";
import {
  relayBody,
  RelayBudget,
  RELAY_BUDGET_BYTES,
  RELAY_FLOOR_BYTES,
  RELAY_SLAB_BYTES,
} from "../../src/net/intercept/body-relay.js";
import { createCa } from "../../src/net/tls/index.js";
import { guestDial, guestSocket, patternBytes, upstreamFixture } from "./net-intercept-guest.js";

const CHUNK = 16 * 1024;

/**
 * A destination whose writes complete a turn later, as a TLS socket's do; keeps a copy of each
 * write and counts writes whose buffer changed before they completed (reused too soon).
 */
function turnLateSink(complete = true) {
  const writes: Buffer[] = [];
  const seen = { changedBeforeDone: 0 };
  const sink = new Writable({
    highWaterMark: RELAY_SLAB_BYTES,
    write(chunk: Buffer, _enc, cb) {
      const copy = Buffer.from(chunk);
      writes.push(copy);
      if (!complete) return;
      setImmediate(() => {
        if (!copy.equals(chunk)) seen.changedBeforeDone++;
        cb();
      });
    },
  });
  return { sink, writes, seen };
}

function relayed(body: Buffer, copiedOnWrite: boolean, budget?: RelayBudget) {
  const source = new PassThrough();
  const { sink, writes, seen } = turnLateSink();
  let counted = 0;
  let failed = 0;
  relayBody(source, sink, copiedOnWrite, body.length, {
    ...(budget ? { budget } : {}),
    onBytes: (n) => (counted += n),
    onFailed: () => failed++,
  });
  for (let at = 0; at < body.length; at += CHUNK) source.write(body.subarray(at, at + CHUNK));
  source.end();
  return new Promise<{ writes: Buffer[]; counted: number; failed: number; reused: number }>(
    (resolve) =>
      sink.on("finish", () => resolve({ writes, counted, failed, reused: seen.changedBeforeDone })),
  );
}

test("toward TLS, a body arriving in 16 KiB pieces leaves in a few large writes, intact", async () => {
  const body = patternBytes(4 * 1024 * 1024);
  const { writes, counted, failed, reused } = await relayed(body, true);
  assert.equal(failed, 0);
  assert.equal(reused, 0, "a buffer was refilled before its write completed");
  assert.equal(counted, body.length);
  assert.ok(Buffer.concat(writes).equals(body), "the body changed on the way");
  // Piped as it came, this would be 256 writes of 16 KiB.
  assert.ok(writes.length <= 16, `${writes.length} writes for ${body.length} bytes`);
});

test("toward a plain stream, the body is piped as it came", async () => {
  const body = patternBytes(256 * 1024);
  const { writes } = await relayed(body, false);
  assert.equal(writes.length, body.length / CHUNK);
  assert.ok(Buffer.concat(writes).equals(body));
});

test("a destination that stops completing writes stops the source after two buffers", async () => {
  const source = new PassThrough({ highWaterMark: CHUNK });
  const { sink } = turnLateSink(false);
  let counted = 0;
  relayBody(source, sink, true, undefined, { onBytes: (n) => (counted += n), onFailed: () => {} });
  const offered = await offerUntilHeld(source, 16 * 1024 * 1024);
  assert.ok(offered < 16 * 1024 * 1024, "the source was never held");
  assert.ok(
    counted <= 2 * RELAY_SLAB_BYTES + CHUNK,
    `${counted} bytes taken from the source with no write completing`,
  );
  source.destroy();
  sink.destroy();
});

/**
 * Writes up to `total` bytes into `source` in 16 KiB pieces, waiting for it to drain between
 * pieces as a socket would; stops when it stays full for 200 ms. Returns the bytes offered.
 */
async function offerUntilHeld(source: PassThrough, total: number): Promise<number> {
  const piece = Buffer.alloc(CHUNK);
  let offered = 0;
  while (offered < total) {
    offered += piece.length;
    if (!source.write(piece)) {
      const drained = await Promise.race([
        new Promise((r) => source.once("drain", () => r(true))),
        new Promise((r) => setTimeout(() => r(false), 200)),
      ]);
      if (!drained) break;
    }
  }
  return offered;
}

test("attack: many flows the guest never reads hold no more than the sandbox's relay budget", async () => {
  // 40 flows at two 1 MiB buffers each would hold 80 MiB here; the budget is 8 MiB.
  const budget = new RelayBudget(8 * 1024 * 1024);
  const flows = 40;
  let taken = 0;
  const stalled = Array.from({ length: flows }, () => {
    const source = new PassThrough({ highWaterMark: CHUNK });
    const { sink } = turnLateSink(false);
    relayBody(source, sink, true, undefined, {
      budget,
      onBytes: (n) => (taken += n),
      onFailed: () => {},
    });
    return { source, sink };
  });
  await Promise.all(stalled.map(({ source }) => offerUntilHeld(source, 4 * 1024 * 1024)));
  const floors = flows * 2 * RELAY_FLOOR_BYTES;
  assert.ok(budget.inUse <= budget.limit + floors, `${budget.inUse} bytes of relay buffers`);
  // Taken from the sources: what the buffers hold, plus one piece each that did not fit.
  assert.ok(
    taken <= budget.limit + floors + flows * CHUNK,
    `${taken} bytes taken from ${flows} sources no guest reads`,
  );

  // A flow the guest does read still completes, intact, on the floor's buffers.
  const body = patternBytes(3 * 1024 * 1024 + 7);
  const normal = await relayed(body, true, budget);
  assert.equal(normal.failed, 0);
  assert.equal(normal.reused, 0);
  assert.ok(Buffer.concat(normal.writes).equals(body), "the body changed on the way");

  // Closed flows give their buffers back.
  for (const { source, sink } of stalled) {
    sink.destroy();
    source.destroy();
  }
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(budget.inUse, 0);
  assert.ok(RELAY_BUDGET_BYTES >= 4 * RELAY_SLAB_BYTES && RELAY_BUDGET_BYTES <= 128 * 1024 * 1024);
});

test("a source that fails mid-body reports one failure", async () => {
  const source = new PassThrough();
  const { sink } = turnLateSink();
  let failed = 0;
  relayBody(source, sink, true, 1 << 20, { onBytes: () => {}, onFailed: () => failed++ });
  source.write(Buffer.alloc(CHUNK));
  await new Promise((r) => setImmediate(r));
  source.destroy(new Error("upstream reset"));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(failed, 1);
});

const ca = createCa();
const fixture = upstreamFixture(ca);

test("an HTTPS download through the proxy to a guest that stalls arrives intact", async () => {
  const up = fixture.up();
  const { p } = fixture.proxy();
  const size = 8 * 1024 * 1024 + 12345;
  const socket = await guestSocket(p, {
    name: "api.test",
    port: up.httpsPort,
    tls: true,
    caPem: ca.certPem,
  });
  const got = await download(socket, up.httpsPort, size, true);
  assert.ok(got.equals(patternBytes(size)), "the body changed on the way");
});

test("a plain HTTP download keeps every buffer handed to the stack unchanged", async () => {
  const up = fixture.up();
  const { p } = fixture.proxy();
  const size = 4 * 1024 * 1024 + 321;
  // The stack holds what the proxy hands it until the guest acknowledges it: keep every chunk
  // and look at them only at the end, as a retransmission would.
  const handed: Buffer[] = [];
  const [ip] = await p.resolveIpv4("api.test");
  const socket = await guestDial(p, ip ?? "", up.httpPort, undefined, undefined, (c) =>
    handed.push(c),
  );
  const got = await download(socket, up.httpPort, size, false);
  assert.ok(got.equals(patternBytes(size)));
  const wire = Buffer.concat(handed);
  assert.ok(
    wire.subarray(wire.length - size).equals(patternBytes(size)),
    "a handed buffer changed later",
  );
});

function download(
  socket: import("node:stream").Duplex,
  port: number,
  size: number,
  stall: boolean,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        createConnection: () => socket as never,
        host: "api.test",
        port,
        path: `/pattern?bytes=${size}`,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let seen = 0;
        let stalled = false;
        res.on("data", (c: Buffer) => {
          chunks.push(c);
          seen += c.length;
          // Stall once, mid-body, long enough for the proxy to fill everything it holds.
          if (stall && !stalled && seen > 3 * 1024 * 1024) {
            stalled = true;
            res.pause();
            setTimeout(() => res.resume(), 300);
          }
        });
        res.on("end", () => resolve(Buffer.concat(chunks)));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}
