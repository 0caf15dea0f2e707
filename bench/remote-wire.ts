// The cost of `serve`'s transport alone, with no VM. A child process plays the machine: a
// fake sandbox (test/helpers) served by the real protocol server on a unix socket, as a
// supervisor serves it, behind the real node (routes, auth, WebSocket data plane, relay).
// This process is the SDK, reaching the same sandbox three ways, samples interleaved:
//   local   straight through the unix socket (what `Sandbox.connect(id)` does locally)
//   remote  through the node with the SDK's connector (a spare WebSocket kept ready)
//   fresh   through the node opening a new WebSocket per operation (the connector before)
//   node --import tsx bench/remote-wire.ts [--samples 1000]
// Prints JSON: p50/p90 of `exec(["true"])` each way and the p50 differences against local
// (issue 13's goal: remote +1 ms at most).
import { fork } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RemoteSandbox, webSocketConnector } from "../src/remote/index.js";
import { Sandbox, type SandboxApi } from "../src/index.js";
import { startNode } from "../src/serve/index.js";
import { unixConnector } from "../src/supervisor/index.js";
import { FakeHost } from "../test/helpers/fake-host.js";

interface Machine {
  url: string;
  token: string;
  id: string;
  socketPath: string;
}

async function machine(dir: string): Promise<void> {
  process.env.WHEELLOCK_DATA_DIR = dir;
  const host = new FakeHost(dir, 2);
  const node = await startNode(
    {
      listen: { host: "127.0.0.1", port: 0 },
      version: "bench",
      nodeId: "bench",
      tokenFile: join(dir, "token"),
      maxSandboxes: 2,
    },
    host,
  );
  const { id } = await host.create();
  const ready: Machine = {
    url: node.url,
    token: readFileSync(node.tokenPath, "utf8").trim(),
    id,
    socketPath: host.entries.get(id)?.socketPath as string,
  };
  process.send?.(ready);
  process.once("disconnect", () => void node.close().then(() => host.close()));
}

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))] ?? NaN;
}
const round3 = (n: number): number => Math.round(n * 1000) / 1000;

async function once(sb: SandboxApi): Promise<number> {
  const t = process.hrtime.bigint();
  await sb.exec(["true"]);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function measure(samples: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "wheellock-bench-wire-"));
  const child = fork(new URL(import.meta.url).pathname, ["--machine", dir], {
    execArgv: ["--import", "tsx"],
  });
  try {
    const m = await new Promise<Machine>((resolve, reject) => {
      child.once("message", (msg) => resolve(msg as Machine));
      child.once("exit", (code) => reject(new Error(`the node exited (${code})`)));
    });
    const ways: Record<"local" | "remote" | "fresh", SandboxApi> = {
      local: new RemoteSandbox(m.id, unixConnector(m.socketPath, m.id)),
      remote: Sandbox.connect(m.id, { remote: { url: m.url, token: m.token } }),
      fresh: new RemoteSandbox(
        m.id,
        webSocketConnector(
          { url: `${m.url.replace(/^http/, "ws")}/v1/sandboxes/${m.id}/operation`, token: m.token },
          m.id,
          false,
        ),
      ),
    };
    const names = Object.keys(ways) as Array<keyof typeof ways>;
    const ms = { local: [] as number[], remote: [] as number[], fresh: [] as number[] };
    // Warm-up: JIT, connections.
    for (let i = 0; i < 50; i++) for (const n of names) await once(ways[n]);
    for (let i = 0; i < samples; i++) {
      // Rotate which goes first, so none always runs right after another's garbage.
      for (let k = 0; k < names.length; k++) {
        const n = names[(i + k) % names.length] as keyof typeof ways;
        ms[n].push(await once(ways[n]));
      }
    }
    const stats = (v: number[]) => ({
      p50: round3(quantile(v, 0.5)),
      p90: round3(quantile(v, 0.9)),
    });
    const p50 = (n: keyof typeof ms): number => quantile(ms[n], 0.5);
    process.stdout.write(
      `${JSON.stringify({
        samples,
        execRttMs: { local: stats(ms.local), remote: stats(ms.remote), fresh: stats(ms.fresh) },
        addedP50Ms: {
          remote: round3(p50("remote") - p50("local")),
          fresh: round3(p50("fresh") - p50("local")),
        },
      })}\n`,
    );
  } finally {
    child.disconnect();
    await new Promise((resolve) => child.once("exit", resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

const machineAt = process.argv.indexOf("--machine");
if (machineAt >= 0) await machine(process.argv[machineAt + 1] as string);
else {
  const at = process.argv.indexOf("--samples");
  await measure(at >= 0 ? Number(process.argv[at + 1]) : 1000);
}
