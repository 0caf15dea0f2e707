/**
 * The SDK's face: `Sandbox.create()` boots a VM in this process, `Sandbox.connect()` attaches
 * to one a supervisor owns, `Sandbox.startDetached()` starts such a supervisor, `list()` and
 * `pool()`. Whatever they return is a `SandboxApi` (the `Sandbox` type), so code written
 * against one kind of sandbox runs against the others.
 */
import { resolve as resolvePath } from "node:path";
import { parsePublish, planSandbox, type SandboxOptions } from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import type { RemoteSandbox } from "../remote/index.js";
import {
  connectRemote,
  createRemote,
  ENV_REMOTE,
  resolveRemote,
  type NodeSandbox,
  type RemoteOptions,
} from "./remote.js";

import { createKubernetes, type KubernetesOptions, type KubernetesSandbox } from "./kubernetes.js";

type ResolvedRemote = NonNullable<ReturnType<typeof resolveRemote>>;
import {
  launchVmSandbox,
  SandboxPool,
  type LaunchInternals,
  type PoolOptions,
  type SandboxApi,
  type VmSandbox,
  withCheckpointDefaults,
} from "../sandbox/index.js";
import { listRecords, type SandboxRecord } from "../state/index.js";
import { connectSupervised, startSupervisor } from "../supervisor/index.js";

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

/** For wheellock's own fronts (`rpc`), benchmarks and tests; not part of the public API. */
export interface CreateInternals extends LaunchInternals {
  /** The sandbox id, when the caller must know it before the boot (for its log path). */
  id?: string;
}

/** `create`'s options for a sandbox on a node: `remote: true` takes the environment's. */
export type RemoteCreateOptions = SandboxOptions & { remote: RemoteOptions | true };

/**
 * `create`'s options for a sandbox claimed from a Kubernetes warm pool (docs/KUBERNETES.md):
 * only `secrets`, `allowedHosts` and `env` beside `remote`, the rest is the pool's.
 */
export type KubernetesCreateOptions = SandboxOptions & {
  remote: { kubernetes: KubernetesOptions };
};

/**
 * Boots a new sandbox in this process, or, with `remote`, on a node running `wheellock serve`
 * (the freer of two when `remote.url` lists several), or claims one from a Kubernetes warm
 * pool (`remote.kubernetes`). `internal` is for wheellock's own fronts and benchmarks.
 */
function create(options: KubernetesCreateOptions): Promise<KubernetesSandbox>;
function create(options: RemoteCreateOptions): Promise<NodeSandbox>;
function create(options?: SandboxOptions, internal?: CreateInternals): Promise<VmSandbox>;
async function create(
  options: SandboxOptions & {
    remote?: RemoteOptions | true | { kubernetes: KubernetesOptions };
  } = {},
  internal?: CreateInternals,
): Promise<VmSandbox | NodeSandbox> {
  const { remote, ...local } = options;
  if (remote !== undefined && remote !== true && "kubernetes" in remote)
    return createKubernetes(local, remote.kubernetes);
  if (remote !== undefined) return createRemote(local, resolveRemote(remote) as ResolvedRemote);
  // A program whose environment names a node must not boot its sandbox here without a word
  // (code meant to run elsewhere would run on this machine). It says `remote: true` to go
  // there: what `create` returns without `remote` is typed as a local VmSandbox. wheellock's
  // own fronts (`internal`) create here.
  if (internal === undefined && process.env[ENV_REMOTE])
    throw new ErrInvalidConfig(
      `${ENV_REMOTE} is set: pass remote: true to create the sandbox on that node ` +
        `(or unset ${ENV_REMOTE} to create it on this machine)`,
    );
  const { id, ...launch } = internal ?? {};
  return launchVmSandbox(
    planSandbox(withCheckpointDefaults(local), undefined, undefined, id),
    launch,
  );
}

export interface ConnectOptions {
  /** The sandbox is on a node (`WHEELLOCK_REMOTE` and `WHEELLOCK_TOKEN` fill in). */
  remote?: RemoteOptions | true;
}

/**
 * Attaches to a long-lived sandbox by id: one that another process owns (`wheellock run -d`,
 * `startDetached`) over its supervisor's control socket, or one on a node (`remote`, an id
 * that names its node, or `WHEELLOCK_REMOTE` set) over a WebSocket. The same API either way.
 */
function connect(id: string, options: ConnectOptions = {}): RemoteSandbox {
  const remote = resolveRemote(options.remote);
  if (remote) return connectRemote(id, remote);
  if (id.includes("@"))
    throw new ErrInvalidConfig(`${id} is on a node: give remote (or set ${ENV_REMOTE})`);
  return connectSupervised(id);
}

/**
 * Starts a long-lived sandbox in a supervisor process of its own, as `wheellock run -d`
 * does: it outlives this process and is managed by id (`connect`, `list`, the CLI's `exec`,
 * `kill`, `rm`). Its plan travels as JSON (never in argv), so hook callbacks and custom
 * providers are refused: use `policyScript` and declarative rules instead. Unlike `create`,
 * it has no deadline unless `timeoutSeconds` is given.
 */
async function startDetached(
  options: SandboxOptions = {},
  start: DetachedStartOptions = {},
): Promise<RemoteSandbox> {
  const plan = planSandbox(
    withCheckpointDefaults({ ...options, timeoutSeconds: options.timeoutSeconds ?? 0 }),
  );
  const grace = start.gracefulShutdownSeconds ?? 0;
  if (!Number.isFinite(grace) || grace < 0)
    throw new ErrInvalidConfig(`gracefulShutdownSeconds must be a number >= 0, got ${grace}`);
  const id = await startSupervisor(
    {
      plan,
      command: [],
      ports: parsePublish(start.publish ?? [], start.address ?? []),
      gracefulShutdownMs: Math.round(grace * 1000),
      ...(start.eventsPath !== undefined ? { eventsPath: resolvePath(start.eventsPath) } : {}),
    },
    "options",
  );
  return connectSupervised(id);
}

/** The records of long-lived sandboxes, newest first, each status checked now. */
function list(): SandboxRecord[] {
  return listRecords();
}

/**
 * Keeps `size` sandboxes of this configuration started so `acquire()` returns one at once
 * (docs/PERFORMANCE.md has the figures). `close()` the pool when done.
 */
function pool(options: PoolOptions): SandboxPool {
  return new SandboxPool(options, async (o) => {
    const sandbox = await launchVmSandbox(planSandbox(o), { deferTimeout: true });
    // One command while nobody waits: the guest's exec path (and, under TCG, its translated
    // code) is warm for the caller's first command (an image without `true` just misses it).
    await sandbox.exec(["true"]).catch(() => undefined);
    return sandbox;
  });
}

export const Sandbox = { create, connect, startDetached, list, pool } as const;
/** Any sandbox: in this process, behind a supervisor, or on another node. */
export type Sandbox = SandboxApi;
