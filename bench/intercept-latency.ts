// Where the time of a new intercepted HTTPS connection goes, host side only (no VM): a small
// GET on a new TLS connection through InterceptUpstream against the same GET on a new Node TLS
// connection straight to the server (same process, same run, interleaved), plus the parts:
// issuing a leaf certificate for a name not seen before, and the proxy's upstream handshake
// (a guest sending `Connection: close` vs one keeping its connection: the proxy keeps its
// upstream connection alive either way). JSON on stdout:
//   node --import tsx bench/intercept-latency.ts [--samples 30]
import { request as httpsRequest } from "node:https";
import { pathToFileURL } from "node:url";
import { createCa, LeafCertificates } from "../src/net/tls/index.js";
import {
  guestRequest,
  startUpstreams,
  testProxy,
  type Upstreams,
} from "../test/unit/net-intercept-guest.js";

const round = (n: number): number => Math.round(n * 100) / 100;
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};
const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

/** Baseline: a new TLS connection from Node's HTTPS client straight to the server. */
function direct(up: Upstreams): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        port: up.httpsPort,
        servername: "api.test",
        path: "/",
        ca: up.upstreamCaPem,
        agent: false,
      },
      (res) => {
        res.resume();
        res.on("end", resolve);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

export async function interceptLatencyBench(samples: number, log: (m: string) => void) {
  const up = await startUpstreams();
  const ca = createCa();
  const { p } = testProxy(up, ca);
  const rows: Record<string, number>[] = [];
  const leaves = new LeafCertificates(ca);
  try {
    // Warm-up: the leaf for api.test, Node's TLS and HTTP code paths.
    await direct(up);
    const viaProxy = (close: boolean) =>
      guestRequest(p, {
        name: "api.test",
        port: up.httpsPort,
        tls: true,
        caPem: ca.certPem,
        headers: { connection: close ? "close" : "keep-alive" },
      });
    await viaProxy(false);
    for (let i = 0; i < samples; i++) {
      let t = process.hrtime.bigint();
      await direct(up);
      const directMs = ms(t);
      t = process.hrtime.bigint();
      await viaProxy(false);
      const keptMs = ms(t);
      t = process.hrtime.bigint();
      await viaProxy(true);
      const closeMs = ms(t);
      t = process.hrtime.bigint();
      leaves.contextFor(`name-${i}.test`);
      const leafMs = ms(t);
      rows.push({ directMs, keptMs, closeMs, leafMs });
    }
    const col = (k: string) => round(median(rows.map((r) => r[k] ?? NaN)));
    const result = {
      samples,
      baselineDirectNewTlsGetMs: col("directMs"),
      interceptedNewTlsGetMs: col("keptMs"),
      interceptedNewTlsGetConnectionCloseMs: col("closeMs"),
      extraMs: round(median(rows.map((r) => (r.keptMs ?? NaN) - (r.directMs ?? NaN)))),
      extraConnectionCloseMs: round(
        median(rows.map((r) => (r.closeMs ?? NaN) - (r.directMs ?? NaN))),
      ),
      leafIssueForNewNameMs: col("leafMs"),
    };
    log(`intercept latency: ${JSON.stringify(result)}`);
    return result;
  } finally {
    p.close();
    up.close();
  }
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const result = await interceptLatencyBench(Number(arg("--samples") ?? 30), (m) =>
    process.stderr.write(`bench: ${m}\n`),
  );
  process.stdout.write(`${JSON.stringify({ interceptLatency: result }, null, 2)}\n`);
}
