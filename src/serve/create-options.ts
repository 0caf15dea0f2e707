/**
 * A sandbox's options as a node takes them from the network (POST /v1/sandboxes, --single's
 * plan): plain JSON, host paths checked (node-options.ts). Where the node restricts host paths
 * (serve --host-path), what it checked is what the sandbox uses: a policy script and upstream
 * CAs are read here and passed as content; a mount's or disk's path goes with the identity of what the node
 * found there (host-path-open.ts), and the supervisor refuses anything else at use.
 */
import {
  MAX_CA_PEM_BYTES,
  ownDirConflict,
  remoteOptionsJson,
  type SandboxOptions,
} from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import { loadCheckpoint, withCheckpointDefaults } from "../sandbox/index.js";
import { checkedIdentity, type CheckedKind } from "./host-path-open.js";
import { onNode, underRoots, writableOf, type HostPathRoots } from "./node-options.js";
import { readNodeFile, readNodePolicyScript } from "./policy-script-read.js";

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

/**
 * `checkedPath` for a path the guest will see (a mount, a disk): never one that holds or lies
 * in the node's own data, run or cache dir, whatever --host-path opened (the plan refuses it
 * too; here it is refused before the node does anything with it).
 */
function guestVisible(
  field: string,
  value: unknown,
  roots: HostPathRoots,
  kind: CheckedKind,
): { hostPath: unknown; hostIdentity?: string } {
  const checked = checkedPath(field, value, roots, kind);
  if (typeof checked.hostPath !== "string") return checked;
  // Not even what the node shares with its own guests (kept overlay layers, build cache
  // mounts): those belong to other sandboxes and builds.
  const conflict = ownDirConflict(checked.hostPath, { allowGuestShared: false });
  if (conflict !== undefined)
    throw new ErrInvalidConfig(`${field}: ${JSON.stringify(checked.hostPath)} ${conflict}`);
  return checked;
}

/**
 * A mount or disk that writes its host path (`writes`) must lie under a root callers may write
 * (`--host-path`); under a `--host-path-ro` root it must be read-only (an overlay, which never
 * writes its lower directory, is fine).
 */
function refuseWriteToReadOnlyRoot(
  field: string,
  hostPath: unknown,
  writes: boolean,
  writable: readonly string[] | undefined,
  fix: string,
): void {
  if (writable === undefined || !writes || typeof hostPath !== "string") return;
  if (underRoots(hostPath, writable)) return;
  throw new ErrInvalidConfig(
    `${field}: ${JSON.stringify(hostPath)} lies in a read-only directory (serve --host-path-ro): ${fix}`,
  );
}

/**
 * `allowVolumes` (serve --allow-volumes): whether callers may attach the node's named volumes
 * (`disks[].volume`). Off by default: a volume is the node's storage, named by anyone who can
 * guess its name, and no --host-path covers it. `writable`: the roots callers may write
 * (`--host-path`; default all of `roots`), the others being `--host-path-ro`.
 */
export function nodeOptions(
  value: unknown,
  roots: HostPathRoots,
  allowVolumes = false,
  writable?: readonly string[],
): Record<string, unknown> {
  const rw = roots === "any" ? undefined : writableOf(roots, writable);
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ErrInvalidConfig("options must be a JSON object");
  remoteOptionsJson(value);
  const o = { ...(value as Record<string, unknown>) };
  if (o.kernel !== undefined) {
    const checked = checkedPath("kernel", o.kernel, roots, "file");
    o.kernel = checked.hostPath;
    if (checked.hostIdentity !== undefined) o.kernelIdentity = checked.hostIdentity;
  }
  if (o.policyScriptSource !== undefined)
    throw new ErrInvalidConfig("policyScriptSource is set by the node, not callers");
  if (o.policyScript !== undefined) {
    if (roots === "any") o.policyScript = onNode("policyScript", o.policyScript, roots);
    else {
      // Read once here: the sandbox would open the path again, after the check.
      o.policyScriptSource = readNodePolicyScript(o.policyScript, roots, rw);
      delete o.policyScript;
    }
  }
  if (o.upstreamCaPems !== undefined)
    throw new ErrInvalidConfig("upstreamCaPems is set by the node, not callers");
  if (Array.isArray(o.upstreamCa)) {
    if (roots === "any")
      o.upstreamCa = o.upstreamCa.map((p, i) => onNode(`upstreamCa[${i}]`, p, roots));
    else {
      // Read once here, as a policy script is: the sandbox would open the paths again.
      o.upstreamCaPems = o.upstreamCa.map(
        (p, i) => readNodeFile(`upstreamCa[${i}]`, p, roots, MAX_CA_PEM_BYTES).text,
      );
      delete o.upstreamCa;
    }
  }
  if (typeof o.mounts === "object" && o.mounts !== null)
    o.mounts = checkedMounts(o.mounts, roots, rw);
  if (Array.isArray(o.disks))
    o.disks = o.disks.map((d: unknown, i) => {
      if (typeof d !== "object" || d === null) return d;
      if ("volume" in d && d.volume !== undefined && roots !== "any" && !allowVolumes)
        throw new ErrInvalidConfig(
          `disks[${i}].volume: this node opens no named volumes to callers (its owner can, ` +
            "with serve --allow-volumes)",
        );
      if (!("hostPath" in d)) return d;
      const field = `disks[${i}].hostPath`;
      const checked = guestVisible(field, d.hostPath, roots, "file");
      const writes = !("readonly" in d) || d.readonly !== true;
      refuseWriteToReadOnlyRoot(
        field,
        checked.hostPath,
        writes,
        rw,
        "attach it with readonly: true",
      );
      return { ...d, ...checked };
    });
  if (o.fromCheckpoint !== undefined) {
    // A copy of a checkpoint gets the checkpoint's image, shape and mounts (as `run` and the
    // SDK give them). Its mounts are host paths like any caller's: the same check, or a
    // caller would reach, through a checkpoint the node's user took, a directory this node
    // opens to nobody.
    const copy = withCheckpointDefaults(o as SandboxOptions) as Record<string, unknown>;
    if (roots !== "any") checkpointDisks(String(o.fromCheckpoint), allowVolumes);
    if (typeof copy.mounts === "object" && copy.mounts !== null)
      copy.mounts = checkedMounts(
        copy.mounts,
        roots,
        rw,
        `checkpoint ${String(o.fromCheckpoint)}: `,
      );
    return copy;
  }
  return o;
}

/**
 * A copy gets its checkpoint's disks too: their content at the checkpoint, so a caller may
 * have it only where it could attach the source disk. A manifest names a disk's volume but
 * not the host path a `--disk FILE` came from (nor does a disk of a copy or a fork, its
 * private file, keep its origin): such a disk cannot be checked against --host-path, and
 * is refused to network callers; a volume's, only where the node opens volumes.
 */
function checkpointDisks(name: string, allowVolumes: boolean): void {
  (loadCheckpoint(name).disks ?? []).forEach((d, i) => {
    if (d.volume === undefined)
      throw new ErrInvalidConfig(
        `checkpoint ${name}: disks[${i}] (${d.guestPath}) came from a host file the node ` +
          "cannot check against --host-path: a copy of it is refused to network callers",
      );
    if (!allowVolumes)
      throw new ErrInvalidConfig(
        `checkpoint ${name}: disks[${i}].volume: this node opens no named volumes to ` +
          "callers (its owner can, with serve --allow-volumes)",
      );
  });
}

function checkedMounts(
  mounts: object,
  roots: HostPathRoots,
  writable: readonly string[] | undefined,
  from = "",
): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(mounts as Record<string, unknown>).map(([guest, mount]) => {
      if (typeof mount !== "object" || mount === null || !("hostPath" in mount))
        return [guest, mount];
      const field = `${from}mounts[${JSON.stringify(guest)}].hostPath`;
      const checked = guestVisible(field, mount.hostPath, roots, "file or directory");
      // Anything but an overlay or a read-only host_fs mount writes its host path.
      const m = mount as { type?: unknown; readonly?: unknown };
      const writes = m.type !== "overlay" && m.readonly !== true;
      refuseWriteToReadOnlyRoot(
        field,
        checked.hostPath,
        writes,
        writable,
        'mount it with readonly: true or as type "overlay"',
      );
      return [guest, { ...mount, ...checked }];
    }),
  );
}

/**
 * POST /v1/sandboxes's body: `{ options?, command? }` and nothing else. Anything other (the
 * options alone, an array, `null`) is refused, never read as "no options": a default sandbox
 * in place of the caller's (its `noNetwork` dropped) would widen what the guest may reach.
 */
export function createRequest(body: unknown): { options?: unknown; command?: string[] } {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new ErrInvalidConfig('request body must be a JSON object: { "options": {...} }');
  const doc = body as Record<string, unknown>;
  const unknown = Object.keys(doc).filter((k) => k !== "options" && k !== "command");
  if (unknown.length > 0)
    throw new ErrInvalidConfig(
      `unknown field(s) ${unknown.join(", ")} in the request body: options go under "options"`,
    );
  const { command } = doc;
  if (
    command !== undefined &&
    (!Array.isArray(command) || !command.every((a) => typeof a === "string"))
  )
    throw new ErrInvalidConfig("command must be an array of strings");
  return {
    ...(doc.options !== undefined ? { options: doc.options } : {}),
    ...(command !== undefined ? { command: command as string[] } : {}),
  };
}
