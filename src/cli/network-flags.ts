import type { Command } from "commander";
import type { SandboxOptions } from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import { collect } from "./flags.js";

export interface NetworkFlags {
  /** Commander's `--no-network`: false when given. */
  network?: boolean;
  allowPrivateHost?: boolean;
  resolve?: string[];
}

export function addNetworkOptions(cmd: Command): Command {
  return cmd
    .option("--no-network", "no network device at all (the guest sees only lo)")
    .option(
      "--allow-private-host",
      "let the guest reach private and special-purpose addresses (10.0.2.2 = host loopback)",
    )
    .option(
      "--resolve <name:ip>",
      "answer the guest's DNS for name with this IPv4 address (repeatable)",
      collect,
      [],
    );
}

/** The `--resolve name:ip` list as an object; the address is checked with the other options. */
function parseResolve(entries: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of entries) {
    const colon = entry.lastIndexOf(":");
    if (colon <= 0 || colon === entry.length - 1)
      throw new ErrInvalidConfig(`--resolve expects name:ip, got ${JSON.stringify(entry)}`);
    out[entry.slice(0, colon)] = entry.slice(colon + 1);
  }
  return out;
}

export function networkSandboxOptions(flags: NetworkFlags): SandboxOptions {
  const resolve = flags.resolve ?? [];
  return {
    ...(flags.network === false ? { noNetwork: true } : {}),
    ...(flags.allowPrivateHost ? { allowPrivateHosts: true } : {}),
    ...(resolve.length > 0 ? { resolveOverrides: parseResolve(resolve) } : {}),
  };
}
