/**
 * What a node accepts as a sandbox's options from the network, before planning them: plain
 * JSON (no provider mounts: a provider is code in the caller's process), and host paths that
 * are absolute — they name files on this node, and a path relative to `serve`'s working
 * directory would be a guess.
 */
import { remoteOptionsJson } from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";

function absolute(field: string, value: unknown): void {
  if (typeof value === "string" && !value.startsWith("/"))
    throw new ErrInvalidConfig(
      `${field}: a path on the node must be absolute, got ${JSON.stringify(value)}`,
    );
}

export function nodeOptions(value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ErrInvalidConfig("options must be a JSON object");
  remoteOptionsJson(value);
  const o = value as Record<string, unknown>;
  absolute("kernel", o.kernel);
  absolute("policyScript", o.policyScript);
  if (Array.isArray(o.upstreamCa)) o.upstreamCa.forEach((p, i) => absolute(`upstreamCa[${i}]`, p));
  if (typeof o.mounts === "object" && o.mounts !== null)
    for (const [guest, mount] of Object.entries(o.mounts as Record<string, { hostPath?: unknown }>))
      absolute(`mounts[${JSON.stringify(guest)}].hostPath`, mount?.hostPath);
  if (Array.isArray(o.disks))
    o.disks.forEach((d: { hostPath?: unknown } | null, i) =>
      absolute(`disks[${i}].hostPath`, d?.hostPath),
    );
  return o;
}
