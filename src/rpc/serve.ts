/**
 * `wheellock rpc` on this process's stdin and stdout, for matchlock's SDKs
 * (`MATCHLOCK_BIN=wheellock`). stdout carries the protocol only: console output of code loaded
 * into this process (a policy script) goes to stderr. The process exits with status 0 soon
 * after stdin ends (the SDKs wait 2 s, then kill it), with its VM stopped.
 */
import { Console } from "node:console";
import { createRpcSandbox } from "./vm-factory.js";
import { RpcSession } from "./session.js";

/** The SDKs kill the server 2 s after closing its stdin: be gone before. */
const EXIT_DEADLINE_MS = 1800;

export async function serveRpc(): Promise<void> {
  const session = new RpcSession({
    input: process.stdin,
    output: process.stdout,
    factory: createRpcSandbox,
    onEnding: () => {
      // Whatever is still running then (a boot in progress) is cut short; exit hooks stop QEMU.
      setTimeout(() => process.exit(0), EXIT_DEADLINE_MS).unref();
    },
  });
  globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr });
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
    (process.stderr.write as (...args: unknown[]) => boolean)(
      chunk,
      ...rest,
    )) as typeof process.stdout.write;
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const)
    process.on(signal, () => void session.end());
  await session.done;
}
