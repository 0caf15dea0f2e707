import { join } from "node:path";
import type { PortBinding } from "../config/index.js";
import type { SandboxUsage } from "../observe/index.js";
import { dataDir } from "../paths.js";

/**
 * starting: the supervisor is booting the VM; running: it serves the control socket;
 * stopping: it is shutting down; stopped: it ended cleanly; crashed: it (or its VM) died
 * without finishing, as found by the supervisor itself or by a reader that saw it dead.
 */
export type SandboxStatus = "starting" | "running" | "stopping" | "stopped" | "crashed";

export type { PortBinding };

/** The durable record of one long-lived sandbox (`state.json`). Never holds secret values. */
export interface SandboxRecord {
  id: string;
  image: string;
  status: SandboxStatus;
  /** The process that owns the VM and serves the control socket. */
  supervisorPid: number;
  /** `/proc/<pid>/stat` start time of the supervisor, so a recycled pid is not mistaken for it. */
  supervisorStartTicks: number;
  qemuPid?: number;
  /** ISO 8601. */
  createdAt: string;
  updatedAt: string;
  ports: PortBinding[];
  /** Resolved options, with environment values left out (names only). */
  config: {
    cpus: number;
    memoryMb: number;
    diskSizeMb: number;
    timeoutSeconds: number;
    hostname: string;
    workdir?: string;
    user?: string;
    privileged: boolean;
    accel: string;
    envNames: string[];
    /** Intercept mode: the allowlist (kept current: `allow-list add|delete` and approvals
     * for the sandbox change it), which of its entries an approval added (the supervisor
     * holds the live list with that mark; this is what `inspect` shows of it), and the names
     * of the secrets; their values are never written anywhere. */
    network?: {
      intercept: boolean;
      allowedHosts: string[];
      approvedHosts?: string[];
      secretNames: string[];
    };
    /** On stop, running commands get SIGTERM and this long before the VM is powered off. */
    gracefulShutdownMs?: number;
  };
  /** Why it crashed or stopped, when known. */
  lastError?: string;
  /** What it used, written when it stopped (`inspect` asks a running one). */
  usage?: SandboxUsage;
}

/** Statuses in which the supervisor should be alive. */
export const LIVE_STATUSES: ReadonlySet<SandboxStatus> = new Set([
  "starting",
  "running",
  "stopping",
]);

export function sandboxesDir(): string {
  return join(dataDir(), "sandboxes");
}

export function sandboxDir(id: string): string {
  return join(sandboxesDir(), id);
}

export function statePath(id: string): string {
  return join(sandboxDir(id), "state.json");
}

/** Serial console and the output of the command a detached `run` started. */
export function logPath(id: string): string {
  return join(sandboxDir(id), "vm.log");
}

/** The supervisor's control socket lives in the sandbox's run dir (removed with it). */
export function controlSocketPath(runDirPath: string): string {
  return join(runDirPath, "control.sock");
}
