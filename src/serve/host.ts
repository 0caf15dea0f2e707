/**
 * What a node serves sandboxes from: supervisors it started (the normal form, whose sandboxes
 * outlive a restart of `serve`) or one sandbox in its own process (`--single`). The routes and
 * the data plane see only this interface.
 */
import type { Duplex, Readable } from "node:stream";
import type { SandboxOptions } from "../config/index.js";
import type { SandboxRecord, SandboxStatus } from "../state/index.js";
import type { SandboxUsage } from "../observe/index.js";
import type { LogCursor } from "./log-slice.js";

/** One sandbox of the node, as the API shows it (never a secret value). */
export interface HostedSandbox {
  /** The local id (`vm-` + 8 hex). */
  id: string;
  /** When this node created it: part of what its token is derived from. */
  createdAt: string;
  status: SandboxStatus;
  image: string;
  /** vCPUs it holds (for the node's free-vCPU count). */
  vcpus: number;
  memoryMb: number;
  config: SandboxRecord["config"];
  lastError?: string;
}

export interface SandboxHost {
  /**
   * Starts a sandbox from the caller's options (checked here, on the node), and `command` in
   * it when given (its output goes to the sandbox's log, as with `run -d`).
   */
  create(options: SandboxOptions, command: readonly string[]): Promise<HostedSandbox>;
  list(): HostedSandbox[];
  find(id: string): HostedSandbox | undefined;
  /**
   * Readies the sandbox's side of a client's connection as soon as it is accepted, before its
   * first REQUEST arrives (a supervisor connection opened meanwhile, so the request does not
   * wait for it). `serve` is called on the result at once.
   */
  prepareOperation(id: string): PreparedOperation;
  /**
   * The sandbox's log (serial console, the create command's output; both segments of its
   * ring) after `cursor`, and where that read ended.
   */
  readLog(id: string, cursor: LogCursor, maxBytes: number): { data: Buffer; cursor: LogCursor };
  /**
   * The sandbox's usage (as `inspect` shows it): asked of it while it runs, undefined when it
   * does not answer within `timeoutMs`; a stopped one's final figures where they were kept.
   */
  usage(id: string, timeoutMs: number): Promise<SandboxUsage | undefined>;
  /**
   * Stops a running sandbox and keeps its record and log (as a local `kill`), until `remove`;
   * ErrVMNotRunning when it is not running.
   */
  stop(id: string): Promise<void>;
  /** Stops the sandbox (if running) and removes everything of it. */
  remove(id: string): Promise<void>;
  /** Stops serving; sandboxes owned by supervisors keep running. */
  close(): Promise<void>;
}

export interface PreparedOperation {
  /**
   * Serves the operations of the client's connection: `input` carries the client's messages
   * as the node let them through (request-gate.ts); replies are written to `stream`. The
   * sandbox side ends when `stream` closes.
   */
  serve(stream: Duplex, input: Readable): void;
}

/** Statuses that hold node resources. */
export function holdsResources(status: SandboxStatus): boolean {
  return status === "starting" || status === "running" || status === "stopping";
}
