/**
 * The one sandbox interface. Every front (the SDK, the CLI, `wheellock rpc`, a supervisor's
 * control socket, `wheellock serve`) drives a sandbox only through `SandboxApi`, and every
 * kind of sandbox (a VM in this process, one owned by a supervisor, one on another node)
 * implements it with the same verbs, options, results and typed errors.
 */
import type { Readable, Writable } from "node:stream";
import type { ConfigureOptions } from "../config/index.js";
import type { ExecOptions, ExecResult } from "./exec-collect.js";
import type { ExecProcess } from "./exec-process.js";
import type { ApprovalDecision, BlockedRequest, SandboxUsage } from "../observe/index.js";
import type { SandboxEvent } from "./events.js";

export interface SpawnOptions {
  /** Working directory in the guest (absolute). Default: the sandbox's workdir, else `/`. */
  cwd?: string;
  /** Extra environment for this command, over the image's and the sandbox's. */
  env?: Record<string, string>;
  /** `uid`, `uid:gid`, `name` or `name:group`. Default: the sandbox's user, else root. */
  user?: string;
  /** Run on a pseudo-terminal of this size (`true` = 24x80). Output arrives on stdout only. */
  tty?: boolean | { rows: number; cols: number };
}

/** A guest file's metadata, as `listFiles` and `stat` report it. */
export interface FileInfo {
  name: string;
  sizeBytes: number;
  /** Permission bits and type bits, as in `st_mode`. */
  mode: number;
  isDir: boolean;
  isSymlink: boolean;
  uid: number;
  gid: number;
  mtime: Date;
  /** Symlinks only. */
  linkTarget?: string;
}

/** What `writeFile` accepts: bytes at once, or a stream of them (never held whole in memory). */
export type FileData = string | Buffer | Uint8Array | Readable | AsyncIterable<Buffer | Uint8Array>;

export interface WriteFileOptions {
  /** Permission bits of a new file (default 0644). */
  mode?: number;
  /** Owner of the written file (default root). */
  uid?: number;
  gid?: number;
}

export interface StatOptions {
  /** Default true: the target of a symlink is described. */
  followSymlinks?: boolean;
}

export interface MkdirOptions {
  /** Permission bits of the directories created (default 0755). Parents are created too. */
  mode?: number;
}

export interface RemoveOptions {
  /** Remove a directory and everything in it. */
  recursive?: boolean;
}

/** A TCP connection to `127.0.0.1:port` inside the guest. */
export interface PortConnection {
  /** Resolves once the guest connected; rejects with the guest's reason (ECONNREFUSED, ...). */
  readonly connected: Promise<void>;
  /** Bytes from the guest service; ends when it closed its side. */
  readonly readable: Readable;
  /** Bytes to the guest service; `end()` half-closes the connection. */
  readonly writable: Writable;
  /** Resolves when both directions are over. */
  readonly done: Promise<void>;
  /** Abandons the connection (the guest closes its socket). */
  close(): void;
}

/** The intercept-mode allowlist as it is now. */
export interface AllowlistState {
  /** False for an open-mode sandbox, which has no allowlist. */
  intercepting: boolean;
  hosts: string[];
  /**
   * What an empty `hosts` means: every host when it was empty from the start (the reference's
   * semantics), no host when started with `denyAllHosts` or emptied by `disallowHosts`.
   */
  emptyDeniesAll: boolean;
  /**
   * The entries of `hosts` a live approval for the sandbox added: they never let a name
   * reach a link-local address (docs/OBSERVE.md). One someone adds by hand loses the mark.
   */
  approvedHosts?: string[];
}

/** What `checkpoint()` saved (sizes in bytes; see CheckpointSizes in checkpoint-store.ts). */
export interface CheckpointInfo {
  name: string;
  createdAt: string;
  sourceSandboxId: string;
  sizes: {
    /** The saved device state and guest RAM. */
    stateBytes: number;
    /** Non-zero bytes of the sandbox's writable disk. */
    upperDataBytes: number;
    /** Bytes of the files in its memory and overlay mounts (0 without such mounts). */
    mountDataBytes: number;
    /** Non-zero bytes of its extra disks at the checkpoint (0 without disks). */
    diskDataBytes: number;
    /** What the checkpoint store grew by. */
    newBytes: number;
    /** Bytes it shares with its base snapshot's disk and earlier checkpoints. */
    sharedBytes: number;
  };
  /** How long the sandbox was stopped. */
  pausedMs: number;
  /** The whole call, storing included. */
  durationMs: number;
}

export interface SandboxApi extends AsyncDisposable {
  readonly id: string;

  /** Runs a command to completion and collects its output. */
  exec(command: string | readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Starts a command and returns at once with its streams (stdin, PTY, resize, signals). */
  spawn(command: string | readonly string[], options?: SpawnOptions): ExecProcess;

  readFile(path: string): Promise<Buffer>;
  /** Streams a guest file; errors (missing file, a directory) arrive as the stream's error. */
  readFileStream(path: string): Readable;
  writeFile(path: string, data: FileData, options?: WriteFileOptions): Promise<void>;
  listFiles(path: string): Promise<FileInfo[]>;
  stat(path: string, options?: StatOptions): Promise<FileInfo>;
  /** `mkdir -p`: parents are created; an existing directory is fine. */
  mkdir(path: string, options?: MkdirOptions): Promise<void>;
  remove(path: string, options?: RemoveOptions): Promise<void>;

  /** A TCP connection to `127.0.0.1:port` inside the guest (what `-p` / port-forward use). */
  openPort(port: number): PortConnection;

  /**
   * Adds intercept-mode allowlist entries (same syntax as `allowedHosts`); new connections and
   * requests see them at once. Resolves with the entries that were not there yet. Rejects with
   * ErrInvalidConfig on an open-mode sandbox, which has no allowlist to change.
   */
  allowHosts(...hosts: string[]): Promise<string[]>;
  /** Removes allowlist entries (exact text, case-insensitive); resolves with those removed. */
  disallowHosts(...hosts: string[]): Promise<string[]>;
  allowedHosts(): Promise<AllowlistState>;

  /**
   * Requests held for approval (`approval` / `onBlockedRequest`), oldest first; empty when
   * approval is off.
   */
  pendingRequests(): Promise<BlockedRequest[]>;
  /**
   * Decides a held request: `once` lets it through, `sandbox` also adds its `host:port` to
   * the allowlist, `deny` refuses it. Rejects with ErrNotFound when it is not waiting (decided
   * already, timed out, or unknown).
   */
  decideRequest(requestId: number, decision: ApprovalDecision): Promise<void>;

  /** What the sandbox has used so far: CPU, memory, disk, network per host and secret, execs. */
  usage(): Promise<SandboxUsage>;

  /**
   * Applies secrets, allowlist entries, a policy script and env to the running sandbox, with
   * the guarantees they have at create time (secret values never reach the guest: commands
   * started from now on get placeholders). Secrets, allowlist and script need intercept mode
   * (`networkIntercept: true`): ErrInvalidConfig otherwise. How a warm sandbox is personalised
   * when it is handed out.
   */
  configure(options: ConfigureOptions): Promise<void>;

  /**
   * Saves the running sandbox's memory and disk as a named checkpoint (stopping it for a
   * moment); `Sandbox.create({ fromCheckpoint: name, forkMounts })` starts copies of it, with
   * its host directory mounts and private copies of its disks' content at the checkpoint
   * (docs/CHECKPOINTS.md). Sandboxes with custom provider mounts, a file open on a mount, or
   * operations in progress are refused.
   */
  checkpoint(name?: string): Promise<CheckpointInfo>;

  /** Exec, network, file, approval, usage and lifecycle events from now on, until it stops. */
  events(): AsyncIterableIterator<SandboxEvent>;

  /** Stops the sandbox and removes everything it wrote. Safe to call more than once. */
  close(): Promise<void>;
}
