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
  launchVmSandbox,
  SandboxPool,
  type LaunchInternals,
  type PoolOptions,
  type SandboxApi,
  type VmSandbox,
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

/** Boots a new sandbox in this process. `internal` is for wheellock's own fronts and benchmarks. */
async function create(
  options: SandboxOptions = {},
  internal: CreateInternals = {},
): Promise<VmSandbox> {
  const { id, ...launch } = internal;
  return launchVmSandbox(planSandbox(options, undefined, undefined, id), launch);
}

/**
 * Attaches to a long-lived sandbox that another process owns (`wheellock run -d`,
 * `startDetached`), by id: the same API, over its supervisor's control socket.
 */
function connect(id: string): RemoteSandbox {
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
  const plan = planSandbox({ ...options, timeoutSeconds: options.timeoutSeconds ?? 0 });
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
