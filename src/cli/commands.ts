/**
 * Every wheellock command, once, in the order `wheellock --help` lists them. A command's module
 * is imported only when that command runs, so `wheellock version` and `--help` do not load
 * commander, the sandbox or the image code (docs/PERFORMANCE.md, CLI start-up). This file must
 * stay free of runtime imports for the same reason.
 */
import type { Command } from "commander";
import type { CommandEntry } from "./command-entry.js";

export type { CommandEntry };

type Load = CommandEntry["load"];

function entry(
  name: string,
  summary: string,
  load: Load,
  more: { aliases?: readonly string[]; takesSandboxId?: boolean } = {},
): CommandEntry {
  return {
    name,
    summary,
    load,
    aliases: more.aliases ?? [],
    takesSandboxId: more.takesSandboxId ?? false,
  };
}

const ID = { takesSandboxId: true };

export const COMMANDS: readonly CommandEntry[] = [
  entry(
    "run",
    "run a command in a new sandbox, then destroy it",
    async () => (await import("./run.js")).runCommand,
  ),
  entry(
    "setup",
    "install host packages (QEMU, e2fsprogs, musl) and prepare the guest kernel, agent and default image",
    async () => (await import("./setup.js")).setupCommand,
  ),
  entry(
    "version",
    "print the version",
    async () => (await import("./version-command.js")).versionCommand,
  ),
  entry(
    "pull",
    "pull an image from a registry into the local store",
    async () => (await import("./pull.js")).pullCommand,
  ),
  entry(
    "push",
    "push a stored image to a registry",
    async () => (await import("./push.js")).pushCommand,
  ),
  entry(
    "snapshot",
    "list, push, pull and remove memory snapshots (restore sandboxes another node booted)",
    async () => (await import("./snapshot.js")).snapshotCommand,
  ),
  entry(
    "build",
    "build an image from a Dockerfile (every RUN in a sandbox) into the local store",
    async () => (await import("./build.js")).buildCommand,
  ),
  entry(
    "checkpoint",
    "save a running sandbox as a checkpoint; list and remove checkpoints",
    async () => (await import("./checkpoint.js")).checkpointCommand,
    ID,
  ),
  entry(
    "image",
    "manage the local image store",
    async () => (await import("./image.js")).imageCommand,
  ),
  entry(
    "volume",
    "manage named volumes (ext4 images attached with --disk @NAME:/path)",
    async () => (await import("./volume.js")).volumeCommand,
  ),
  entry(
    "exec",
    "run a command in a running sandbox",
    async () => (await import("./exec.js")).execCommand,
    ID,
  ),
  entry("list", "list sandboxes", async () => (await import("./list.js")).listCommand, {
    aliases: ["ls"],
  }),
  entry(
    "inspect",
    "print a sandbox's record as JSON",
    async () => (await import("./list.js")).inspectCommand,
    ID,
  ),
  entry("kill", "stop a running sandbox", async () => (await import("./kill.js")).killCommand, ID),
  entry(
    "rm",
    "remove stopped sandboxes (record, logs and leftovers)",
    async () => (await import("./gc.js")).rmCommand,
    { ...ID, aliases: ["remove"] },
  ),
  entry(
    "prune",
    "remove every stopped or crashed sandbox",
    async () => (await import("./gc.js")).pruneCommand,
  ),
  entry(
    "gc",
    "clean up what dead sandboxes left behind (VM processes, run dirs)",
    async () => (await import("./gc.js")).gcCommand,
    ID,
  ),
  entry(
    "log",
    "print a sandbox's log (serial console and the output of its run command; the last 2-4 MiB)",
    async () => (await import("./log.js")).logCommand,
    { ...ID, aliases: ["logs"] },
  ),
  entry(
    "port-forward",
    "forward host ports to ports in a running sandbox (until Ctrl-C)",
    async () => (await import("./port-forward.js")).portForwardCommand,
    ID,
  ),
  entry(
    "allow-list",
    "change a running sandbox's network allow-list; approve or deny held requests",
    async () => (await import("./allow-list.js")).allowListCommand,
  ),
  entry(
    "policy",
    "suggest a network allowlist from a recorded run (policy suggest --events FILE)",
    async () => (await import("./policy.js")).policyCommand,
  ),
  entry(
    "cp",
    "copy a file or directory between the host and a running sandbox (mounted paths too)",
    async () => (await import("./cp.js")).cpCommand,
  ),
  entry(
    "rpc",
    "serve matchlock's JSON-RPC on stdin/stdout (for its SDKs: MATCHLOCK_BIN=wheellock)",
    async () => (await import("./rpc.js")).rpcCommand,
  ),
  entry(
    "serve",
    "serve sandboxes to other machines over HTTP(S) and WebSocket (docs/REMOTE.md)",
    async () => (await import("./serve.js")).serveCommand,
  ),
  entry(
    "diagnose",
    "check that this host can run sandboxes (exit 1 on failure)",
    async () => (await import("./diagnose.js")).diagnoseCommand,
  ),
  entry(
    "completion",
    "print a shell completion script (bash, zsh or fish)",
    // The table is handed over (completion lists every command and its flags) so that
    // completion.ts need not import this file back.
    async () => {
      const { completionCommand } = await import("./completion.js");
      return () => completionCommand(COMMANDS, loadCommand);
    },
  ),
];

/** The command called `name` (or one of its aliases). */
export function findCommand(name: string | undefined): CommandEntry | undefined {
  return COMMANDS.find((c) => c.name === name || c.aliases.includes(name ?? ""));
}

/** Imports the command's module and builds its Command, named and described from the table. */
export async function loadCommand(command: CommandEntry): Promise<Command> {
  const build = await command.load();
  const cmd = build();
  if (cmd.name() !== command.name) {
    throw new Error(`command table: ${command.name} built a command named ${cmd.name()}`);
  }
  return cmd.description(command.summary).aliases(command.aliases);
}
