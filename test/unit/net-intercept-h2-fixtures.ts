/**
 * HTTP/2 on both sides of the intercept proxy, in one process: upstream HTTP/2 servers on
 * 127.0.0.1 (TLS with ALPN h2 only, and h2c) that record what they receive, and a
 * guest HTTP/2 client session over an intercepted flow (TLS with ALPN h2, or h2c).
 */
import {
  connect as h2connect,
  constants,
  createSecureServer,
  createServer as createH2cServer,
  type ClientHttp2Session,
  type Http2Server,
  type Http2SecureServer,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { Duplex } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import type { InterceptUpstream } from "../../src/net/intercept/index.js";
import { createCa, LeafCertificates } from "../../src/net/tls/index.js";
import { guestDial } from "./net-intercept-guest.js";

export interface H2Seen {
  tls: boolean;
  headers: IncomingHttpHeaders;
  body: string;
  /** Which upstream connection (counted per server) carried it. */
  connection: number;
}

export interface H2Upstreams {
  tlsPort: number;
  h2cPort: number;
  seen: H2Seen[];
  caPem: string;
  close(): void;
}

/** Routes: /echo (JSON of what arrived), /big?bytes=N, /trailers, /grpc-error (trailers-only). */
function route(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, body: string): void {
  const url = new URL(String(headers[":path"] ?? "/"), "http://x");
  if (url.pathname === "/big") {
    const total = Number(url.searchParams.get("bytes") ?? 0);
    stream.respond({ ":status": 200, "content-length": total });
    const chunk = Buffer.alloc(64 * 1024, 0x62);
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        if (!stream.write(n === chunk.length ? chunk : chunk.subarray(0, n)))
          return void stream.once("drain", pump);
      }
      stream.end();
    };
    return pump();
  }
  if (url.pathname === "/trailers") {
    stream.respond(
      { ":status": 200, "content-type": "application/grpc" },
      { waitForTrailers: true },
    );
    stream.on("wantTrailers", () =>
      stream.sendTrailers({ "grpc-status": "0", "x-trailer": "end-of-stream" }),
    );
    return void stream.end(Buffer.from([0, 0, 0, 0, 2, 0x68, 0x69]));
  }
  if (url.pathname === "/grpc-error") {
    return void stream.respond(
      { ":status": 200, "content-type": "application/grpc", "grpc-status": "5" },
      { endStream: true },
    );
  }
  stream.respond({ ":status": 200, "content-type": "application/json", "x-upstream": "h2" });
  stream.end(JSON.stringify({ headers, body }));
}

function listen(server: Http2Server | Http2SecureServer): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
}

export async function startH2Upstreams(): Promise<H2Upstreams> {
  const ca = createCa();
  const leaves = new LeafCertificates(ca);
  const seen: H2Seen[] = [];
  const secure = createSecureServer({
    SNICallback: (name, cb) => cb(null, leaves.contextFor(name.toLowerCase())),
  });
  const plain = createH2cServer();
  for (const [server, tls] of [
    [secure, true],
    [plain, false],
  ] as const) {
    let connections = 0;
    server.on("session", (session) => {
      const n = ++connections;
      session.on("stream", (stream, headers) => {
        // A client torn down mid-response (a test's hostile guest) resets its streams here.
        stream.on("error", () => undefined);
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => {
          const body = Buffer.concat(chunks).toString();
          seen.push({ tls, headers, body, connection: n });
          route(stream, headers, body);
        });
      });
    });
  }
  const [tlsPort, h2cPort] = await Promise.all([listen(secure), listen(plain)]);
  return {
    tlsPort,
    h2cPort,
    seen,
    caPem: ca.certPem,
    close: () => {
      secure.close();
      plain.close();
    },
  };
}

/**
 * The proxy's output reaches a real guest through the network stack on a later turn of the
 * event loop, never inside the proxy's own write call. guestDial delivers synchronously, which
 * lets two HTTP/2 sessions in one process re-enter each other (Node asserts on that); this
 * puts the stack's asynchrony back.
 */
function deferred(inner: Duplex): Duplex {
  const outer: Duplex = new Duplex({
    allowHalfOpen: true,
    read() {
      inner.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      inner.write(chunk, () => setImmediate(cb));
    },
    final(cb) {
      inner.end();
      cb();
    },
    destroy(err, cb) {
      inner.destroy();
      cb(err);
    },
  });
  inner.on("data", (c: Buffer) => {
    setImmediate(() => {
      if (!outer.push(c)) inner.pause();
    });
  });
  inner.on("end", () => setImmediate(() => outer.push(null)));
  inner.on("error", (err) => outer.destroy(err));
  return outer;
}

/** A guest HTTP/2 session through the proxy: TLS with ALPN h2 (trusting `caPem`), or h2c. */
export async function guestH2(
  proxy: InterceptUpstream,
  name: string,
  port: number,
  tls: { caPem: string } | undefined,
  /** The guest's source port: given, the proxy asks its `origin` hook who opened the flow. */
  srcPort?: number,
): Promise<ClientHttp2Session> {
  const [ip] = await proxy.resolveIpv4(name);
  const raw = deferred(await guestDial(proxy, ip ?? "", port, srcPort));
  const socket = tls
    ? await new Promise<import("node:tls").TLSSocket>((resolve, reject) => {
        const s = tlsConnect({
          socket: raw,
          servername: name,
          ca: tls.caPem,
          ALPNProtocols: ["h2"],
        });
        s.once("secureConnect", () => resolve(s)).once("error", reject);
      })
    : raw;
  const session = h2connect(`${tls ? "https" : "http"}://${name}:${port}`, {
    createConnection: () => socket as never,
  });
  session.on("error", () => undefined);
  return session;
}

export interface H2Reply {
  status: number;
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders | undefined;
  body: Buffer;
}

/** One request on a guest session; resolves when the response (and trailers) are complete. */
export function h2Request(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  body?: Buffer | string,
): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request(
      { ":method": "GET", ":path": "/", ...headers },
      {
        endStream: body === undefined,
      },
    );
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    req.on("response", (h) => (head = h));
    req.on("trailers", (t) => (trailers = t));
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () =>
      resolve({
        status: Number(head[":status"]),
        headers: head,
        trailers,
        body: Buffer.concat(chunks),
      }),
    );
    req.on("error", reject);
    req.on("close", () => {
      if (req.rstCode !== constants.NGHTTP2_NO_ERROR)
        reject(new Error(`stream reset with code ${req.rstCode}`));
    });
    if (body !== undefined) req.end(body);
  });
}
