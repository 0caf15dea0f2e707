/**
 * Real clients against the proxy without a VM: a loopback listener hands each accepted socket
 * to InterceptUpstream as a guest flow (to the synthetic address of `api.test`), and the host's
 * curl (OpenSSL) talks HTTPS/HTTP to it, trusting only the intercept CA. Skipped without curl.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { InterceptUpstream } from "../../src/net/intercept/index.js";
import { createCa } from "../../src/net/tls/index.js";
import { isDenied } from "../../src/net/upstream.js";
import {
  listen,
  settle,
  startUpstreams,
  testProxy,
  type Upstreams,
} from "./net-intercept-guest.js";

const run = promisify(execFile);
const ca = createCa();
let up: Upstreams;
let dir: string;
let haveCurl = true;

before(async () => {
  up = await startUpstreams();
  dir = await mkdtemp(join(tmpdir(), "wl-curl-"));
  await writeFile(join(dir, "ca.pem"), ca.certPem);
  haveCurl = await run("curl", ["--version"]).then(
    () => true,
    () => false,
  );
});
after(async () => {
  up.close();
  await rm(dir, { recursive: true, force: true });
});

/** A TCP front door whose connections become guest flows to `name`:`port` in the proxy. */
async function frontDoor(p: InterceptUpstream, name: string, port: number): Promise<Server> {
  const [ip] = await p.resolveIpv4(name);
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    const result = p.connectTcp(ip!, port, {
      onConnect: () => undefined,
      onData: (c) => {
        if (!sock.write(c)) flow.pause();
      },
      onEnd: () => sock.end(),
      onDrain: () => undefined,
      onError: () => sock.destroy(),
    });
    if (isDenied(result)) return void sock.destroy();
    const flow = result;
    sock.on("drain", () => flow.resume());
    sock.on("data", (c: Buffer) => flow.write(c, () => undefined));
    sock.on("end", () => flow.end());
    sock.on("close", () => flow.destroy());
    sock.on("error", () => flow.destroy());
  });
  await listen(server as never);
  return server;
}

test("curl (OpenSSL) fetches HTTPS and HTTP through the proxy; a blocked host gets 403", async (t) => {
  if (!haveCurl) return t.skip("no curl on this host");
  const { p, events } = testProxy(up, ca, { allowedHosts: ["api.test"] });
  const https = await frontDoor(p, "api.test", up.httpsPort);
  const http = await frontDoor(p, "api.test", up.httpPort);
  const blocked = await frontDoor(p, "other.test", up.httpsPort);
  const portOf = (s: Server) => (s.address() as { port: number }).port;
  try {
    const curl = (url: string, front: Server, name: string, port: number, extra: string[] = []) =>
      run("curl", [
        "-sS",
        ...extra,
        "--cacert",
        join(dir, "ca.pem"),
        "--connect-to",
        `${name}:${port}:127.0.0.1:${portOf(front)}`,
        "-w",
        "\\n%{http_code} %{http_version}",
        url,
      ]);
    // curl offers h2 by ALPN, so the proxy speaks HTTP/2 to it; the upstream is HTTP/1.1 only.
    const a = await curl(`https://api.test:${up.httpsPort}/curl`, https, "api.test", up.httpsPort);
    assert.match(a.stdout, /"url":"\/curl"/);
    assert.match(a.stdout, /\n200 2$/);
    // A client that speaks only HTTP/1.1 keeps it.
    const a1 = await curl(
      `https://api.test:${up.httpsPort}/curl1`,
      https,
      "api.test",
      up.httpsPort,
      ["--http1.1"],
    );
    assert.match(a1.stdout, /\n200 1\.1$/);
    const b = await curl(`http://api.test:${up.httpPort}/plain`, http, "api.test", up.httpPort);
    assert.match(b.stdout, /\n200 1\.1$/);
    const c = await curl(
      `https://other.test:${up.httpsPort}/`,
      blocked,
      "other.test",
      up.httpsPort,
    );
    assert.match(c.stdout, /Blocked by policy/);
    assert.match(c.stdout, /\n403 2$/);
    // Without the CA, curl refuses the certificate and says so with an alert: an event.
    await assert.rejects(
      run("curl", [
        "-sS",
        "--connect-to",
        `api.test:${up.httpsPort}:127.0.0.1:${portOf(https)}`,
        `https://api.test:${up.httpsPort}/`,
      ]),
      /certificate/i,
    );
    await settle(events, 5);
    assert.deepEqual(
      events.map((e) => [e.scheme, e.status, e.code]),
      [
        ["https", 200, undefined],
        ["https", 200, undefined],
        ["http", 200, undefined],
        ["https", 403, "host_not_allowed"],
        ["https", 400, "invalid_request"],
      ],
    );
  } finally {
    for (const s of [https, http, blocked]) s.close();
    p.close();
  }
});
