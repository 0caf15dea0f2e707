/**
 * `--remote URL[,URL...]` on the commands that work on sandboxes: the same command against
 * nodes running `wheellock serve`. The token comes from WHEELLOCK_TOKEN (never a flag: argv is
 * readable by every user of the machine), a private CA from WHEELLOCK_REMOTE_CA (a PEM file);
 * WHEELLOCK_REMOTE set in the environment makes every such command remote.
 */
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { ErrInvalidConfig } from "../errors.js";
import type { RemoteSandbox } from "../remote/index.js";
import { ENV_REMOTE, resolveRemote, Sandbox, type RemoteOptions } from "../sdk/index.js";

export const ENV_REMOTE_CA = "WHEELLOCK_REMOTE_CA";

export interface RemoteFlags {
  remote?: string;
}

export function addRemoteOption(cmd: Command): Command {
  return cmd.option(
    "--remote <url>",
    `node(s) running \`wheellock serve\` (comma-separated; default $${ENV_REMOTE}; token in $WHEELLOCK_TOKEN)`,
  );
}

/** The remote the flags and environment name, or undefined for a local command. */
export function remoteOptions(flags: RemoteFlags): RemoteOptions | undefined {
  const url = flags.remote ?? process.env[ENV_REMOTE];
  if (!url) return undefined;
  const caPath = process.env[ENV_REMOTE_CA];
  let ca: string | undefined;
  if (caPath) {
    try {
      ca = readFileSync(caPath, "utf8");
    } catch {
      throw new ErrInvalidConfig(`${ENV_REMOTE_CA}: cannot read ${caPath}`);
    }
  }
  return { url, ...(ca !== undefined ? { ca } : {}) };
}

/** The resolved remote (token checked), or undefined for a local command. */
export function resolvedRemote(
  flags: RemoteFlags,
): NonNullable<ReturnType<typeof resolveRemote>> | undefined {
  const remote = remoteOptions(flags);
  return remote ? resolveRemote(remote) : undefined;
}

/** The sandbox `id` names, locally or on a node. */
export function connectSandbox(id: string, flags: RemoteFlags): RemoteSandbox {
  const remote = remoteOptions(flags);
  return Sandbox.connect(id, remote ? { remote } : {});
}
