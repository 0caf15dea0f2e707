// Network figures: download/upload throughput and request latency from inside the VM through
// the userspace stack, against servers on 127.0.0.1, with the same client (curl) on the host
// as the baseline; open mode and intercept mode (HTTP parsed and forwarded, HTTPS terminated
// with the sandbox CA and re-encrypted upstream). JSON on stdout.
// Run alone: `node --import tsx bench/network.ts`.
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

/** curl's `-w` figures for one invocation, from wherever `run` runs it. */
type Run = (args: string[]) => Promise<string>;

async function measure(run: Run, base: string) {
  const downloads: number[] = [];
  const uploads: number[] = [];
  for (let i = 0; i < 3; i++) {
    const d = await run(["-sS", "-o", "/dev/null", "-w", "%{speed_download}", `${base}/big`]);
    downloads.push(Number(d) / 1e6);
    const u = await run([
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{speed_upload}",
      "-T",
      "-",
      `${base}/up`,
    ]);
    uploads.push(Number(u) / 1e6);
  }
  // 20 small requests on one connection, then 20 with a new connection each.
  // curl's -o applies to one URL each: one "-o /dev/null" per URL keeps stdout for -w only.
  const urls = Array.from({ length: 20 }, () => ["-o", "/dev/null", `${base}/small`]).flat();
  const fmt = "%{time_total}\\n";
  const times = (out: string) =>
    out
      .trim()
      .split("\n")
      .map((t) => Number(t) * 1000);
  const reused = times(await run(["-sS", "-w", fmt, ...urls]));
  const fresh = times(await run(["-sS", "-H", "Connection: close", "-w", fmt, ...urls]));
  return {
    downloadMBps: round(median(downloads)),
    uploadMBps: round(median(uploads)),
    keepAliveRequestMs: round(median(reused.slice(1))),
    newConnectionRequestMs: round(median(fresh)),
  };
}

/** Median HTTPS download speed (MB/s) and request time on a new connection each (ms). */
async function measureTls(run: Run, base: string) {
  const downloads: number[] = [];
  for (let i = 0; i < 3; i++) {
    const d = await run(["-sS", "-o", "/dev/null", "-w", "%{speed_download}", `${base}/big`]);
    downloads.push(Number(d) / 1e6);
  }
  const urls = Array.from({ length: 10 }, () => ["-o", "/dev/null", `${base}/small`]).flat();
  const fresh = (await run(["-sS", "-H", "Connection: close", "-w", "%{time_total}\\n", ...urls]))
    .trim()
    .split("\n")
    .map((t) => Number(t) * 1000);
  return { downloadMBps: round(median(downloads)), newConnectionRequestMs: round(median(fresh)) };
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

export async function networkBench(log: (m: string) => void): Promise<Record<string, unknown>> {
  const body = randomBytes(DOWNLOAD_BYTES);
  const server = await startServer(body);
  const port = (server.address() as AddressInfo).port;
  const caDir = mkdtempSync(join(tmpdir(), "wheellock-bench-ca-"));
  const ca = makeTestCa(caDir, ["bench.test"]);
  const tlsServer = await startServer(body, ca);
  const tlsPort = (tlsServer.address() as AddressInfo).port;
  try {
    log("network: host baseline (curl on the host)");
    // Uploads stream 64 MB of zeros from stdin in both places.
    const hostRun: Run = (args) => hostCurl(args, args.includes("-T") ? DOWNLOAD_BYTES : 0);
    const host = await measure(hostRun, `http://127.0.0.1:${port}`);
    log("network: guest through the stack (open mode)");
    await using sb = await Sandbox.create({
      allowPrivateHosts: true,
      resolveOverrides: { "bench.test": "127.0.0.1" },
    });
    const quote = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
    const guestRun: Run = async (args) => {
      const feed = args.includes("-T") ? `head -c ${DOWNLOAD_BYTES} /dev/zero | ` : "";
      const r = await sb.exec(`${feed}curl ${args.map(quote).join(" ")}`);
      if (r.exitCode !== 0) throw new Error(`guest curl failed: ${r.stderr}`);
      return r.stdout;
    };
    const guest = await measure(guestRun, `http://10.0.2.2:${port}`);
    const tlsBase = `https://bench.test:${tlsPort}`;
    const hostTls = await measureTls(
      (args) =>
        hostCurl(
          ["--cacert", ca.caPath, "--resolve", `bench.test:${tlsPort}:127.0.0.1`, ...args],
          0,
        ),
      tlsBase,
    );
    await sb.writeFile("/tmp/bench-ca.pem", readFileSync(ca.caPath));
    const guestTls = await measureTls(
      (args) => guestRun(["--cacert", "/tmp/bench-ca.pem", ...args]),
      tlsBase,
    );
    await sb.close();

    log("network: guest through the intercepting proxy");
    await using ib = await Sandbox.create({
      allowPrivateHosts: true,
      resolveOverrides: { "bench.test": "127.0.0.1" },
      allowedHosts: ["bench.test"],
      upstreamCa: [ca.caPath],
    });
    const interceptRun: Run = async (args) => {
      const feed = args.includes("-T") ? `head -c ${DOWNLOAD_BYTES} /dev/zero | ` : "";
      const r = await ib.exec(`${feed}curl ${args.map(quote).join(" ")}`);
      if (r.exitCode !== 0) throw new Error(`guest curl failed: ${r.stderr}`);
      return r.stdout;
    };
    const intercept = await measure(interceptRun, `http://bench.test:${port}`);
    const interceptTls = await measureTls(interceptRun, tlsBase);
    return {
      accel: sb.accel,
      transferBytes: DOWNLOAD_BYTES,
      host,
      hostHttps: hostTls,
      guestOpenMode: guest,
      guestOpenModeHttps: guestTls,
      guestIntercept: intercept,
      guestInterceptHttps: interceptTls,
      downloadRatio: round(guest.downloadMBps / host.downloadMBps),
      uploadRatio: round(guest.uploadMBps / host.uploadMBps),
      interceptVsOpenHttpDownload: round(intercept.downloadMBps / guest.downloadMBps),
      interceptVsOpenHttpsDownload: round(interceptTls.downloadMBps / guestTls.downloadMBps),
      interceptAddedRequestMs: round(
        intercept.newConnectionRequestMs - guest.newConnectionRequestMs,
      ),
      interceptAddedHttpsRequestMs: round(
        interceptTls.newConnectionRequestMs - guestTls.newConnectionRequestMs,
      ),
    };
  } finally {
    server.close();
    tlsServer.close();
    rmSync(caDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const result = await networkBench((m) => process.stderr.write(`bench: ${m}\n`));
  process.stdout.write(`${JSON.stringify({ network: result }, null, 2)}\n`);
}
