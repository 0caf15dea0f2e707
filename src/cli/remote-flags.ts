/**
 * `--remote URL[,URL...]` on the commands that work on sandboxes: the same command against
 * nodes running `wheellock serve`. The token comes from WHEELLOCK_TOKEN (never a flag: argv is
 * readable by every user of the machine), a private CA from WHEELLOCK_REMOTE_CA (a PEM file);
 * WHEELLOCK_REMOTE set in the environment makes every such command remote. The SDK is loaded
 * only when a command goes remote: local commands start without it (test/unit/cli-startup).
 */
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { ErrInvalidConfig } from "../errors.js";
import type { RemoteSandbox } from "../remote/index.js";
import type { RemoteOptions, ResolvedRemote } from "../sdk/index.js";

/** As `ENV_REMOTE` of the SDK (not imported: that would load the SDK for local commands). */
const ENV_REMOTE = "WHEELLOCK_REMOTE";
export const ENV_REMOTE_CA = "WHEELLOCK_REMOTE_CA";

/** The SDK's module, loaded on first use. */
export type Sdk = Awaited<ReturnType<typeof loadSdk>>;
function loadSdk() {
  return import("../sdk/index.js");
}

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

/** The resolved remote (token checked) and the SDK to use it with, or undefined for local. */
export async function resolvedRemote(
  flags: RemoteFlags,
): Promise<{ remote: ResolvedRemote; sdk: Sdk } | undefined> {
  const options = remoteOptions(flags);
  if (!options) return undefined;
  const sdk = await loadSdk();
  const remote = sdk.resolveRemote(options);
  return remote ? { remote, sdk } : undefined;
}

/** The sandbox `id` names, locally or on a node. */
export async function connectSandbox(id: string, flags: RemoteFlags): Promise<RemoteSandbox> {
  const remote = remoteOptions(flags);
  const { Sandbox } = await loadSdk();
  return Sandbox.connect(id, remote ? { remote } : {});
}
