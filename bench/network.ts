// Open-mode network figures: download/upload throughput and request latency from inside the VM
// through the userspace stack, against a server on 127.0.0.1, with the same client (curl) on
// the host as the baseline. JSON on stdout. Run alone: `node --import tsx bench/network.ts`.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { Sandbox } from "../src/index.js";

const MB = 1024 * 1024;
const DOWNLOAD_BYTES = 64 * MB;
const round = (n: number): number => Math.round(n * 100) / 100;
const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

function startServer(body: Buffer): Promise<Server> {
  const server = createServer((req, res) => {
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
  });
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
  const server = await startServer(randomBytes(DOWNLOAD_BYTES));
  const port = (server.address() as AddressInfo).port;
  try {
    log("network: host baseline (curl on the host)");
    // Uploads stream 64 MB of zeros from stdin in both places.
    const hostRun: Run = (args) => hostCurl(args, args.includes("-T") ? DOWNLOAD_BYTES : 0);
    const host = await measure(hostRun, `http://127.0.0.1:${port}`);
    log("network: guest through the stack (open mode)");
    await using sb = await Sandbox.create({ allowPrivateHosts: true });
    const quote = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
    const guestRun: Run = async (args) => {
      const feed = args.includes("-T") ? `head -c ${DOWNLOAD_BYTES} /dev/zero | ` : "";
      const r = await sb.exec(`${feed}curl ${args.map(quote).join(" ")}`);
      if (r.exitCode !== 0) throw new Error(`guest curl failed: ${r.stderr}`);
      return r.stdout;
    };
    const guest = await measure(guestRun, `http://10.0.2.2:${port}`);
    return {
      accel: sb.accel,
      transferBytes: DOWNLOAD_BYTES,
      host,
      guestOpenMode: guest,
      downloadRatio: round(guest.downloadMBps / host.downloadMBps),
      uploadRatio: round(guest.uploadMBps / host.uploadMBps),
    };
  } finally {
    server.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const result = await networkBench((m) => process.stderr.write(`bench: ${m}\n`));
  process.stdout.write(`${JSON.stringify({ network: result }, null, 2)}\n`);
}
