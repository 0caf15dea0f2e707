// `exec` round trip through `wheellock rpc` (what matchlock's SDKs pay) against the same call
// through the SDK in this process, in the same run (issue 12: goal within 1.2x or +2 ms):
//   npm run bench:rpc -- [--rounds 200]
// One warm VM each (default image, no network), samples interleaved so both see the same load.
// The rpc client is a minimal NDJSON client (one request in flight). Prints JSON.
import { spawn } from "node:child_process";
import { Sandbox } from "../src/index.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function stats(values: number[]): { p50: number; p90: number; min: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  const r = (n: number) => Math.round(n * 100) / 100;
  return {
    p50: r(percentile(s, 50)),
    p90: r(percentile(s, 90)),
    min: r(s[0] ?? NaN),
    max: r(s.at(-1) ?? NaN),
  };
}

interface RpcReply {
  result?: Record<string, unknown>;
  error?: unknown;
}

/** `wheellock rpc` as a child process, one request at a time. */
class RpcClient {
  private readonly child = spawn(process.execPath, ["dist/cli/main.cjs", "rpc"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  private buffer = "";
  private nextId = 1;
  private pending = new Map<number, (m: RpcReply) => void>();

  constructor() {
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (text: string) => {
      this.buffer += text;
      let nl;
      while ((nl = this.buffer.indexOf("\n")) >= 0) {
        const m = JSON.parse(this.buffer.slice(0, nl)) as RpcReply & {
          id?: number;
          method?: string;
        };
        this.buffer = this.buffer.slice(nl + 1);
        if (typeof m.id === "number" && m.method === undefined) {
          this.pending.get(m.id)?.(m);
          this.pending.delete(m.id);
        }
      }
    });
  }

  call(method: string, params: object): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, (m) =>
        m.error ? reject(new Error(JSON.stringify(m.error))) : resolve(m.result ?? {}),
      );
      this.child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", method, id, params })}\n`);
    });
  }

  async close(): Promise<void> {
    await this.call("close", { timeout_seconds: 2 });
    this.child.stdin.end();
    await new Promise((resolve) => this.child.once("exit", resolve));
  }
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const rounds = Number(arg("--rounds") ?? 200);
const options = { image: "default", noNetwork: true, memoryMb: 384, timeoutSeconds: 0 };
const rpc = new RpcClient();
await rpc.call("create", {
  image: options.image,
  network: { no_network: true },
  resources: { memory_mb: options.memoryMb, timeout_seconds: 3600 },
});
const sb = await Sandbox.create(options);
try {
  const viaRpc: number[] = [];
  const viaSdkArgv: number[] = [];
  const viaSdkShell: number[] = [];
  // Warm-up: the guest's exec path and the translated code of both VMs.
  for (let i = 0; i < 20; i++) {
    await rpc.call("exec", { command: "true" });
    await sb.exec(["true"]);
    await sb.exec("true");
  }
  for (let i = 0; i < rounds; i++) {
    // The reference's `exec` always runs `sh -c <command>`: the same for the SDK's string form.
    viaRpc.push(await timed(() => rpc.call("exec", { command: "true" })));
    viaSdkArgv.push(await timed(() => sb.exec(["true"])));
    viaSdkShell.push(await timed(() => sb.exec("true")));
  }
  const rpcStats = stats(viaRpc);
  const argv = stats(viaSdkArgv);
  const shell = stats(viaSdkShell);
  const result = {
    rounds,
    rpcExecShellTrueMs: rpcStats,
    sdkExecArgvTrueMs: argv,
    sdkExecShellTrueMs: shell,
    // Like for like: both run `/bin/sh -c true` in the guest.
    ratioRpcVsSdkShell: Math.round((rpcStats.p50 / shell.p50) * 100) / 100,
    extraMsRpcVsSdkShell: Math.round((rpcStats.p50 - shell.p50) * 100) / 100,
    // What the issue names: rpc exec vs the SDK's `exec(["true"])` (no shell).
    ratioRpcVsSdkArgv: Math.round((rpcStats.p50 / argv.p50) * 100) / 100,
    extraMsRpcVsSdkArgv: Math.round((rpcStats.p50 - argv.p50) * 100) / 100,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  await sb.close();
  await rpc.close();
}
