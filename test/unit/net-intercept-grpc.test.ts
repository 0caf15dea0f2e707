/**
 * gRPC through the intercept proxy with a real gRPC implementation on both ends (grpc-go,
 * test/fixtures/grpc-probe): unary, server-streaming and bidirectional calls, headers and
 * trailers checked by the client. The "guest" is the probe's client on a loopback port bridged
 * into an intercepted flow, as the userspace stack would hand it over; upstream is the probe's
 * server. Over TLS (ALPN h2 toward the guest, verified TLS upstream) and over h2c.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  InterceptUpstream,
  PASS_THROUGH_POLICY,
  type NetworkEventInfo,
} from "../../src/net/intercept/index.js";
import { EgressPolicy } from "../../src/net/policy/index.js";
import { createCa } from "../../src/net/tls/index.js";
import { guestDial, settle } from "./net-intercept-guest.js";

const run = promisify(execFile);
const SOURCE = join(import.meta.dirname, "../fixtures/grpc-probe");
// Debian's golang-google-grpc-dev puts grpc-go here (GOPATH mode, no module download).
const GO_ENV = { ...process.env, GOPATH: "/usr/share/gocode", GO111MODULE: "off" };
const haveGrpcGo =
  spawnSync("go", ["version"]).status === 0 &&
  existsSync("/usr/share/gocode/src/google.golang.org/grpc");
const skip = haveGrpcGo ? false : "needs go and golang-google-grpc-dev";

const dir = mkdtempSync(join(tmpdir(), "wl-grpc-"));
let probe = "";
let server: ChildProcess | undefined;
let serverPort = 0;
let plainServer: ChildProcess | undefined;
let plainPort = 0;
let upstreamCertPem = "";
const bridges: Server[] = [];
const ca = createCa();

/** Builds the probe once per source version (cached in the temp dir across runs). */
async function buildProbe(): Promise<string> {
  const hash = createHash("sha256")
    .update(readFileSync(join(SOURCE, "main.go")))
    .digest("hex")
    .slice(0, 16);
  const bin = join(tmpdir(), `wl-grpc-probe-${hash}`);
  if (existsSync(bin)) return bin;
  const tmp = `${bin}.${process.pid}`;
  await run("go", ["build", "-o", tmp, "."], { cwd: SOURCE, env: GO_ENV, timeout: 600_000 });
  await run("mv", [tmp, bin]);
  return bin;
}

function startServer(args: string[]): Promise<[ChildProcess, number]> {
  return new Promise((resolve, reject) => {
    const child = spawn(probe, ["server", ...args], { stdio: ["ignore", "pipe", "inherit"] });
    child.once("error", reject);
    child.stdout.on("data", (c: Buffer) => {
      const m = /listening (\d+)/.exec(c.toString());
      if (m) resolve([child, Number(m[1])]);
    });
  });
}

before(
  async () => {
    if (!haveGrpcGo) return;
    probe = await buildProbe();
    // Upstream's certificate for api.test, self-signed; the proxy trusts it as upstream CA.
    const cert = join(dir, "up.pem");
    const key = join(dir, "up-key.pem");
    await run("openssl", [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
      ...["-subj", "/CN=api.test", "-addext", "subjectAltName=DNS:api.test", "-days", "1"],
      ...["-keyout", key, "-out", cert],
    ]);
    upstreamCertPem = readFileSync(cert, "utf8");
    writeFileSync(join(dir, "guest-ca.pem"), ca.certPem);
    [server, serverPort] = await startServer(["-cert", cert, "-key", key]);
    [plainServer, plainPort] = await startServer([]);
  },
  { timeout: 660_000 },
);

after(() => {
  server?.kill();
  plainServer?.kill();
  for (const b of bridges) b.close();
  rmSync(dir, { recursive: true, force: true });
});

function proxy(allowedHosts: string[]) {
  const events: NetworkEventInfo[] = [];
  const p = new InterceptUpstream({
    policy: new EgressPolicy({ allowedHosts, allowPrivateHosts: true }),
    httpPolicy: PASS_THROUGH_POLICY,
    ca,
    upstreamCaPems: [upstreamCertPem],
    resolveOverrides: new Map([["api.test", "127.0.0.1"]]),
    onEvent: (e) => events.push(e),
  });
  return { p, events };
}

/** A loopback port whose connections become guest flows to api.test:`port` on the proxy. */
async function bridge(p: InterceptUpstream, port: number): Promise<number> {
  const [ip] = await p.resolveIpv4("api.test");
  const b = createServer((socket) => {
    guestDial(p, ip ?? "", port).then(
      (flow) => {
        socket.pipe(flow).pipe(socket);
        socket.on("error", () => flow.destroy());
        flow.on("error", () => socket.destroy());
      },
      () => socket.destroy(),
    );
  });
  bridges.push(b);
  await new Promise<void>((resolve) => b.listen(0, "127.0.0.1", resolve));
  return (b.address() as AddressInfo).port;
}

async function client(args: string[]): Promise<{ code: number; out: string }> {
  const env = { ...process.env, SSL_CERT_FILE: join(dir, "guest-ca.pem") };
  return new Promise((resolve) => {
    execFile(probe, ["client", ...args], { env, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

test(
  "gRPC unary, server-streaming and bidi calls work through TLS interception",
  { skip },
  async () => {
    const { p, events } = proxy(["api.test"]);
    try {
      const port = await bridge(p, serverPort);
      const r = await client([
        "-target",
        `api.test:${serverPort}`,
        "-connect",
        `127.0.0.1:${port}`,
      ]);
      assert.equal(r.code, 0, `probe client failed: ${r.out}`);
      assert.match(r.out, /unary ok\nserver-stream ok 20\nbidi ok 5/);
      await settle(events, 3);
      const calls = events.map((e) => e.url).sort();
      assert.deepEqual(calls, [
        `https://api.test:${serverPort}/probe.Echo/Bidi`,
        `https://api.test:${serverPort}/probe.Echo/ServerStream`,
        `https://api.test:${serverPort}/probe.Echo/Unary`,
      ]);
      assert.ok(events.every((e) => !e.blocked && e.status === 200));
    } finally {
      p.close();
    }
  },
);

test("gRPC over h2c (prior knowledge) works through interception", { skip }, async () => {
  const { p } = proxy(["api.test"]);
  try {
    const port = await bridge(p, plainPort);
    const r = await client([
      ...["-target", `api.test:${plainPort}`, "-connect", `127.0.0.1:${port}`],
      "-plaintext",
    ]);
    assert.equal(r.code, 0, `probe client failed: ${r.out}`);
    assert.match(r.out, /bidi ok 5/);
  } finally {
    p.close();
  }
});

test("a gRPC call to a host outside the allowlist is refused", { skip }, async () => {
  const { p, events } = proxy(["other.test"]);
  try {
    const port = await bridge(p, serverPort);
    const r = await client(["-target", `api.test:${serverPort}`, "-connect", `127.0.0.1:${port}`]);
    assert.notEqual(r.code, 0);
    assert.ok(events.some((e) => e.blocked));
  } finally {
    p.close();
  }
});
