import { Command } from "commander";
import { ErrInvalidConfig } from "../errors.js";
import { RemoteSandbox } from "../supervisor/index.js";

/** `a.com, b.com` in one or more arguments: split, trimmed, de-duplicated, in order. */
export function parseHosts(args: readonly string[]): string[] {
  const hosts = [
    ...new Set(
      args
        .flatMap((a) => a.split(","))
        .map((h) => h.trim())
        .filter(Boolean),
    ),
  ];
  if (hosts.length === 0) {
    throw new ErrInvalidConfig(
      "invalid allow-list host: expected one or more hosts (comma-separated)",
    );
  }
  return hosts;
}

function action(name: "add" | "delete"): Command {
  return new Command(name)
    .description(name === "add" ? "allow more hosts" : "stop allowing hosts")
    .argument("<id>", "sandbox id")
    .argument("<hosts...>", "host,host,... (globs as in --allow-host)")
    .action(async (id: string, args: string[]) => {
      const hosts = parseHosts(args);
      const result = await RemoteSandbox.connect(id).allowList(name, hosts);
      const changed = result.changed.join(",");
      if (name === "add") {
        process.stdout.write(
          changed ? `Added to ${id}: ${changed}\n` : `No new hosts were added to ${id}\n`,
        );
      } else {
        process.stdout.write(
          changed ? `Removed from ${id}: ${changed}\n` : `No hosts were removed from ${id}\n`,
        );
      }
      process.stdout.write(
        `Current allow-list: ${result.allowed.join(",") || "(empty: all hosts allowed)"}\n`,
      );
    });
}

export function allowListCommand(): Command {
  return new Command("allow-list")
    .description("change a running sandbox's network allow-list")
    .addCommand(action("add"))
    .addCommand(action("delete"));
}
