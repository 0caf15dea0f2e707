// Intercept-mode proxy throughput, host side only (no VM): a 256 MiB HTTPS download through
// InterceptUpstream (guest TLS terminated with a leaf from the local CA, request forwarded over
// a second, verified TLS connection), against the baseline of one Node TLS download over
// loopback, client and server on one thread. The upstream server and the "guest" TLS client run
// on a worker thread (bench/intercept-peer.ts): in a sandbox the guest's decryption runs in the
// VM and the server is elsewhere, so the proxy's thread does only the proxy's work, plus a
// loopback socket standing in for the network stack. Figures: wall-clock MB/s (guest side) and
// CPU seconds of the proxy's thread per GB, each against the baseline in the same round.
// JSON on stdout. Run alone: `node --import tsx bench/intercept.ts`.
import { createServer, type Server, type Socket } from "node:net";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { InterceptUpstream, PASS_THROUGH_POLICY } from "../src/net/intercept/index.js";
import { EgressPolicy } from "../src/net/policy/index.js";
import { createCa } from "../src/net/tls/index.js";
import { isDenied, type UpstreamTcp } from "../src/net/upstream.js";
import type { PeerRequest, PeerResult } from "./intercept-peer.js";
import { threadCpuSeconds } from "./thread-cpu.js";

const MB = 1024 * 1024;
const BYTES = 256 * MB;
const ROUNDS = 5;
const STACK_SEND_BUFFER_BYTES = 1 << 20;
const round = (n: number): number => Math.round(n * 100) / 100;
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};

/** The peer worker: one request at a time. */
class Peer {
  // A TypeScript entry needs tsx registered inside the worker too (hooks are per thread).
  private readonly worker = new Worker(
    `import("tsx/esm/api").then((tsx) => { tsx.register(); ` +
      `return import(${JSON.stringify(new URL("./intercept-peer.ts", import.meta.url).href)}); })`,
    { eval: true },
  );
  readonly ready: Promise<{ httpPort: number; httpsPort: number; caPem: string }>;

  constructor() {
    this.ready = new Promise((resolve, reject) => {
      this.worker.once("message", resolve);
      this.worker.once("error", reject);
    });
  }

  run(r: PeerRequest): Promise<PeerResult> {
    return new Promise((resolve, reject) => {
      this.worker.once("message", (m: PeerResult | { error: string }) =>
        "error" in m ? reject(new Error(m.error)) : resolve(m),
      );
      this.worker.postMessage(r);
    });
  }

  close(): Promise<number> {
    this.worker.postMessage("close");
    return this.worker.terminate();
  }
}

/**
 * Stands in for the userspace stack: each connection to this loopback listener becomes a guest
 * flow toward `port` on the proxy, with the stack's backpressure (pause while the socket's
 * write buffer is full).
 */
async function bridge(proxy: InterceptUpstream, ip: string, port: number): Promise<Server> {
  const server = createServer((socket: Socket) => {
    const held: { flow?: UpstreamTcp } = {};
    const opened = proxy.connectTcp(ip, port, {
      onConnect: () => undefined,
      onData: (chunk) => {
        socket.write(chunk);
        // The stack holds up to 1 MiB toward the guest per flow before it pauses the proxy.
        if (socket.writableLength > STACK_SEND_BUFFER_BYTES) held.flow?.pause();
      },
      onEnd: () => socket.end(),
      onDrain: () => undefined,
      onError: () => socket.destroy(),
    });
    if (isDenied(opened)) return void socket.destroy();
    held.flow = opened;
    socket.on("drain", () => opened.resume());
    socket.on("data", (c: Buffer) => {
      socket.pause();
      opened.write(c, () => socket.resume());
    });
    socket.on("end", () => opened.end());
    socket.on("close", () => opened.destroy());
    socket.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return server;
}

const portOf = (s: Server): number => (s.address() as import("node:net").AddressInfo).port;

export async function interceptBench(log: (m: string) => void): Promise<Record<string, unknown>> {
  const peer = new Peer();
  const ports = await peer.ready;
  const ca = createCa();
  const proxy = new InterceptUpstream({
    policy: new EgressPolicy({ allowedHosts: ["api.test"], allowPrivateHosts: true }),
    httpPolicy: PASS_THROUGH_POLICY,
    ca,
    upstreamCaPems: [ports.caPem],
    resolveOverrides: new Map([["api.test", "127.0.0.1"]]),
  });
  const [ip] = await proxy.resolveIpv4("api.test");
  const httpsBridge = await bridge(proxy, ip ?? "", ports.httpsPort);
  const httpBridge = await bridge(proxy, ip ?? "", ports.httpPort);
  // Which TLS 1.3 suite each leg settled on: the baseline is Node's defaults at both ends.
  const suites: Record<string, string | undefined> = {};
  const intercepted = async (tls: boolean) => {
    const cpu0 = threadCpuSeconds();
    const r = await peer.run({
      kind: "guest",
      bytes: BYTES,
      bridgePort: portOf(tls ? httpsBridge : httpBridge),
      tls,
      caPem: ca.certPem,
    });
    if (r.bytes !== BYTES) throw new Error(`got ${r.bytes} of ${BYTES} bytes`);
    if (tls) suites.guestToProxy = r.clientSuite;
    if (tls) suites.proxyToUpstream = r.serverSuite;
    return {
      mbps: BYTES / MB / r.wallS,
      proxyCpuSPerGB: ((threadCpuSeconds() - cpu0) / BYTES) * 1024 * MB,
    };
  };
  try {
    const rows: Record<string, number>[] = [];
    // Interleaved, so a change in machine load hits both sides alike.
    for (let i = 0; i < ROUNDS; i++) {
      const base = await peer.run({ kind: "direct", bytes: BYTES });
      suites.baseline = base.clientSuite;
      const https = await intercepted(true);
      const http = await intercepted(false);
      const row = {
        baselineMBps: BYTES / MB / base.wallS,
        baselineCpuSPerGB: (base.cpuS / BYTES) * 1024 * MB,
        httpsMBps: https.mbps,
        httpsProxyCpuSPerGB: https.proxyCpuSPerGB,
        httpMBps: http.mbps,
        httpProxyCpuSPerGB: http.proxyCpuSPerGB,
      };
      log(
        `intercept: round ${i + 1}/${ROUNDS} ${JSON.stringify(row, (_k, v: unknown) => (typeof v === "number" ? round(v) : v))}`,
      );
      rows.push(row);
    }
    const col = (k: string) => round(median(rows.map((r) => r[k] ?? NaN)));
    const ratio = (f: (r: Record<string, number>) => number) => round(median(rows.map(f)));
    return {
      transferBytes: BYTES,
      rounds: ROUNDS,
      tlsSuites: suites,
      baselineNodeTlsLoopbackMBps: col("baselineMBps"),
      interceptedHttpsMBps: col("httpsMBps"),
      interceptedHttpMBps: col("httpMBps"),
      ratioInterceptedHttpsVsBaseline: ratio((r) => (r.httpsMBps ?? NaN) / (r.baselineMBps ?? NaN)),
      cpuSecondsPerGB: {
        baselineNodeTlsLoopback: col("baselineCpuSPerGB"),
        proxyHttps: col("httpsProxyCpuSPerGB"),
        proxyHttp: col("httpProxyCpuSPerGB"),
      },
      /** Baseline CPU per byte over the proxy's: the proxy's own capacity against Node TLS. */
      ratioProxyCapacityVsBaseline: ratio(
        (r) => (r.baselineCpuSPerGB ?? NaN) / (r.httpsProxyCpuSPerGB ?? NaN),
      ),
    };
  } finally {
    proxy.close();
    httpsBridge.close();
    httpBridge.close();
    await peer.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const result = await interceptBench((m) => process.stderr.write(`bench: ${m}\n`));
  process.stdout.write(`${JSON.stringify({ intercept: result }, null, 2)}\n`);
}
