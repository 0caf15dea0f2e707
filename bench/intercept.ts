// Intercept-mode proxy throughput, host side only (no VM): an HTTPS download through
// InterceptUpstream (guest TLS terminated, request forwarded over a second TLS connection)
// against the baseline of one Node TLS download over loopback in the same process. The proxy
// does twice the crypto of the baseline, so ~50% is the ceiling it is measured against.
// JSON on stdout. Run alone: `node --import tsx bench/intercept.ts`.
import { request as httpsRequest } from "node:https";
import { request, type IncomingMessage } from "node:http";
import { pathToFileURL } from "node:url";
import type { InterceptUpstream } from "../src/net/intercept/index.js";
import { createCa } from "../src/net/tls/index.js";
import {
  guestSocket,
  startUpstreams,
  testProxy,
  type Upstreams,
} from "../test/unit/net-intercept-guest.js";

const MB = 1024 * 1024;
const BYTES = 256 * MB;
const RUNS = 3;
const round = (n: number): number => Math.round(n * 100) / 100;
const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

function drain(res: IncomingMessage): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    res.on("data", (c: Buffer) => (n += c.length));
    res.on("end", () => resolve(n));
    res.on("error", reject);
  });
}

async function timedMBps(fetch: () => Promise<number>): Promise<number> {
  const t = process.hrtime.bigint();
  const n = await fetch();
  if (n !== BYTES) throw new Error(`got ${n} of ${BYTES} bytes`);
  return BYTES / MB / (Number(process.hrtime.bigint() - t) / 1e9);
}

/** Baseline: the same server, fetched directly with Node's HTTPS client. */
function direct(up: Upstreams): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        port: up.httpsPort,
        servername: "api.test",
        path: `/big?bytes=${BYTES}`,
        ca: up.upstreamCaPem,
        agent: false,
      },
      (res) => drain(res).then(resolve, reject),
    );
    req.on("error", reject);
    req.end();
  });
}

async function intercepted(up: Upstreams, proxy: InterceptUpstream, caPem: string, tls: boolean) {
  const port = tls ? up.httpsPort : up.httpPort;
  const socket = await guestSocket(proxy, { name: "api.test", port, tls, caPem });
  return new Promise<number>((resolve, reject) => {
    const req = request(
      {
        createConnection: () => socket as never,
        host: "api.test",
        port,
        path: `/big?bytes=${BYTES}`,
      },
      (res) =>
        drain(res).then((n) => {
          socket.destroy();
          resolve(n);
        }, reject),
    );
    req.on("error", reject);
    req.end();
  });
}

export async function interceptBench(log: (m: string) => void): Promise<Record<string, unknown>> {
  const up = await startUpstreams();
  const ca = createCa();
  const { p: proxy } = testProxy(up, ca);
  try {
    const baseline: number[] = [];
    const https: number[] = [];
    const http: number[] = [];
    // Interleaved, so a change in machine load hits both sides alike.
    for (let i = 0; i < RUNS; i++) {
      log(`intercept: run ${i + 1}/${RUNS}`);
      baseline.push(await timedMBps(() => direct(up)));
      https.push(await timedMBps(() => intercepted(up, proxy, ca.certPem, true)));
      http.push(await timedMBps(() => intercepted(up, proxy, ca.certPem, false)));
    }
    return {
      transferBytes: BYTES,
      baselineNodeTlsLoopbackMBps: round(median(baseline)),
      interceptedHttpsMBps: round(median(https)),
      interceptedHttpMBps: round(median(http)),
      ratioInterceptedHttpsVsBaseline: round(median(https) / median(baseline)),
      samples: { baseline: baseline.map(round), https: https.map(round), http: http.map(round) },
    };
  } finally {
    proxy.close();
    up.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const result = await interceptBench((m) => process.stderr.write(`bench: ${m}\n`));
  process.stdout.write(`${JSON.stringify({ intercept: result }, null, 2)}\n`);
}
