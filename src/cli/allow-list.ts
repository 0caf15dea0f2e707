import { Command } from "commander";
import { ErrInvalidConfig, WheellockError } from "../errors.js";
import type { ApprovalDecision, BlockedRequest } from "../observe/index.js";
import { positiveInteger } from "./flags.js";
import { addRemoteOption, connectSandbox, type RemoteFlags } from "./remote-flags.js";
import { formatTable } from "./table.js";
import { forTerminal } from "./terminal-text.js";

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

/** One row per held request: what `allow-list approve|deny` needs to decide it. */
export function pendingReport(requests: readonly BlockedRequest[]): string {
  if (requests.length === 0) return "No requests are waiting for approval\n";
  const rows = requests.map((r) => [
    String(r.requestId),
    r.method,
    forTerminal(r.url),
    r.address ?? "-",
    r.attribution?.execId != null ? String(r.attribution.execId) : "-",
    forTerminal(r.attribution?.command?.join(" ").slice(0, 40) ?? "-"),
    r.expiresAt.slice(11, 19),
  ]);
  return formatTable([
    ["REQUEST", "METHOD", "URL", "ADDRESS", "EXEC", "COMMAND", "EXPIRES"],
    ...rows,
  ]);
}

function pending(): Command {
  const cmd = new Command("pending")
    .description("list requests held for approval (run with --approve)")
    .argument("<id>", "sandbox id")
    .option("--json", "print JSON");
  return addRemoteOption(cmd).action(
    async (id: string, flags: { json?: boolean } & RemoteFlags) => {
      const requests = await (await connectSandbox(id, flags)).pendingRequests();
      process.stdout.write(
        flags.json ? `${JSON.stringify(requests, null, 2)}\n` : pendingReport(requests),
      );
    },
  );
}

function decide(name: "approve" | "deny"): Command {
  const cmd = new Command(name)
    .description(
      name === "approve"
        ? "let a held request through (--sandbox: and allow its host:port from now on)"
        : "refuse a held request (--sandbox: and every later one to its host:port)",
    )
    .argument("<id>", "sandbox id")
    .argument("<request>", "request id (allow-list pending)", positiveInteger("REQUEST"));
  cmd.option(
    "--sandbox",
    name === "approve"
      ? "add the request's host:port to the allowlist"
      : "refuse later requests to its host:port without asking (for the sandbox's life)",
  );
  type Flags = { sandbox?: boolean } & RemoteFlags;
  return addRemoteOption(cmd).action(async (id: string, request: number, flags: Flags) => {
    const decision: ApprovalDecision =
      name === "deny"
        ? flags.sandbox
          ? "deny-sandbox"
          : "deny"
        : flags.sandbox
          ? "sandbox"
          : "once";
    await (await connectSandbox(id, flags)).decideRequest(request, decision);
    const what: Record<ApprovalDecision, string> = {
      once: "Approved once",
      sandbox: "Approved for the sandbox",
      deny: "Denied",
      "deny-sandbox": "Denied for the sandbox",
    };
    process.stdout.write(`${what[decision]}: request ${request} of ${id}\n`);
  });
}

export function allowListCommand(): Command {
  return new Command("allow-list")
    .addCommand(action("add"))
    .addCommand(action("delete"))
    .addCommand(pending())
    .addCommand(decide("approve"))
    .addCommand(decide("deny"));
}
