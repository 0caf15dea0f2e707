/**
 * `Sandbox.startDetached()`: what `wheellock run -d` does, from the SDK. The sandbox runs in a
 * supervisor process of its own (it outlives the caller), so its options travel as JSON on
 * the supervisor's stdin — never in argv, where secrets would be visible to every user — and
 * anything that only lives in this process (hook callbacks, custom providers) is refused.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { SandboxOptions } from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import { packageRoot } from "../paths.js";
import { RemoteSandbox } from "./client.js";
import { startDetached } from "./detach.js";

/** The hidden `run` flag: the supervisor reads its SandboxOptions as JSON from stdin. */
export const OPTIONS_STDIN_FLAG = "--options-stdin";

export interface DetachedStartOptions {
  /** Host ports forwarded into the guest, as `run -p`: `"8080:80"` or `"80"`. */
  publish?: string[];
  /** Host addresses for `publish` (default 127.0.0.1). */
  address?: string[];
  /** On stop, running commands get this long after SIGTERM. Default 0. */
  gracefulShutdownSeconds?: number;
  /** Append the sandbox's events as JSON lines to this host file (as `--events`). */
  eventsPath?: string;
}

/** Throws for values JSON would drop or mangle: functions, class instances (providers). */
function assertPlainData(value: unknown, path: string): void {
  if (typeof value === "function")
    throw new ErrInvalidConfig(
      `${path}: callbacks cannot be passed to a detached sandbox (it runs in another process); use a policyScript or declarative rules`,
    );
  if (value === null || typeof value !== "object") return;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null)
    throw new ErrInvalidConfig(
      `${path}: objects such as custom providers cannot be passed to a detached sandbox (it runs in another process)`,
    );
  for (const [key, inner] of Object.entries(value)) assertPlainData(inner, `${path}.${key}`);
}

/** The CLI entry point the supervisor runs: the built one, else the source through tsx. */
function cliEntry(): { script: string; execArgv: string[] } {
  const built = join(packageRoot(), "dist", "cli", "main.js");
  if (existsSync(built)) return { script: built, execArgv: [] };
  const source = join(packageRoot(), "src", "cli", "main.ts");
  if (existsSync(source)) return { script: source, execArgv: ["--import", "tsx"] };
  throw new Error(`cannot find the wheellock CLI (looked for ${built})`);
}

export async function startDetachedSandbox(
  options: SandboxOptions = {},
  start: DetachedStartOptions = {},
): Promise<RemoteSandbox> {
  assertPlainData(options, "options");
  const flags = [OPTIONS_STDIN_FLAG];
  for (const p of start.publish ?? []) flags.push("--publish", p);
  for (const a of start.address ?? []) flags.push("--address", a);
  if (start.gracefulShutdownSeconds !== undefined)
    flags.push("--graceful-shutdown", `${start.gracefulShutdownSeconds}s`);
  if (start.eventsPath !== undefined) flags.push("--events", start.eventsPath);
  const id = await startDetached(flags, { stdin: JSON.stringify(options), ...cliEntry() });
  return RemoteSandbox.connect(id);
}
