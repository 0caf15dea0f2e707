/**
 * A sandbox's options as a node takes them from the network (POST /v1/sandboxes, --single's
 * plan): plain JSON, host paths checked (node-options.ts). Where the node restricts host paths
 * (serve --host-path), what it checked is what the sandbox uses: a policy script is read here
 * and passed as content; a mount's or disk's path goes with the identity of what the node
 * found there (host-path-open.ts), and the supervisor refuses anything else at use.
 */
import { remoteOptionsJson } from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import { checkedIdentity, type CheckedKind } from "./host-path-open.js";
import { onNode, type HostPathRoots } from "./node-options.js";
import { readNodePolicyScript } from "./policy-script-read.js";

/** `onNode`, plus the identity of what is there when the node restricts paths. */
function checkedPath(
  field: string,
  value: unknown,
  roots: HostPathRoots,
  kind: CheckedKind,
): { hostPath: unknown; hostIdentity?: string } {
  const hostPath = onNode(field, value, roots);
  if (roots === "any" || typeof hostPath !== "string") return { hostPath };
  return { hostPath, hostIdentity: checkedIdentity(field, hostPath, roots, kind) };
}

export function nodeOptions(value: unknown, roots: HostPathRoots): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ErrInvalidConfig("options must be a JSON object");
  remoteOptionsJson(value);
  const o = { ...(value as Record<string, unknown>) };
  if (o.kernel !== undefined) o.kernel = onNode("kernel", o.kernel, roots);
  if (o.policyScriptSource !== undefined)
    throw new ErrInvalidConfig("policyScriptSource is set by the node, not callers");
  if (o.policyScript !== undefined) {
    if (roots === "any") o.policyScript = onNode("policyScript", o.policyScript, roots);
    else {
      // Read once here: the sandbox would open the path again, after the check.
      o.policyScriptSource = readNodePolicyScript(o.policyScript, roots);
      delete o.policyScript;
    }
  }
  if (Array.isArray(o.upstreamCa))
    o.upstreamCa = o.upstreamCa.map((p, i) => onNode(`upstreamCa[${i}]`, p, roots));
  if (typeof o.mounts === "object" && o.mounts !== null)
    o.mounts = Object.fromEntries(
      Object.entries(o.mounts as Record<string, unknown>).map(([guest, mount]) => {
        if (typeof mount !== "object" || mount === null || !("hostPath" in mount))
          return [guest, mount];
        const field = `mounts[${JSON.stringify(guest)}].hostPath`;
        const checked = checkedPath(field, mount.hostPath, roots, "file or directory");
        return [guest, { ...mount, ...checked }];
      }),
    );
  if (Array.isArray(o.disks))
    o.disks = o.disks.map((d: unknown, i) =>
      typeof d === "object" && d !== null && "hostPath" in d
        ? { ...d, ...checkedPath(`disks[${i}].hostPath`, d.hostPath, roots, "file") }
        : d,
    );
  return o;
}
