/**
 * The guest side of an intercepted flow for unit tests, without frames: a Duplex whose writes
 * go to `InterceptUpstream.connectTcp`'s flow and which receives what the proxy sends, with
 * the same backpressure the stack applies (pause the flow while this side's buffer is full).
 * Plus the servers the tests run on 127.0.0.1 as "upstream".
 */
import { createHash } from "node:crypto";
import { createServer, request, type IncomingMessage, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { Duplex } from "node:stream";
import { after, before } from "node:test";
import { connect as tlsConnect } from "node:tls";
import {
  InterceptUpstream,
  PASS_THROUGH_POLICY,
  type InterceptUpstreamOptions,
  type NetworkEventInfo,
} from "../../src/net/intercept/index.js";
import { EgressPolicy } from "../../src/net/policy/index.js";
import { createCa, LeafCertificates, type CaMaterial } from "../../src/net/tls/index.js";
import type { SynStamp } from "../../src/net/syn-stamp.js";
import { isDenied } from "../../src/net/upstream.js";

export function guestDial(
  up: InterceptUpstream,
  ip: string,
  port: number,
  srcPort?: number,
  /** What the guest's SYN said about who connected (needs `srcPort`). */
  stamp?: SynStamp,
  /** Sees each chunk the proxy hands the flow, as the stack would get it. */
  observe?: (chunk: Buffer) => void,
): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    let paused = false;
    const from = srcPort !== undefined ? { srcPort, ...(stamp ? { stamp } : {}) } : undefined;
    const result = up.connectTcp(
      ip,
      port,
      {
        onConnect: () => resolve(side),
        onData: (chunk) => {
          observe?.(chunk);
          if (!side.push(chunk) && !paused) {
            paused = true;
            flow.pause();
          }
        },
        onEnd: () => side.push(null),
        onDrain: () => undefined,
        onError: (err) => {
          side.destroy(err);
          reject(err);
        },
      },
      from,
    );
    if (isDenied(result)) return reject(new Error(result.denied));
    const flow = result;
    const side = new Duplex({
      allowHalfOpen: true,
      // As much as the stack holds toward the guest per flow (its send buffer).
      readableHighWaterMark: 1 << 20,
      read() {
        if (paused) {
          paused = false;
          flow.resume();
        }
      },
      write(chunk: Buffer, _enc, cb) {
        flow.write(chunk, () => cb());
      },
      final(cb) {
        flow.end();
        cb();
      },
      destroy(err, cb) {
        flow.destroy();
        cb(err);
      },
    });
  });
}

export interface GuestRequest {
  name: string;
  port: number;
  tls: boolean;
  /** The intercept CA the guest trusts. */
  caPem?: string;
  servername?: string;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Read the body slowly: this many ms pause per chunk. */
  slowReadMs?: number;
  /** Instead of buffering the body, only count it. */
  countOnly?: boolean;
  /** The guest socket's local port (what attribution asks about). */
  srcPort?: number;
  /** Its SYN's stamp (with `srcPort`). */
  stamp?: SynStamp;
}

export interface GuestResponse {
  status: number;
  headers: IncomingMessage["headers"];
  body: Buffer;
  bytes: number;
}

/** The socket a guest program would get: plain, or TLS on top trusting the intercept CA. */
export async function guestSocket(up: InterceptUpstream, r: GuestRequest): Promise<Duplex> {
  const [ip] = await up.resolveIpv4(r.name);
  if (!ip) throw new Error(`no address for ${r.name}`);
  const raw = await guestDial(up, ip, r.port, r.srcPort, r.stamp);
  if (!r.tls) return raw;
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      socket: raw,
      servername: r.servername ?? r.name,
      ...(r.caPem ? { ca: r.caPem } : {}),
      ALPNProtocols: ["http/1.1"],
    });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
  });
}

export async function guestRequest(up: InterceptUpstream, r: GuestRequest): Promise<GuestResponse> {
  const socket = await guestSocket(up, r);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        createConnection: () => socket as never,
        host: r.name,
        port: r.port,
        method: r.method ?? "GET",
        path: r.path ?? "/",
        headers: r.headers ?? {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on("data", (c: Buffer) => {
          bytes += c.length;
          if (!r.countOnly) chunks.push(c);
          if (r.slowReadMs) {
            res.pause();
            setTimeout(() => res.resume(), r.slowReadMs);
          }
        });
        res.on("end", () => {
          socket.destroy();
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            bytes,
          });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(r.body);
  });
}

export function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
}

/** Body bytes the /big route has handed to its sockets so far (all servers together). */
export const bigRoute = { bytesWritten: 0 };

/** What the /pattern route serves: `n` bytes that do not repeat (a multiplicative hash of the offset). */
export function patternBytes(n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = Math.imul(i, 0x9e3779b1) >>> 24;
  return out;
}

/** What the upstream test servers do: a few routes and a WebSocket-style echo after 101. */
function routes(req: IncomingMessage, res: import("node:http").ServerResponse): void {
  const url = new URL(req.url ?? "/", "http://x");
  if (url.pathname === "/big") {
    const total = Number(url.searchParams.get("bytes") ?? 0);
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    res.writeHead(200, { "content-length": total });
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        bigRoute.bytesWritten += n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n)))
          return void res.once("drain", pump);
      }
      res.end();
    };
    return pump();
  }
  if (url.pathname === "/pattern") {
    // Bytes that differ along the body (a reused buffer shows as a mismatch), in 48 KiB writes.
    const body = patternBytes(Number(url.searchParams.get("bytes") ?? 0));
    res.writeHead(200, { "content-length": body.length });
    let at = 0;
    const pump = () => {
      while (at < body.length) {
        const piece = body.subarray(at, at + 48 * 1024);
        at += piece.length;
        if (!res.write(piece)) return void res.once("drain", pump);
      }
      res.end();
    };
    return pump();
  }
  if (url.pathname === "/redirect") {
    // Where a 3xx points is the guest's business: the proxy must not follow it.
    res.writeHead(302, { location: url.searchParams.get("to") ?? "/" });
    return void res.end();
  }
  const body: Buffer[] = [];
  req.on("data", (c: Buffer) => body.push(c));
  req.on("end", () => {
    const payload = JSON.stringify({
      method: req.method,
      url: req.url,
      headers: req.rawHeaders,
      body: Buffer.concat(body).toString(),
    });
    res.writeHead(200, { "content-type": "application/json", "x-upstream": "yes" });
    res.end(payload);
  });
}

function websocketEcho(server: Server): void {
  server.on("upgrade", (req, socket, head) => {
    if (String(req.headers.upgrade).toLowerCase() !== "websocket") {
      // Declines other upgrades (h2c): an ordinary response, delimited by closing.
      const body = JSON.stringify({ method: req.method, url: req.url });
      return void socket.end(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n${body}`);
    }
    const key = String(req.headers["sec-websocket-key"] ?? "");
    const accept = createHash("sha1")
      .update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
      .digest("base64");
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    if (head.length) socket.write(head);
    socket.pipe(socket);
  });
}

/** One request an upstream test server received: what crossed the wire to it. */
export interface UpstreamSeen {
  tls: boolean;
  url: string;
  /** Raw, in wire order: name, value, name, value, ... */
  headers: string[];
}

export interface Upstreams {
  httpPort: number;
  httpsPort: number;
  /** Every request (upgrades included) either server received, in order. */
  seen: UpstreamSeen[];
  /** The CA the HTTPS upstream's certificate chains to (not the intercept CA). */
  upstreamCaPem: string;
  /** The TLS suite of the HTTPS upstream's latest connection (Node's server defaults). */
  lastSuite(): string | undefined;
  close(): void;
}

export async function startUpstreams(): Promise<Upstreams> {
  const upstreamCa = createCa();
  const leaves = new LeafCertificates(upstreamCa);
  const plain = createServer(routes);
  const secure = createHttpsServer(
    { SNICallback: (name, cb) => cb(null, leaves.contextFor(name.toLowerCase())) },
    routes,
  );
  websocketEcho(plain);
  websocketEcho(secure);
  let lastSuite: string | undefined;
  secure.on("secureConnection", (s: import("node:tls").TLSSocket) => {
    lastSuite = s.getCipher().name;
  });
  const seen: UpstreamSeen[] = [];
  for (const [server, tls] of [
    [plain, false],
    [secure, true],
  ] as const) {
    const record = (req: IncomingMessage) =>
      seen.push({ tls, url: req.url ?? "", headers: req.rawHeaders });
    server.prependListener("request", record);
    server.prependListener("upgrade", record);
  }
  const [httpPort, httpsPort] = await Promise.all([listen(plain), listen(secure)]);
  return {
    httpPort,
    httpsPort,
    seen,
    upstreamCaPem: upstreamCa.certPem,
    lastSuite: () => lastSuite,
    close: () => {
      plain.closeAllConnections();
      secure.closeAllConnections();
      plain.close();
      secure.close();
    },
  };
}

/** Names the tests use; all resolve (host side) to 127.0.0.1. */
export const TEST_NAMES = ["api.test", "plain.test", "other.test", "echo.test", "private.test"];

export type TestProxyOptions = Partial<InterceptUpstreamOptions> & {
  allowedHosts?: string[];
  allowPrivate?: boolean;
};

/** A proxy toward `up`'s servers that trusts their CA and records its events. */
export function testProxy(up: Upstreams, ca: CaMaterial, over: TestProxyOptions = {}) {
  const events: NetworkEventInfo[] = [];
  const { allowedHosts, allowPrivate, ...rest } = over;
  const p = new InterceptUpstream({
    policy: new EgressPolicy({
      allowedHosts: allowedHosts ?? ["api.test"],
      allowPrivateHosts: allowPrivate ?? true,
    }),
    httpPolicy: PASS_THROUGH_POLICY,
    ca,
    upstreamCaPems: [up.upstreamCaPem],
    resolveOverrides: new Map(TEST_NAMES.map((n) => [n, "127.0.0.1"])),
    onEvent: (e) => events.push(e),
    ...rest,
  });
  return { p, events };
}

/** Events are reported when an exchange ends: wait (bounded) until `n` have arrived. */
export async function settle(events: NetworkEventInfo[], n = 1): Promise<void> {
  for (let i = 0; i < 200 && events.length < n; i++) await new Promise((r) => setTimeout(r, 10));
}

/**
 * The upstreams of one test file, started before its first test and closed after its last,
 * with the proxies made toward them.
 */
export function upstreamFixture(ca: CaMaterial) {
  let started: Upstreams | undefined;
  const proxies: InterceptUpstream[] = [];
  before(async () => {
    started = await startUpstreams();
  });
  after(() => {
    for (const p of proxies) p.close();
    started?.close();
  });
  const up = (): Upstreams => {
    if (started === undefined) throw new Error("upstreams not started yet (use inside a test)");
    return started;
  };
  return {
    up,
    proxy(over: TestProxyOptions = {}) {
      const made = testProxy(up(), ca, over);
      proxies.push(made.p);
      return made;
    },
  };
}
