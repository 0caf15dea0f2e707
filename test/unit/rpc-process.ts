// `wheellock rpc` as a child process, the way matchlock's SDKs start it, with a WireClient on
// its stdin/stdout; shared by the CLI unit test and the VM tests.
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { CLI } from "../helpers/lifecycle.js";
import { WireClient } from "./rpc-client.js";

export interface RpcExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** When it exited, in ms since the epoch. */
  at: number;
}

export interface RpcProcess {
  client: WireClient;
  child: ChildProcessWithoutNullStreams;
  exited: Promise<RpcExit>;
}

/** Starts `wheellock rpc`; its stderr goes to this process's stderr unless `quiet`. */
export function startRpcProcess(env: NodeJS.ProcessEnv = process.env, quiet = false): RpcProcess {
  const child = spawn(process.execPath, [...CLI, "rpc"], { env, stdio: ["pipe", "pipe", "pipe"] });
  if (!quiet) child.stderr.pipe(process.stderr);
  else child.stderr.resume();
  const exited = new Promise<RpcExit>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return { client: new WireClient(child.stdin, child.stdout), child, exited };
}

/** QEMU processes whose command line names this sandbox (its run dir). */
export function qemuOf(id: string): string[] {
  try {
    return execFileSync("pgrep", ["-f", `qemu-system.*${id}`], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * The most a test lets `wheellock rpc` take to exit after its stdin ends (or a SIGTERM).
 * matchlock's SDKs kill the server 2 s after EOF, and the server arms its own exit at 1.8 s
 * (src/rpc/serve.ts) for that; but on a loaded CI machine a process can wait seconds for a core,
 * so a 2 s wall-clock assertion measured the machine and failed CI. This bound still fails a
 * server that hangs on or waits out anything slow (a VM's full graceful stop, an open stream)
 * instead of exiting; exiting by itself with status 0 is asserted separately.
 */
export const EXIT_BOUND_MS = 15_000;

/** Closes the server's stdin and waits for the process to exit. */
export async function endInput(rpc: RpcProcess): Promise<RpcExit & { afterEofMs: number }> {
  const eofAt = Date.now();
  rpc.child.stdin.end();
  const exit = await rpc.exited;
  return { ...exit, afterEofMs: exit.at - eofAt };
}
