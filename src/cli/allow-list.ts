import { Command } from "commander";
import { ErrInvalidConfig, WheellockError } from "../errors.js";
import { addRemoteOption, connectSandbox, type RemoteFlags } from "./remote-flags.js";

/** What an allow-list change did, and the list after it. */
export interface AllowListResult {
  changed: string[];
  allowed: string[];
  /** What an empty list means: every host (reference semantics), or none (`--deny-all-hosts`). */
  emptyDeniesAll?: boolean;
}

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
  const cmd = new Command(name)
    .description(name === "add" ? "allow more hosts" : "stop allowing hosts")
    .argument("<id>", "sandbox id")
    .argument("<hosts...>", "host,host,... (globs as in --allow-host)");
  return addRemoteOption(cmd).action(async (id: string, args: string[], flags: RemoteFlags) => {
    const hosts = parseHosts(args);
    const sandbox = await connectSandbox(id, flags);
    if (!(await sandbox.allowedHosts()).intercepting)
      throw new WheellockError(
        "ErrInvalidConfig",
        "allow-list updates unavailable: sandbox was started without network interception",
      );
    const changed =
      name === "add" ? await sandbox.allowHosts(...hosts) : await sandbox.disallowHosts(...hosts);
    const now = await sandbox.allowedHosts();
    process.stdout.write(
      allowListReport(id, name, {
        changed,
        allowed: now.hosts,
        emptyDeniesAll: now.emptyDeniesAll,
      }),
    );
  });
}

export function allowListCommand(): Command {
  return new Command("allow-list").addCommand(action("add")).addCommand(action("delete"));
}
