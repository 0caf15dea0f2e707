/**
 * The sandbox plan: everything about one sandbox, validated and defaulted once by config/,
 * and the only description of it that the layers below see (they never read SandboxOptions).
 * It is plain data and travels as JSON — to a supervisor on its stdin, to a remote node —
 * except for what can only live in the caller's process (hook callbacks, custom VFS
 * providers), which `planToJson` refuses with one line naming the field.
 */
import type { FileHookRule } from "../vfs/index.js";
import { ErrInvalidConfig } from "../errors.js";
import type { NetworkHookRule } from "./hook-rule.js";
import type { OnBlockedRequest } from "./observe-checks.js";
import type { ResolvedSandboxConfig } from "./options.js";
import type { MountConfig } from "./volumes.js";

export interface SandboxPlan extends ResolvedSandboxConfig {
  /**
   * Secret values by name (the names and hosts are in `secrets`). Kept apart so that the
   * public view (`publicConfig`) and everything derived from it (state records, inspect,
   * events) cannot carry them by accident.
   */
  readonly secretValues: Readonly<Record<string, string>>;
  /** Host-backed filesystems by absolute guest path (validated guest paths). */
  readonly mounts: Readonly<Record<string, MountConfig>>;
  /** File hook rules, checked (callbacks allowed in-process only). */
  readonly fileHooks: readonly FileHookRule[];
  /** HTTP hook rules, checked (callbacks allowed in-process only). */
  readonly networkHooks: readonly NetworkHookRule[];
  /** Decides held requests (live approval); in-process only. */
  readonly onBlockedRequest?: OnBlockedRequest;
}

/** The plan without secret values: what a sandbox shows as its `config`. */
export function publicConfig(plan: SandboxPlan): ResolvedSandboxConfig {
  const {
    secretValues: _secretValues,
    mounts: _mounts,
    fileHooks: _fileHooks,
    networkHooks: _networkHooks,
    onBlockedRequest: _onBlockedRequest,
    ...rest
  } = plan;
  return Object.freeze(rest);
}

/** Where values JSON would drop or mangle are: functions, and class instances (providers). */
function findNonPlainData(
  value: unknown,
  path: string,
  found: { callbacks: string[]; objects: string[] },
): void {
  if (typeof value === "function") return void found.callbacks.push(path);
  if (value === null || typeof value !== "object") return;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null)
    return void found.objects.push(path);
  for (const [key, inner] of Object.entries(value))
    findNonPlainData(inner, `${path}.${key}`, found);
}

/** Throws one line naming every such value under the labelled roots, not just the first. */
function assertPlainData(roots: Array<[unknown, string]>, where: string): void {
  const found = { callbacks: [] as string[], objects: [] as string[] };
  for (const [value, path] of roots) findNonPlainData(value, path, found);
  const problems = [
    ...(found.callbacks.length > 0
      ? [
          `${found.callbacks.join(", ")}: callbacks cannot be passed to ${where}; use a ` +
            "policyScript or declarative rules",
        ]
      : []),
    ...(found.objects.length > 0
      ? [
          `${found.objects.join(", ")}: objects such as custom providers cannot be passed to ${where}`,
        ]
      : []),
  ];
  if (problems.length > 0) throw new ErrInvalidConfig(problems.join("; "));
}

/**
 * The plan as JSON for another process. `label` names the root in errors (`options` for the
 * SDK, where the user wrote the callback); `where` says where it was going.
 */
export function planToJson(
  plan: SandboxPlan,
  label = "options",
  where = "a detached sandbox (it runs in another process)",
): string {
  const { mounts, fileHooks, networkHooks, onBlockedRequest } = plan;
  assertPlainData(
    [
      [onBlockedRequest, `${label}.onBlockedRequest`],
      [mounts, `${label}.mounts`],
      [fileHooks, `${label}.fileHooks`],
      [networkHooks, `${label}.networkHooks`],
    ],
    where,
  );
  return JSON.stringify(plan);
}

/** Where a remote sandbox's options go, for the refusals below. */
const REMOTE = "a remote sandbox (it runs on another machine)";

/**
 * Sandbox options as JSON for a remote node (`Sandbox.create({ remote })`), which plans them
 * itself, with its own defaults, CPU count and paths. Refused with one line naming the field,
 * as `planToJson` refuses them: callbacks, custom providers and provider mounts, which cannot
 * leave this process.
 */
export function remoteOptionsJson(options: object, label = "options"): string {
  assertPlainData([[options, label]], REMOTE);
  const mounts = (options as { mounts?: Record<string, { type?: unknown }> }).mounts;
  for (const [path, mount] of Object.entries(mounts ?? {})) {
    if (mount?.type === "provider")
      throw new ErrInvalidConfig(
        `${label}.mounts[${JSON.stringify(path)}]: provider mounts cannot be passed to ${REMOTE}`,
      );
  }
  return JSON.stringify(options);
}

const PLAN_KEYS = [
  "id",
  "image",
  "cpus",
  "vcpuCount",
  "memoryMb",
  "diskSizeMb",
  "timeoutSeconds",
  "env",
  "hostname",
  "privileged",
  "snapshot",
  "accel",
  "noNetwork",
  "allowPrivateHosts",
  "resolveOverrides",
  "disks",
  "networkIntercept",
  "allowedHosts",
  "denyAllHosts",
  "secrets",
  "secretValues",
  "networkHookCount",
  "addHosts",
  "dnsServers",
  "upstreamCa",
  "upstreamCaPems",
  "allowTcp",
  "approval",
  "networkAudit",
  "budgets",
  "tracePropagation",
  "mounts",
  "fileHooks",
  "networkHooks",
] as const;

/**
 * A plan read back from JSON (`planToJson` in the parent process). It was validated there;
 * this only checks that it is whole, so a truncated or foreign input fails with one line
 * instead of somewhere deep in the boot.
 */
export function planFromJson(text: string): SandboxPlan {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ErrInvalidConfig("sandbox plan is not valid JSON");
  }
  return planFromValue(value);
}

/** The same for a plan already parsed (part of a larger JSON message). */
export function planFromValue(value: unknown): SandboxPlan {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ErrInvalidConfig("sandbox plan must be a JSON object");
  const missing = PLAN_KEYS.filter((key) => !Object.hasOwn(value, key));
  if (missing.length > 0)
    throw new ErrInvalidConfig(`sandbox plan is missing ${missing.join(", ")}`);
  return Object.freeze(value as SandboxPlan);
}
