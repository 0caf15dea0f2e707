import { Command } from "commander";

/**
 * `wheellock rpc`: matchlock's JSON-RPC on stdin/stdout, for matchlock's SDKs
 * (`MATCHLOCK_BIN=wheellock`). It ends with status 0 when stdin ends.
 */
export function rpcCommand(): Command {
  return new Command("rpc").action(async () => {
    const { serveRpc } = await import("../rpc/index.js");
    await serveRpc();
    // Open handles (stdin, a listener) must not keep the process past its session.
    process.exit(0);
  });
}
