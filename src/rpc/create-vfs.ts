/**
 * `create`'s `vfs` object (reference/matchlock-rpc.md §8, §7.2) as wheellock mounts and file
 * hooks, checked in the reference's order with its messages (`Config.ValidateVFS`). Wire rules
 * run on the host: a `before` rule with action `block` refuses matching operations with EPERM;
 * `allow` rules and `after` rules do nothing in the reference and are dropped here (a
 * wheellock `allow` would end the evaluation and shadow later blocks). File events go out when
 * `vfs.interception` has `emit_events` or any rule, as in the reference.
 */
import {
  validateGuestMount,
  validateGuestPathWithinWorkspace,
  type MountConfig,
  type SandboxOptions,
} from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import type { FileHookRule, FileOp } from "../vfs/index.js";
import { booleanField, objectField, stringField, stringListField, type Params } from "./params.js";
import { RpcCode, RpcError } from "./wire.js";

export interface VfsMapping {
  readonly options: SandboxOptions;
  readonly workspace: string | undefined;
  readonly fileEvents: boolean;
}

function invalid(message: string): RpcError {
  return new RpcError(RpcCode.InvalidParams, message);
}

/** A wheellock config check, its error as -32602 with the reference's prefix. */
function checked<T>(fn: () => T, prefix = ""): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof ErrInvalidConfig)) throw err;
    const why = err.message.replace(/^invalid configuration: /, "");
    throw invalid(`invalid configuration: ${prefix}${why}`);
  }
}

/** The reference's op names (with its aliases) as wheellock's; `close` and `sync` have none. */
const OPS: Readonly<Record<string, readonly FileOp[]>> = {
  stat: ["stat"],
  readdir: ["readdir"],
  read_dir: ["readdir"],
  open: ["open"],
  create: ["create"],
  mkdir: ["mkdir"],
  chmod: ["chmod"],
  remove: ["unlink", "rmdir"],
  remove_all: ["unlink", "rmdir"],
  removeall: ["unlink", "rmdir"],
  rename: ["rename"],
  symlink: ["symlink"],
  readlink: ["readlink"],
  read: ["read"],
  write: ["write"],
  truncate: ["truncate"],
  close: [],
  sync: [],
};

function mount(guestPath: string, raw: unknown): MountConfig {
  const where = `vfs.mounts[${JSON.stringify(guestPath)}]`;
  const m = objectField({ m: raw }, "m", where);
  if (m === undefined) throw invalid(`${where} must be a JSON object`);
  const type = stringField(m, "type", `${where}.type`).trim();
  const hostPath = stringField(m, "host_path", `${where}.host_path`);
  if (type === "" || type === "memory") return { type: "memory" };
  if (type === "host_fs") {
    if (hostPath === "") throw invalid(`${where}.host_path is required for host_fs mounts`);
    return {
      type: "host_fs",
      hostPath,
      readonly: booleanField(m, "readonly", `${where}.readonly`),
    };
  }
  if (type === "overlay") {
    if (m.upper != null || m.lower != null)
      throw invalid(`${where}: upper/lower overlay config is not supported; use host_path`);
    if (hostPath === "") throw invalid(`${where}: host_path is required for overlay mounts`);
    return { type: "overlay", hostPath };
  }
  // The reference serves an unknown type from memory; a typo should not lose the host files.
  throw invalid(
    `${where}.type must be "memory", "host_fs" or "overlay", not ${JSON.stringify(type)}`,
  );
}

function fileRule(raw: unknown, index: number): FileHookRule | "noop" | undefined {
  const where = `vfs.interception.rules[${index}]`;
  const r = objectField({ r: raw }, "r", where);
  if (r === undefined) throw invalid(`${where} must be a JSON object`);
  const action = stringField(r, "action", `${where}.action`).trim().toLowerCase();
  if (action !== "allow" && action !== "block") return undefined; // the reference drops it
  const phase = stringField(r, "phase", `${where}.phase`).trim().toLowerCase();
  const listed = stringListField(r, "ops", `${where}.ops`).map((o) => o.trim().toLowerCase());
  const ops = [...new Set(listed.flatMap((o) => OPS[o] ?? []))];
  // An allow, an after-phase block, or ops wheellock has no counterpart for: nothing to do.
  if (action === "allow" || phase === "after" || (listed.length > 0 && ops.length === 0))
    return "noop";
  const path = stringField(r, "path", `${where}.path`).trim();
  const name = stringField(r, "name", `${where}.name`);
  return {
    ...(name !== "" ? { name } : {}),
    ...(ops.length > 0 ? { ops } : {}),
    ...(path !== "" ? { path } : {}),
    action: "block",
    errno: "EPERM",
  };
}

function interceptionRules(i: Params): { hooks: FileHookRule[]; anyValid: boolean } {
  const value = i.rules;
  if (value === undefined || value === null) return { hooks: [], anyValid: false };
  if (!Array.isArray(value)) throw invalid("vfs.interception.rules must be an array");
  const mapped = value.map((rule: unknown, n) => fileRule(rule, n));
  return {
    hooks: mapped.filter((r): r is FileHookRule => r !== undefined && r !== "noop"),
    anyValid: mapped.some((r) => r !== undefined),
  };
}

export function mapVfs(v: Params | undefined): VfsMapping {
  if (v === undefined) return { options: {}, workspace: undefined, fileEvents: false };
  const workspace = stringField(v, "workspace", "vfs.workspace").trim();
  const mounts = objectField(v, "mounts", "vfs.mounts") ?? {};
  const direct = objectField(v, "direct_mounts", "vfs.direct_mounts") ?? {};
  const interception = objectField(v, "interception", "vfs.interception");
  const hasMounts = Object.keys(mounts).length > 0;
  if (workspace !== "" && !hasMounts)
    throw invalid("invalid configuration: vfs.workspace requires at least one vfs.mounts entry");
  if (hasMounts && workspace === "")
    throw invalid("invalid configuration: vfs.workspace is required when vfs.mounts is set");
  if (interception !== undefined && !hasMounts)
    throw invalid("invalid configuration: vfs.interception requires at least one vfs.mounts entry");
  const out: Record<string, MountConfig> = {};
  if (hasMounts) {
    checked(() => validateGuestMount(workspace), "vfs.workspace: ");
    for (const [guestPath, raw] of Object.entries(mounts)) {
      checked(() => validateGuestPathWithinWorkspace(guestPath, workspace));
      out[guestPath] = mount(guestPath, raw);
    }
  }
  for (const [guestPath, raw] of Object.entries(direct)) {
    const where = `vfs.direct_mounts[${JSON.stringify(guestPath)}]`;
    const d = objectField({ d: raw }, "d", where) ?? {};
    const hostPath = stringField(d, "host_path", `${where}.host_path`);
    if (hostPath === "") throw invalid(`${where}.host_path is required`);
    if (Object.hasOwn(out, guestPath))
      throw invalid(`${where}: ${guestPath} is also in vfs.mounts`);
    out[guestPath] = {
      type: "host_fs",
      hostPath,
      readonly: booleanField(d, "readonly", `${where}.readonly`),
    };
  }
  const rules = interception ? interceptionRules(interception) : { hooks: [], anyValid: false };
  const emit = interception
    ? booleanField(interception, "emit_events", "vfs.interception.emit_events")
    : false;
  return {
    options: {
      ...(Object.keys(out).length > 0 ? { mounts: out } : {}),
      ...(rules.hooks.length > 0 ? { fileHooks: rules.hooks } : {}),
    },
    workspace: hasMounts ? workspace : undefined,
    fileEvents: interception !== undefined && (emit || rules.anyValid),
  };
}
