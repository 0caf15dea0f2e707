import { Command } from "commander";
import { ErrInvalidConfig } from "../errors.js";
import { RemoteSandbox } from "../supervisor/index.js";
import type { AllowListResult } from "../supervisor/server.js";

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

/** What `allow-list add|delete` prints (the reference CLI's wording). */
export function allowListReport(
  id: string,
  action: "add" | "delete",
  result: AllowListResult,
): string {
  const changed = result.changed.join(",");
  const first =
    action === "add"
      ? changed
        ? `Added to ${id}: ${changed}`
        : `No new hosts were added to ${id}`
      : changed
        ? `Removed from ${id}: ${changed}`
        : `No hosts were removed from ${id}`;
  const empty = result.emptyDeniesAll ? "(empty: all hosts denied)" : "(empty: all hosts allowed)";
  return `${first}\nCurrent allow-list: ${result.allowed.join(",") || empty}\n`;
}

function action(name: "add" | "delete"): Command {
  return new Command(name)
    .description(name === "add" ? "allow more hosts" : "stop allowing hosts")
    .argument("<id>", "sandbox id")
    .argument("<hosts...>", "host,host,... (globs as in --allow-host)")
    .action(async (id: string, args: string[]) => {
      const hosts = parseHosts(args);
      const result = await RemoteSandbox.connect(id).allowList(name, hosts);
      process.stdout.write(allowListReport(id, name, result));
    });
}

export function allowListCommand(): Command {
  return new Command("allow-list").addCommand(action("add")).addCommand(action("delete"));
}
