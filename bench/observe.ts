// The cost of docs/OBSERVE.md on the two hot paths: exec round trip on a warm VM and the
// latency of an intercepted request, for three sandboxes of one configuration measured in
// interleaved rounds: attribution off (no cgroup per exec in the guest, no questions from the
// host: the baseline), attribution on (the default), and attribution on with every span
// recorded by an in-memory OpenTelemetry SDK. Requests are plain HTTP with `Connection:
// close`, the worst case (a new flow per request, asked about, with no TLS handshake to hide
// the question behind), and keep-alive. JSON on stdout.
// Run alone: `node --import tsx bench/observe.ts [--rounds N]`.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { loadavg } from "node:os";
import { trace } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { Sandbox, type VmSandbox } from "../src/index.js";

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const ROUNDS = arg("--rounds", 5);
const EXECS_PER_ROUND = 40;
const REQUESTS = 20;
const REQUEST_SAMPLES_PER_ROUND = 3;
const round = (n: number): number => Math.round(n * 1000) / 1000;
const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const log = (m: string): void => void process.stderr.write(`bench/observe: ${m}\n`);

async function execRoundTripMs(sb: VmSandbox): Promise<number> {
  const started = performance.now();
  await sb.exec("true");
  return performance.now() - started;
}

/**
 * Per request, by the host's clock: one curl with N+1 requests minus one with 1, over N, so
 * process start and exec overhead cancel out.
 */
async function perRequestMs(sb: VmSandbox, url: string, close: boolean): Promise<number> {
  const timed = async (n: number): Promise<number> => {
    const urls = Array.from({ length: n }, () => `-o /dev/null ${url}`).join(" ");
    const header = close ? "-H 'Connection: close'" : "";
    const started = performance.now();
    const r = await sb.exec(`curl -sS ${header} ${urls}`);
    if (r.exitCode !== 0) throw new Error(`curl failed: ${r.stderr}`);
    return performance.now() - started;
  };
  return ((await timed(REQUESTS + 1)) - (await timed(1))) / REQUESTS;
}

interface Figures {
  execMs: number[];
  requestCloseMs: number[];
  requestKeepAliveMs: number[];
}

async function main(): Promise<void> {
  const server: Server = createServer((_req, res) => res.end("x"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  const options = {
    memoryMb: 256,
    timeoutSeconds: 0,
    allowPrivateHosts: true,
    resolveOverrides: { "api.test": "127.0.0.1" },
    allowedHosts: ["api.test"],
  };
  log("starting the sandboxes (attribution off, on; then on with spans recorded)");
  const off = await Sandbox.create(options, { noAttribution: true });
  const on = await Sandbox.create(options);
  const exporter = new InMemorySpanExporter();
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  // Spans are recorded by sandboxes created after a provider is registered.
  const traced = await Sandbox.create(options);
  const kinds = { off, on, traced } as const;
  const figures: Record<keyof typeof kinds, Figures> = {
    off: { execMs: [], requestCloseMs: [], requestKeepAliveMs: [] },
    on: { execMs: [], requestCloseMs: [], requestKeepAliveMs: [] },
    traced: { execMs: [], requestCloseMs: [], requestKeepAliveMs: [] },
  };
  const url = `http://api.test:${port}/small`;
  try {
    // Warm each VM's exec path and the proxy's keep-alive upstream.
    for (const sb of Object.values(kinds)) {
      await sb.exec("true");
      await sb.exec(`curl -sS -o /dev/null ${url}`);
    }
    // Sandboxes take turns sample by sample, in an order that rotates, so the machine's load
    // (other work on the same cores) falls on all three alike.
    const names = Object.keys(kinds) as (keyof typeof kinds)[];
    const turns = (i: number) => [...names.slice(i % 3), ...names.slice(0, i % 3)];
    for (let r = 0; r < ROUNDS; r++) {
      log(`round ${r + 1}/${ROUNDS}`);
      for (let i = 0; i < EXECS_PER_ROUND; i++)
        for (const k of turns(i)) figures[k].execMs.push(await execRoundTripMs(kinds[k]));
      for (let i = 0; i < REQUEST_SAMPLES_PER_ROUND; i++)
        for (const k of turns(i + r)) {
          figures[k].requestCloseMs.push(await perRequestMs(kinds[k], url, true));
          figures[k].requestKeepAliveMs.push(await perRequestMs(kinds[k], url, false));
        }
    }
  } finally {
    await Promise.all(Object.values(kinds).map((sb) => sb.close()));
    server.close();
  }
  const summary = (k: keyof typeof kinds) => ({
    execRoundTripMs: round(median(figures[k].execMs)),
    requestCloseMs: round(median(figures[k].requestCloseMs)),
    requestKeepAliveMs: round(median(figures[k].requestKeepAliveMs)),
  });
  const off_ = summary("off");
  const on_ = summary("on");
  const traced_ = summary("traced");
  const ratio = (a: number, b: number) => round(a / b);
  // Median of the ratios of samples taken back to back: steadier than a ratio of medians
  // when the load drifts.
  const paired = (a: number[], b: number[]) => round(median(a.map((x, i) => x / (b[i] ?? NaN))));
  process.stdout.write(
    `${JSON.stringify(
      {
        accel: on.accel,
        rounds: ROUNDS,
        attributionOff: off_,
        attributionOn: on_,
        attributionOnTraced: traced_,
        ratios: {
          execAttribution: ratio(on_.execRoundTripMs, off_.execRoundTripMs),
          execTracing: ratio(traced_.execRoundTripMs, on_.execRoundTripMs),
          requestCloseAttribution: ratio(on_.requestCloseMs, off_.requestCloseMs),
          requestCloseTracing: ratio(traced_.requestCloseMs, on_.requestCloseMs),
          requestKeepAliveAttribution: ratio(on_.requestKeepAliveMs, off_.requestKeepAliveMs),
          requestKeepAliveTracing: ratio(traced_.requestKeepAliveMs, on_.requestKeepAliveMs),
        },
        pairedRatios: {
          execAttribution: paired(figures.on.execMs, figures.off.execMs),
          execTracing: paired(figures.traced.execMs, figures.on.execMs),
          requestCloseAttribution: paired(figures.on.requestCloseMs, figures.off.requestCloseMs),
          requestCloseTracing: paired(figures.traced.requestCloseMs, figures.on.requestCloseMs),
          requestKeepAliveAttribution: paired(
            figures.on.requestKeepAliveMs,
            figures.off.requestKeepAliveMs,
          ),
          requestKeepAliveTracing: paired(
            figures.traced.requestKeepAliveMs,
            figures.on.requestKeepAliveMs,
          ),
        },
        loadAverage: loadavg().map(round),
        spansRecorded: exporter.getFinishedSpans().length,
        samples: figures.on.execMs.length,
      },
      null,
      2,
    )}\n`,
  );
}

void main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
