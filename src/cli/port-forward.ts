import { Command } from "commander";
import { parsePublish } from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import { addRemoteOption, connectSandbox, type RemoteFlags } from "./remote-flags.js";
import { forwardingServer, listenTcp } from "../supervisor/index.js";
import { collect } from "./flags.js";

export function portForwardCommand(): Command {
  const cmd = new Command("port-forward")
    .usage("[flags] ID [ADDR:][LOCAL:]REMOTE...")
    .argument("<id>", "sandbox id")
    .argument("<specs...>", "[ADDR:][LOCAL:]REMOTE (LOCAL 0 picks a free port)")
    .option(
      "--address <ip>",
      "host address to listen on (repeatable; default 127.0.0.1)",
      collect,
      [],
    );
  return addRemoteOption(cmd).action(
    async (id: string, specs: string[], flags: { address: string[] } & RemoteFlags) => {
      const bindings = parsePublish(specs, flags.address);
      if (bindings.length === 0) throw new ErrInvalidConfig("at least one port to forward");
      const sandbox = await connectSandbox(id, flags);
      const servers = [];
      for (const b of bindings) {
        const server = forwardingServer(sandbox, b.remotePort, (err) =>
          process.stderr.write(`wheellock: forward to sandbox:${b.remotePort}: ${err.message}\n`),
        );
        const local = await listenTcp(server, b.address, b.localPort);
        servers.push(server);
        process.stderr.write(`Forwarding ${b.address}:${local} -> sandbox:${b.remotePort}\n`);
      }
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      for (const server of servers) server.close();
      process.exit(0);
    },
  );
}
