/**
 * The reference's `create` payload (`api.Config`, reference/matchlock-rpc.md §8) mapped onto
 * wheellock's `SandboxOptions`, with the reference's defaults and merge rule (resources merge
 * per field, only positive values override; `network` replaces the default wholesale) and its
 * validation order and messages. What does not map one to one is listed in docs/RPC.md.
 * Every failure is an RpcError -32602 naming the field as the client wrote it.
 */
import type { DiskConfig, SandboxOptions } from "../config/index.js";
import { mapNetwork } from "./create-network.js";
import { mapVfs } from "./create-vfs.js";
import {
  booleanField,
  numberField,
  objectField,
  objectParams,
  stringField,
  stringListField,
  stringMapField,
  type Params,
} from "./params.js";
import { RpcCode, RpcError } from "./wire.js";

/** `api.DefaultConfig()`'s resources. */
const DEFAULT_RESOURCES = { cpus: 1, memoryMb: 512, diskSizeMb: 5120, timeoutSeconds: 300 };

/** The mapped payload: the SDK options plus what the rpc session itself does with the rest. */
export interface CreatePlan {
  readonly options: SandboxOptions;
  /** Start the image's ENTRYPOINT/CMD once the VM runs (reference: `launch_entrypoint`). */
  readonly launchEntrypoint: boolean;
  /** `image_config.entrypoint` / `cmd` when given (they replace the image's). */
  readonly entrypoint: readonly string[] | undefined;
  readonly cmd: readonly string[] | undefined;
  /** `vfs.workspace`: where commands start when neither the request nor the image says. */
  readonly workspace: string | undefined;
  /** Send `event` notifications for file operations (`vfs.interception` present with rules or `emit_events`). */
  readonly fileEvents: boolean;
  /** `add_hosts` of a `no_network` sandbox: written into the guest's /etc/hosts after boot. */
  readonly guestHosts: Readonly<Record<string, string>>;
}

function invalid(message: string): RpcError {
  return new RpcError(RpcCode.InvalidParams, message);
}

function positive(p: Params, key: string, integer: boolean, fallback: number): number {
  const n = numberField(p, key, { integer, where: `resources.${key}` });
  // The reference lets only positive values override and silently keeps the default for a
  // negative one; here a negative value is the client's mistake and answers -32602.
  if (n < 0)
    throw invalid(`resources.${key} must be >= 0 (0 or absent: the default ${fallback}), got ${n}`);
  return n > 0 ? n : fallback;
}

function resources(
  p: Params,
): Pick<SandboxOptions, "cpus" | "memoryMb" | "diskSizeMb" | "timeoutSeconds"> {
  const r = objectField(p, "resources") ?? {};
  return {
    cpus: positive(r, "cpus", false, DEFAULT_RESOURCES.cpus),
    memoryMb: positive(r, "memory_mb", true, DEFAULT_RESOURCES.memoryMb),
    diskSizeMb: positive(r, "disk_size_mb", true, DEFAULT_RESOURCES.diskSizeMb),
    timeoutSeconds: positive(r, "timeout_seconds", true, DEFAULT_RESOURCES.timeoutSeconds),
  };
}

/** A string array that may be null (null or absent: undefined, i.e. "keep the image's"). */
function optionalList(p: Params, key: string, where: string): string[] | undefined {
  return p[key] === undefined || p[key] === null ? undefined : stringListField(p, key, where);
}

function disks(p: Params): DiskConfig[] {
  const value = p.extra_disks;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid("extra_disks must be an array");
  return value.map((entry: unknown, i) => {
    const where = `extra_disks[${i}]`;
    const d = objectField({ d: entry }, "d", where);
    if (d === undefined) throw invalid(`${where} must be a JSON object`);
    const hostPath = stringField(d, "host_path", `${where}.host_path`);
    const guestPath = stringField(d, "guest_mount", `${where}.guest_mount`);
    if (hostPath === "") throw invalid(`${where}.host_path is required`);
    if (guestPath === "") throw invalid(`${where}.guest_mount is required`);
    return { hostPath, guestPath, readonly: booleanField(d, "readonly", `${where}.readonly`) };
  });
}

/** Maps and checks the payload; throws RpcError(-32602) in the reference's order. */
export function mapCreatePayload(params: unknown): CreatePlan {
  const p = objectParams(params, true);
  const image = stringField(p, "image");
  if (image.trim() === "") throw invalid("image is required (e.g., alpine:latest)");
  if (stringField(p, "id") !== "") throw invalid("id is internal-only and cannot be set");
  const network = mapNetwork(objectField(p, "network"));
  const vfs = mapVfs(objectField(p, "vfs"));
  const imageConfig = objectField(p, "image_config") ?? {};
  const user = stringField(imageConfig, "user", "image_config.user");
  const workdir = stringField(imageConfig, "working_dir", "image_config.working_dir");
  // image_config.env replaces the image's ENV in the reference; here it goes under `env`.
  const env = {
    ...stringMapField(imageConfig, "env", "image_config.env"),
    ...stringMapField(p, "env"),
  };
  const extraDisks = disks(p);
  const options: SandboxOptions = {
    image: image.trim(),
    ...resources(p),
    ...(booleanField(p, "privileged") ? { privileged: true } : {}),
    ...(Object.keys(env).length > 0 ? { env } : {}),
    ...(user !== "" ? { user } : {}),
    ...(workdir !== "" ? { workdir } : {}),
    ...(extraDisks.length > 0 ? { disks: extraDisks } : {}),
    ...network.options,
    ...vfs.options,
  };
  return {
    options,
    launchEntrypoint: booleanField(p, "launch_entrypoint"),
    entrypoint: optionalList(imageConfig, "entrypoint", "image_config.entrypoint"),
    cmd: optionalList(imageConfig, "cmd", "image_config.cmd"),
    workspace: vfs.workspace,
    fileEvents: vfs.fileEvents,
    guestHosts: network.guestHosts,
  };
}

/** wheellock option names that lead a config error, as the client wrote them in the payload. */
const REFERENCE_NAMES: Readonly<Record<string, string>> = {
  cpus: "resources.cpus",
  memoryMb: "resources.memory_mb",
  diskSizeMb: "resources.disk_size_mb",
  timeoutSeconds: "resources.timeout_seconds",
  allowedHosts: "network.allowed_hosts",
  addHosts: "network.add_hosts",
  resolveOverrides: "network.add_hosts",
  dnsServers: "network.dns_servers",
  policyScript: "network.policy_script",
  secrets: "network.secrets",
  hostname: "network.hostname",
  networkHooks: "network.interception.rules",
  fileHooks: "vfs.interception.rules",
  mounts: "vfs.mounts",
  disks: "extra_disks",
  user: "image_config.user",
  workdir: "image_config.working_dir",
  env: "env",
  image: "image",
};

const PREFIX = "invalid configuration: ";

/** A wheellock config error's message with the payload's name for the field it starts with. */
export function inReferenceTerms(message: string): string {
  const body = message.startsWith(PREFIX) ? message.slice(PREFIX.length) : message;
  const word = /^[A-Za-z]+/.exec(body)?.[0] ?? "";
  const name = Object.hasOwn(REFERENCE_NAMES, word) ? REFERENCE_NAMES[word] : undefined;
  if (name === undefined || /^\w/.test(body.slice(word.length))) return message;
  return `${PREFIX}${name}${body.slice(word.length)}`;
}
