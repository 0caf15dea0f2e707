// The cost of `serve`'s transport alone, with no VM, in the processes of the real thing: a
// "supervisor" child serves a fake sandbox (test/helpers) with the real protocol server on a
// unix socket; a "node" child runs the real node (routes, auth, WebSocket data plane, relay
// to that socket). This process is the SDK, reaching the same sandbox three ways, samples
// interleaved:
//   local   straight through the unix socket (what `Sandbox.connect(id)` does locally)
//   remote  through the node with the SDK's connector (connections kept between operations)
//   fresh   through the node opening a new WebSocket per operation (the connector before)
//   node --import tsx bench/remote-wire.ts [--samples 1000] [--gap-ms N] [--profile DIR]
//     [--ways local,remote,fresh]
// Prints JSON: p50/p90 of `exec(["true"])` each way and the p50 differences against local
// (issue 13's goal: remote +1 ms at most).
import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RemoteSandbox, serveConnection, webSocketConnector } from "../src/remote/index.js";
import { Sandbox, type SandboxApi } from "../src/index.js";
import { startNode, type SandboxHost } from "../src/serve/index.js";
import { prepareRelay } from "../src/serve/relay.js";
import { unixConnector } from "../src/supervisor/index.js";
import { newSandboxId } from "../src/util/index.js";
import { fakeHosted } from "../test/helpers/fake-host.js";
import { FakeSandbox } from "../test/helpers/fake-sandbox.js";

interface Machine {
  url: string;
  token: string;
  id: string;
  socketPath: string;
}

/** The supervisor's part: the fake sandbox on its unix socket, in a process of its own. */
async function supervisor(dir: string): Promise<void> {
  const id = newSandboxId();
  const sandbox = new FakeSandbox(id);
  const socketPath = join(dir, `${id}.sock`);
  const server = createServer((socket) => serveConnection(sandbox, socket));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  process.send?.({ id, socketPath });
  process.once("disconnect", () => server.close());
}

/** The node's part: the real node, whose one sandbox is the supervisor's socket. */
async function nodeProcess(dir: string, id: string, socketPath: string): Promise<void> {
  process.env.WHEELLOCK_DATA_DIR = dir;
  const hosted = fakeHosted(id);
  const host: SandboxHost = {
    create: () => Promise.reject(new Error("not in this bench")),
    list: () => [hosted],
    find: (wanted) => (wanted === id ? hosted : undefined),
    prepareOperation: () => prepareRelay(unixConnector(socketPath, id)),
    readLog: (_id, cursor) => ({ data: Buffer.alloc(0), cursor }),
    usage: () => Promise.resolve(undefined),
    stop: () => Promise.resolve(),
    remove: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
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
  const ready: Machine = {
    url: node.url,
    token: readFileSync(node.tokenPath, "utf8").trim(),
    id,
    socketPath,
  };
  process.send?.(ready);
  process.once("disconnect", () => void node.close());
}

function child<T>(args: string[]): { proc: ChildProcess; ready: Promise<T> } {
  // --profile DIR: the supervisor and the node write V8 CPU profiles there (where the hop's
  // time goes, per function).
  const at = process.argv.indexOf("--profile");
  const profile = at >= 0 ? ["--cpu-prof", `--cpu-prof-dir=${process.argv[at + 1]}`] : [];
  const proc = fork(new URL(import.meta.url).pathname, args, {
    execArgv: ["--import", "tsx", ...profile],
  });
  const ready = new Promise<T>((resolve, reject) => {
    proc.once("message", (msg) => resolve(msg as T));
    proc.once("exit", (code) => reject(new Error(`${args[0]} exited (${code})`)));
  });
  return { proc, ready };
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

async function measure(samples: number, gapMs: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "wheellock-bench-wire-"));
  const sup = child<{ id: string; socketPath: string }>(["--supervisor", dir]);
  const procs = [sup.proc];
  try {
    const { id, socketPath } = await sup.ready;
    const nodeChild = child<Machine>(["--node", dir, id, socketPath]);
    procs.push(nodeChild.proc);
    const m = await nodeChild.ready;
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
    // --ways remote: only those (a profile of one path alone).
    const only = process.argv.indexOf("--ways");
    const names = (Object.keys(ways) as Array<keyof typeof ways>).filter(
      (n) => only < 0 || (process.argv[only + 1] ?? "").split(",").includes(n),
    );
    const ms = { local: [] as number[], remote: [] as number[], fresh: [] as number[] };
    // Warm-up: JIT, connections.
    for (let i = 0; i < 50; i++) for (const n of names) await once(ways[n]);
    for (let i = 0; i < samples; i++) {
      // Rotate which goes first, so none always runs right after another's garbage.
      for (let k = 0; k < names.length; k++) {
        const n = names[(i + k) % names.length] as keyof typeof ways;
        ms[n].push(await once(ways[n]));
        if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
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
    for (const proc of procs) {
      proc.disconnect();
      await new Promise((resolve) => proc.once("exit", resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

const [role, ...roleArgs] = process.argv.slice(2);
if (role === "--supervisor") await supervisor(roleArgs[0] as string);
else if (role === "--node")
  await nodeProcess(roleArgs[0] as string, roleArgs[1] as string, roleArgs[2] as string);
else {
  const at = process.argv.indexOf("--samples");
  const gap = process.argv.indexOf("--gap-ms");
  await measure(
    at >= 0 ? Number(process.argv[at + 1]) : 1000,
    gap >= 0 ? Number(process.argv[gap + 1]) : 0,
  );
}
