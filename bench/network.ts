// Network figures: download/upload throughput and request latency from inside the VM through
// the userspace stack, against servers on 127.0.0.1, with the same client (curl) on the host
// as the baseline; open mode and intercept mode (HTTP parsed and forwarded, HTTPS terminated
// with the sandbox CA and re-encrypted upstream). JSON on stdout.
// Run alone: `node --import tsx bench/network.ts [--open-only]` (--open-only: open-mode
// download/upload against the host's loopback only, no intercept-mode sandbox).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { Sandbox } from "../src/index.js";
import { makeTestCa } from "../test/helpers/intercept-servers.js";

const MB = 1024 * 1024;
const DOWNLOAD_BYTES = 64 * MB;
const round = (n: number): number => Math.round(n * 100) / 100;
const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

function startServer(body: Buffer, tls?: { cert: string; key: string }): Promise<Server> {
  const handler = (
    req: import("node:http").IncomingMessage,
    res: import("node:http").ServerResponse,
  ) => {
    if (req.method === "PUT") {
      req.on("data", () => undefined);
      req.on("end", () => res.end("ok"));
      return;
    }
    if (req.url === "/big") {
      res.setHeader("content-length", body.length);
      res.end(body);
      return;
    }
    res.end("x");
  };
  const server = tls ? createHttpsServer(tls, handler) : createServer(handler);
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** Runs curl with these arguments wherever the figures are taken; resolves with stdout. */
type Run = (args: string[]) => Promise<string>;

/** One client placement: where curl runs and the URLs it uses there. */
interface Place {
  run: Run;
  http: string;
  https: string;
}

const speed = async (run: Run, url: string, what: "download" | "upload"): Promise<number> => {
  const args = ["-sS", "-o", "/dev/null", "-w", `%{speed_${what}}`];
  const out = await run(
    what === "upload" ? [...args, "-T", "-", `${url}/up`] : [...args, `${url}/big`],
  );
  return Number(out) / 1e6;
};

/**
 * Time per small request, by the host's clock: one curl with 41 requests minus one with 1,
 * over 40, so process start and exec overhead cancel out. (curl's own `time_total` inside a
 * TCG guest is quantized to the guest's clock tick, often 4 ms, so it is not used.)
 */
async function perRequestMs(run: Run, base: string, extra: string[]): Promise<number> {
  const timed = async (n: number): Promise<number> => {
    // curl's -o applies to one URL each: one "-o /dev/null" per URL.
    const urls = Array.from({ length: n }, () => ["-o", "/dev/null", `${base}/small`]).flat();
    const started = performance.now();
    await run(["-sS", ...extra, ...urls]);
    return performance.now() - started;
  };
  return ((await timed(41)) - (await timed(1))) / 40;
}

const CLOSE = ["-H", "Connection: close"];
const FIGURES = {
  downloadMBps: (p: Place) => speed(p.run, p.http, "download"),
  uploadMBps: (p: Place) => speed(p.run, p.http, "upload"),
  httpsDownloadMBps: (p: Place) => speed(p.run, p.https, "download"),
  keepAliveRequestMs: (p: Place) => perRequestMs(p.run, p.http, []),
  newConnectionRequestMs: (p: Place) => perRequestMs(p.run, p.http, CLOSE),
  httpsNewConnectionRequestMs: (p: Place) => perRequestMs(p.run, p.https, CLOSE),
};
type Figures = Record<keyof typeof FIGURES, number>;

/**
 * Medians of 3 rounds; each round takes every figure in every place in turn, so a change in
 * the machine's load (shared, busy cores) hits all places alike and the ratios stay fair.
 */
async function measureInterleaved(
  places: Record<string, Place>,
  figures: Partial<typeof FIGURES>,
): Promise<Record<string, Figures>> {
  const samples: Record<string, Record<string, number[]>> = {};
  for (let round = 0; round < 3; round++) {
    for (const [figure, take] of Object.entries(figures)) {
      for (const [name, place] of Object.entries(places)) {
        ((samples[name] ??= {})[figure] ??= []).push(await take(place));
      }
    }
  }
  return Object.fromEntries(
    Object.entries(samples).map(([name, figs]) => [
      name,
      Object.fromEntries(Object.entries(figs).map(([f, xs]) => [f, round(median(xs))])) as Figures,
    ]),
  );
}

/** curl on the host, asynchronously: the server it talks to runs in this same process. */
function hostCurl(args: string[], stdinZeroBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("curl", args, { stdio: ["pipe", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`curl exited ${code}`)),
    );
    child.stdin.end(Buffer.alloc(stdinZeroBytes));
  });
}

/** Item 5 of issue 17 alone: open-mode download and upload against the host's loopback. */
const OPEN_ONLY = { downloadMBps: FIGURES.downloadMBps, uploadMBps: FIGURES.uploadMBps };

/** `openOnly`: no intercept-mode sandbox, only the open-mode transfer figures (quicker). */
export async function networkBench(
  log: (m: string) => void,
  openOnly = false,
): Promise<Record<string, unknown>> {
  const body = randomBytes(DOWNLOAD_BYTES);
  const server = await startServer(body);
  const port = (server.address() as AddressInfo).port;
  const caDir = mkdtempSync(join(tmpdir(), "wheellock-bench-ca-"));
  const ca = makeTestCa(caDir, ["bench.test"]);
  const tlsServer = await startServer(body, ca);
  const tlsPort = (tlsServer.address() as AddressInfo).port;
  try {
    const resolveOverrides = { "bench.test": "127.0.0.1" };
    log("network: starting an open-mode and an intercept-mode sandbox");
    await using open = await Sandbox.create({ allowPrivateHosts: true, resolveOverrides });
    await open.writeFile("/tmp/bench-ca.pem", readFileSync(ca.caPath));
    await using intercept = openOnly
      ? undefined
      : await Sandbox.create({
          allowPrivateHosts: true,
          resolveOverrides,
          allowedHosts: ["bench.test"],
          upstreamCa: [ca.caPath],
        });
    const quote = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
    const inGuest =
      (sb: Sandbox, extra: string[]): Run =>
      async (args) => {
        // Uploads stream 64 MB of zeros from stdin, in the guest as on the host.
        const feed = args.includes("-T") ? `head -c ${DOWNLOAD_BYTES} /dev/zero | ` : "";
        const r = await sb.exec(`${feed}curl ${[...extra, ...args].map(quote).join(" ")}`);
        if (r.exitCode !== 0) throw new Error(`guest curl failed: ${r.stderr}`);
        return r.stdout;
      };
    const http = `http://bench.test:${port}`;
    const https = `https://bench.test:${tlsPort}`;
    log("network: measuring host, open mode and intercept mode in turn");
    const places: Record<string, Place> = {
      host: {
        run: (args) =>
          hostCurl(
            [
              "--cacert",
              ca.caPath,
              "--resolve",
              `bench.test:${port}:127.0.0.1`,
              "--resolve",
              `bench.test:${tlsPort}:127.0.0.1`,
              ...args,
            ],
            args.includes("-T") ? DOWNLOAD_BYTES : 0,
          ),
        http,
        https,
      },
      guestOpenMode: { run: inGuest(open, ["--cacert", "/tmp/bench-ca.pem"]), http, https },
    };
    // The intercept CA is in the guest's env; the proxy checks upstream against the test CA.
    if (intercept) places.guestIntercept = { run: inGuest(intercept, []), http, https };
    const figures = await measureInterleaved(places, openOnly ? OPEN_ONLY : FIGURES);
    const { host, guestOpenMode: o, guestIntercept: i } = figures as Record<string, Figures>;
    return {
      accel: open.accel,
      transferBytes: DOWNLOAD_BYTES,
      ...figures,
      downloadRatio: round((o?.downloadMBps ?? NaN) / (host?.downloadMBps ?? NaN)),
      uploadRatio: round((o?.uploadMBps ?? NaN) / (host?.uploadMBps ?? NaN)),
      interceptVsOpenHttpDownload: round((i?.downloadMBps ?? NaN) / (o?.downloadMBps ?? NaN)),
      interceptVsOpenHttpsDownload: round(
        (i?.httpsDownloadMBps ?? NaN) / (o?.httpsDownloadMBps ?? NaN),
      ),
      interceptAddedKeepAliveRequestMs: round(
        (i?.keepAliveRequestMs ?? NaN) - (o?.keepAliveRequestMs ?? NaN),
      ),
      interceptAddedNewConnectionRequestMs: round(
        (i?.newConnectionRequestMs ?? NaN) - (o?.newConnectionRequestMs ?? NaN),
      ),
      interceptAddedHttpsRequestMs: round(
        (i?.httpsNewConnectionRequestMs ?? NaN) - (o?.httpsNewConnectionRequestMs ?? NaN),
      ),
    };
  } finally {
    server.close();
    tlsServer.close();
    rmSync(caDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const result = await networkBench(
    (m) => process.stderr.write(`bench: ${m}\n`),
    process.argv.includes("--open-only"),
  );
  process.stdout.write(`${JSON.stringify({ network: result }, null, 2)}\n`);
}
