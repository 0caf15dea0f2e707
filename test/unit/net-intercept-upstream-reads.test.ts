/**
 * Upstream TLS reads into one buffer per socket (src/net/intercept/upstream-reads.ts): a body
 * read through Node's HTTP client arrives intact while the socket decrypts every record into
 * the same buffer, and bytes Node hands on as a view of that buffer (an upgrade's first bytes)
 * are never overwritten by a later read.
 */
import assert from "node:assert/strict";
import { Agent, request as httpsRequest, createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { after, before, test } from "node:test";
import { upstreamReadOptions } from "../../src/net/intercept/upstream-reads.js";
import { createCa, LeafCertificates } from "../../src/net/tls/index.js";
import { patternBytes, startUpstreams, type Upstreams } from "./net-intercept-guest.js";

let up: Upstreams;
before(async () => {
  up = await startUpstreams();
});
after(() => up.close());

/** Read options that also record every distinct buffer the socket was given to read into. */
function countingReadOptions() {
  const options = upstreamReadOptions();
  const next = options.buffer as () => Uint8Array;
  const buffers = new Set<ArrayBufferLike>();
  options.buffer = () => {
    const b = next();
    buffers.add(b.buffer);
    return b;
  };
  return { options, buffers };
}

function get(path: string, agent: Agent, onread: ReturnType<typeof upstreamReadOptions>) {
  return new Promise<Buffer>((resolve, reject) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        port: up.httpsPort,
        servername: "api.test",
        path,
        ca: up.upstreamCaPem,
        agent,
        onread,
      } as import("node:https").RequestOptions,
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve(Buffer.concat(chunks)));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

test("a download decrypts every record into the same buffer and arrives intact", async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const { options, buffers } = countingReadOptions();
  const size = 4 * 1024 * 1024 + 4321;
  const body = await get(`/pattern?bytes=${size}`, agent, options);
  assert.ok(body.equals(patternBytes(size)), "the body changed on the way");
  // Node's default read path: one new buffer per 16 KiB record, ~260 here. A few more than one
  // where the socket was paused (those reads are queued, each in a buffer of its own).
  assert.ok(buffers.size < 64, `${buffers.size} read buffers for ${size} bytes`);
  // The same socket, kept alive, serves a second response: intact too.
  const second = await get(`/pattern?bytes=${size + 1}`, agent, upstreamReadOptions());
  assert.ok(second.equals(patternBytes(size + 1)), "the second body changed on the way");
  agent.destroy();
});

test("an upgrade's first bytes are not overwritten by the reads after it", async () => {
  const ca = createCa();
  const leaves = new LeafCertificates(ca);
  const first = Buffer.from("first bytes after the 101, in the same record as its head");
  const later = Buffer.alloc(16 * 1024, 0x7a);
  const server = createHttpsServer({
    SNICallback: (_n, cb) => cb(null, leaves.contextFor("api.test")),
  });
  server.on("upgrade", (_req, socket: Duplex) => {
    socket.write(
      Buffer.concat([
        Buffer.from(
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n",
        ),
        first,
      ]),
    );
    setTimeout(() => socket.end(later), 50);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const { head, rest } = await new Promise<{ head: Buffer; rest: Buffer }>((resolve, reject) => {
      const req = httpsRequest({
        host: "127.0.0.1",
        port: (server.address() as AddressInfo).port,
        servername: "api.test",
        ca: ca.certPem,
        agent: false,
        headers: { Connection: "Upgrade", Upgrade: "test" },
        onread: upstreamReadOptions(),
      } as import("node:https").RequestOptions);
      req.on("upgrade", (_res, socket: Duplex, head: Buffer) => {
        const chunks: Buffer[] = [];
        socket.on("data", (c: Buffer) => chunks.push(c));
        socket.on("end", () => resolve({ head, rest: Buffer.concat(chunks) }));
        socket.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
    assert.ok(head.equals(first), `the upgrade's first bytes changed: ${head.toString()}`);
    assert.ok(rest.equals(later));
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
