// The far ends of the intercept bench, on a worker thread of their own so that the proxy's
// thread does only the proxy's work: the upstream HTTPS server (a real server elsewhere), and
// the "guest" TLS client (in a sandbox its decryption runs in the VM, not on the host).
import { request as httpsRequest } from "node:https";
import { request, type IncomingMessage } from "node:http";
import { connect as tlsConnect } from "node:tls";
import { connect as netConnect } from "node:net";
import { parentPort } from "node:worker_threads";
import { startUpstreams } from "../test/unit/net-intercept-guest.js";
import { threadCpuSeconds } from "./thread-cpu.js";

export type PeerRequest =
  | { kind: "direct"; bytes: number }
  | { kind: "guest"; bytes: number; bridgePort: number; tls: boolean; caPem: string };

export interface PeerResult {
  bytes: number;
  wallS: number;
  /** CPU seconds of this worker thread (server + client) during the transfer. */
  cpuS: number;
  /** TLS suites: the client's connection (direct, or the guest's to the proxy), the server's. */
  clientSuite?: string;
  serverSuite?: string;
}

function drain(res: IncomingMessage): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    res.on("data", (c: Buffer) => (n += c.length));
    res.on("end", () => resolve(n));
    res.on("error", reject);
  });
}

const up = await startUpstreams();

let clientSuite: string | undefined;

async function direct(bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        port: up.httpsPort,
        servername: "api.test",
        path: `/big?bytes=${bytes}`,
        ca: up.upstreamCaPem,
        agent: false,
      },
      (res) => {
        clientSuite = (res.socket as import("node:tls").TLSSocket).getCipher().name;
        drain(res).then(resolve, reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

async function guest(r: Extract<PeerRequest, { kind: "guest" }>): Promise<number> {
  const raw = netConnect(r.bridgePort, "127.0.0.1");
  await new Promise<void>((resolve, reject) => raw.once("connect", resolve).once("error", reject));
  const socket = r.tls
    ? await new Promise<import("node:tls").TLSSocket>((resolve, reject) => {
        const s = tlsConnect({
          socket: raw,
          servername: "api.test",
          ca: r.caPem,
          ALPNProtocols: ["http/1.1"],
        });
        s.once("secureConnect", () => resolve(s)).once("error", reject);
      })
    : raw;
  clientSuite = r.tls ? (socket as import("node:tls").TLSSocket).getCipher().name : undefined;
  const port = r.tls ? up.httpsPort : up.httpPort;
  try {
    return await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          createConnection: () => socket as never,
          host: "api.test",
          port,
          path: `/big?bytes=${r.bytes}`,
        },
        (res) => drain(res).then(resolve, reject),
      );
      req.on("error", reject);
      req.end();
    });
  } finally {
    socket.destroy();
  }
}

parentPort?.postMessage({
  httpPort: up.httpPort,
  httpsPort: up.httpsPort,
  caPem: up.upstreamCaPem,
});
parentPort?.on("message", (r: PeerRequest | "close") => {
  if (r === "close") {
    up.close();
    parentPort?.close();
    return;
  }
  const cpu0 = threadCpuSeconds();
  const t0 = process.hrtime.bigint();
  (r.kind === "direct" ? direct(r.bytes) : guest(r)).then(
    (bytes) =>
      parentPort?.postMessage({
        bytes,
        wallS: Number(process.hrtime.bigint() - t0) / 1e9,
        cpuS: threadCpuSeconds() - cpu0,
        ...(clientSuite ? { clientSuite } : {}),
        ...(up.lastSuite() ? { serverSuite: up.lastSuite() } : {}),
      } satisfies PeerResult),
    (err: Error) => parentPort?.postMessage({ error: err.message }),
  );
});
