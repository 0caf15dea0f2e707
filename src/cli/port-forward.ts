import { Command } from "commander";
import { createServer } from "node:net";
import { ErrInvalidConfig } from "../errors.js";
import { RemoteSandbox } from "../supervisor/index.js";
import { listenTcp } from "../supervisor/port-forward.js";
import { collect } from "./flags.js";
import { parsePublish } from "./publish.js";

export function portForwardCommand(): Command {
  return new Command("port-forward")
    .usage("[flags] ID [ADDR:][LOCAL:]REMOTE...")
    .argument("<id>", "sandbox id")
    .argument("<specs...>", "[ADDR:][LOCAL:]REMOTE (LOCAL 0 picks a free port)")
    .option(
      "--address <ip>",
      "host address to listen on (repeatable; default 127.0.0.1)",
      collect,
      [],
    )
    .action(async (id: string, specs: string[], flags: { address: string[] }) => {
      const bindings = parsePublish(specs, flags.address);
      if (bindings.length === 0) throw new ErrInvalidConfig("at least one port to forward");
      const sandbox = RemoteSandbox.connect(id);
      const servers = [];
      for (const b of bindings) {
        const server = createServer({ allowHalfOpen: true }, (client) =>
          sandbox.tunnelTcp(b.remotePort, client, (err) =>
            process.stderr.write(`wheellock: forward to sandbox:${b.remotePort}: ${err.message}\n`),
          ),
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
    });
}
