// Where a new HTTPS connection's time goes inside the VM, open mode vs intercept mode: curl's
// own phase timers (TCP connect, TLS handshake done, first response byte, total) over many
// `Connection: close` requests in one curl process, with and without TLS session resumption,
// and HTTP/1.1 vs HTTP/2 toward the proxy. curl's clock in a TCG guest ticks coarsely (~4 ms),
// so only means over many requests are quoted. JSON on stdout.
// Run alone: `node --import tsx bench/https-phases.ts [--requests 20] [--rounds 3]`.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Sandbox } from "../src/index.js";
import { makeTestCa } from "../test/helpers/intercept-servers.js";

const PHASES = ["connectMs", "handshakeMs", "firstByteMs", "totalMs"] as const;
type Phases = Record<(typeof PHASES)[number], number>;
const round2 = (n: number): number => Math.round(n * 100) / 100;
const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** Mean of each phase over the requests of one curl run (curl prints seconds since start). */
function meanPhases(out: string): Phases {
  const rows = out
    .trim()
    .split("\n")
    .map((l) => l.split(" ").map((x) => Number(x) * 1000));
  const mean = (i: number) => rows.reduce((s, r) => s + (r[i] ?? NaN), 0) / rows.length;
  return { connectMs: mean(0), handshakeMs: mean(1), firstByteMs: mean(2), totalMs: mean(3) };
}

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "20" },
    rounds: { type: "string", default: "3" },
  },
});
const requests = Number(values.requests);
const rounds = Number(values.rounds);
const caDir = mkdtempSync(join(tmpdir(), "wheellock-bench-ca-"));
const ca = makeTestCa(caDir, ["bench.test"]);
const server = createServer(ca, (_req, res) => res.end("x"));
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = (server.address() as AddressInfo).port;
try {
  const resolveOverrides = { "bench.test": "127.0.0.1" };
  await using open = await Sandbox.create({ allowPrivateHosts: true, resolveOverrides });
  await open.writeFile("/tmp/bench-ca.pem", readFileSync(ca.caPath));
  await using intercept = await Sandbox.create({
    allowPrivateHosts: true,
    resolveOverrides,
    allowedHosts: ["bench.test"],
    upstreamCa: [ca.caPath],
  });
  const url = `https://bench.test:${port}/small`;
  const format = "%{time_connect} %{time_appconnect} %{time_starttransfer} %{time_total}\\n";
  const curl = async (sb: Sandbox, extra: string[]): Promise<Phases> => {
    const urls = Array.from({ length: requests }, () => `-o /dev/null ${url}`).join(" ");
    const r = await sb.exec(
      `curl -sS -H 'Connection: close' -w '${format}' ${extra.join(" ")} ${urls}`,
    );
    if (r.exitCode !== 0) throw new Error(`guest curl failed: ${r.stderr}`);
    return meanPhases(r.stdout);
  };
  const variants: Record<string, () => Promise<Phases>> = {
    openResumed: () => curl(open, ["--cacert /tmp/bench-ca.pem"]),
    openFull: () => curl(open, ["--cacert /tmp/bench-ca.pem", "--no-sessionid"]),
    interceptH1Resumed: () => curl(intercept, ["--http1.1"]),
    interceptH1Full: () => curl(intercept, ["--http1.1", "--no-sessionid"]),
    interceptH2Resumed: () => curl(intercept, []),
    interceptH2Full: () => curl(intercept, ["--no-sessionid"]),
  };
  // Warm-up: the proxy issues the leaf and opens its upstream connection once.
  for (const take of Object.values(variants)) await take();
  const samples: Record<string, Phases[]> = {};
  for (let r = 0; r < rounds; r++)
    for (const [name, take] of Object.entries(variants)) (samples[name] ??= []).push(await take());
  const result = Object.fromEntries(
    Object.entries(samples).map(([name, xs]) => [
      name,
      Object.fromEntries(PHASES.map((p) => [p, round2(median(xs.map((x) => x[p])))])),
    ]),
  );
  process.stdout.write(
    `${JSON.stringify({ httpsPhases: { accel: open.accel, requests, rounds, ...result } }, null, 2)}\n`,
  );
} finally {
  server.close();
  rmSync(caDir, { recursive: true, force: true });
}
