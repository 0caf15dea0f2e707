/**
 * A sandbox whose VM runs in this process: the `SandboxApi` over the guest agent's channel,
 * the host-side mounts and the network policy. `launchVmSandbox` (launch.ts) builds one;
 * everything it holds is released through one ResourceStack, on `close()`, on a failure,
 * and (synchronously) on process exit.
 */
import type { Readable } from "node:stream";
import type { GuestAgent } from "../channel/index.js";
import {
  configureNeedsIntercept,
  planConfigure,
  publicConfig,
  type ConfigureOptions,
  type ForkMountsMode,
  type ResolvedSandboxConfig,
  type SandboxPlan,
} from "../config/index.js";
import { ErrInvalidConfig, ErrTimeout, ErrVMNotRunning, WheellockError } from "../errors.js";
import type { HostAllowlist } from "../net/index.js";
import type { ApprovalDecision, BlockedRequest, SandboxUsage } from "../observe/index.js";
import type { ResourceStack } from "../util/index.js";
import type { Accel, QemuProcess } from "../vmm/index.js";
import type {
  AllowlistState,
  CheckpointInfo,
  FileData,
  FileInfo,
  MkdirOptions,
  PortConnection,
  RemoveOptions,
  SandboxApi,
  SpawnOptions,
  StatOptions,
  WriteFileOptions,
} from "./api.js";
import type { EventHub, SandboxEvent } from "./events.js";
import { runCollected, type ExecOptions, type ExecResult } from "./exec-collect.js";
import { commandArgv, composeExecEnv } from "./exec-env.js";
import { ExecProcess } from "./exec-process.js";
import { SandboxFiles } from "./files.js";
import type { FuseMounts } from "./fuse-mounts.js";
import type { ImageSelection } from "./image.js";
import type { SandboxNetwork } from "./network.js";
import type { SandboxObserver } from "./observer.js";

/** More copies at once than this is a mistake, not a plan (each is a VM). */
const MAX_FORKS = 64;

/** What launch.ts hands over once the VM runs. */
export interface VmSandboxParts {
  plan: SandboxPlan;
  accel: Accel;
  bootMs: number;
  restored: boolean;
  agent: GuestAgent;
  qemu: QemuProcess;
  image: ImageSelection;
  events: EventHub;
  network: SandboxNetwork | undefined;
  mounts: FuseMounts | undefined;
  /** Owns everything acquired for this sandbox, the VM included. */
  resources: ResourceStack;
  /** Attribution, approvals, spans, usage and budgets. */
  observer: SandboxObserver;
  /** Checkpoints and copies of this sandbox (launch.ts: they need the launcher itself). */
  copies: SandboxCopies;
  /**
   * False: nothing reads `usage()` after close (LaunchInternals.noFinalUsage); the final figures
   * are then taken only for an events subscriber.
   */
  finalUsage?: boolean;
}

/** What `checkpoint` and `fork` run (launch.ts binds them to the sandbox's VM). */
export interface SandboxCopies {
  checkpoint(name: string | undefined): Promise<CheckpointInfo>;
  fork(count: number, options: ForkOptions): Promise<VmSandbox[]>;
}

export interface ForkOptions {
  /** Extra options for the copies (env, network policy, secrets, timeout...): not the VM's shape. */
  timeoutSeconds?: number;
  /**
   * What each copy gets for the source's read-write host directory mounts: `overlay`
   * (default: a writable layer of its own), `readonly` (EROFS) or `share` (the same host files).
   */
  forkMounts?: ForkMountsMode;
}

export class VmSandbox implements SandboxApi {
  readonly id: string;
  /** The sandbox's resolved configuration (no secret values). */
  readonly config: ResolvedSandboxConfig;
  /** The accelerator the VM runs on. */
  readonly accel: Accel;
  /** Milliseconds from starting QEMU to the guest agent being ready. */
  readonly bootMs: number;
  /** True when the VM resumed from a memory snapshot instead of booting its kernel. */
  readonly restoredFromSnapshot: boolean;
  /** The image booted, with its ENV/ENTRYPOINT/CMD/USER/WORKDIR. */
  readonly image: ImageSelection;
  readonly files: SandboxFiles;

  private readonly agent: GuestAgent;
  private readonly qemu: QemuProcess;
  private readonly hub: EventHub;
  private readonly network: SandboxNetwork | undefined;
  private readonly mounts: FuseMounts | undefined;
  private readonly resources: ResourceStack;
  private readonly observer: SandboxObserver;
  private finalUsage: SandboxUsage | undefined;
  private readonly finalUsageWanted: boolean;
  private readonly copies: SandboxCopies;
  private failure: WheellockError | undefined;
  private closing: Promise<void> | undefined;
  private deadline: NodeJS.Timeout | undefined;
  /** Env added by `configure`, over `config.env`. */
  private configuredEnv: Readonly<Record<string, string>> = {};

  constructor(parts: VmSandboxParts) {
    this.id = parts.plan.id;
    this.config = publicConfig(parts.plan);
    this.accel = parts.accel;
    this.bootMs = parts.bootMs;
    this.restoredFromSnapshot = parts.restored;
    this.image = parts.image;
    this.agent = parts.agent;
    this.qemu = parts.qemu;
    this.hub = parts.events;
    this.network = parts.network;
    this.mounts = parts.mounts;
    this.resources = parts.resources;
    this.observer = parts.observer;
    this.copies = parts.copies;
    this.finalUsageWanted = parts.finalUsage ?? true;
    this.files = new SandboxFiles(
      this.agent,
      () => this.ensureRunning(),
      () => this.mounts?.files,
    );
  }

  /**
   * Where the upper layer of each overlay mount with `keepUpper` is kept (guest path -> host
   * directory). It holds the guest's changes as plain files and survives `close()`.
   */
  get keptOverlays(): Readonly<Record<string, string>> {
    return this.mounts?.keptUpperDirs ?? {};
  }

  /** True when the network goes through the intercepting proxy (allowlist, TLS, secrets). */
  get intercepting(): boolean {
    return this.network?.egress !== undefined;
  }

  /** True once the sandbox ended because of an error (timeout, crash, guest fault). */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  get running(): boolean {
    return this.failure === undefined && this.closing === undefined;
  }

  async exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return runCollected(this.spawn(command, options), options);
  }

  spawn(command: string | readonly string[], options: SpawnOptions = {}): ExecProcess {
    this.ensureRunning();
    const argv = commandArgv(command);
    const tty = options.tty === true ? { rows: 24, cols: 80 } : options.tty || undefined;
    const startedAt = Date.now();
    const user = options.user ?? this.config.user ?? this.image.config?.user;
    const cwd = options.cwd ?? this.config.workdir ?? this.image.config?.workdir;
    const stream = this.agent.exec({
      argv,
      env: composeExecEnv({
        image: this.image.env,
        sandbox: { ...this.config.env, ...this.configuredEnv },
        network: this.network?.execEnv,
        command: options.env,
        hostname: this.config.hostname,
        tty: tty !== undefined,
      }),
      ...(cwd !== undefined ? { cwd } : {}),
      ...(user !== undefined ? { user } : {}),
      ...(tty !== undefined ? { tty } : {}),
    });
    const tracked = this.observer.execStarted(stream.id, argv);
    let pid: number | undefined;
    stream.started.then(
      (p) => (pid = p),
      () => undefined,
    );
    stream.exit.catch((err: Error) => tracked.ended(undefined, Date.now() - startedAt, err));
    return new ExecProcess(stream, startedAt, (exit) => {
      tracked.ended(exit.exitCode, exit.durationMs);
      this.hub.emit({
        type: "exec",
        timestamp: new Date(),
        exec: {
          execId: exit.execId,
          ...(pid !== undefined ? { pid } : {}),
          command: argv,
          exitCode: exit.exitCode,
          durationMs: exit.durationMs,
        },
      });
    });
  }

  writeFile(path: string, data: FileData, options?: WriteFileOptions): Promise<void> {
    return this.files.writeFile(path, data, options);
  }

  readFile(path: string): Promise<Buffer> {
    return this.files.readFile(path);
  }

  readFileStream(path: string): Readable {
    return this.files.readFileStream(path);
  }

  listFiles(path: string): Promise<FileInfo[]> {
    return this.files.list(path);
  }

  stat(path: string, options?: StatOptions): Promise<FileInfo> {
    return this.files.stat(path, options);
  }

  mkdir(path: string, options?: MkdirOptions): Promise<void> {
    return this.files.mkdir(path, options);
  }

  remove(path: string, options?: RemoveOptions): Promise<void> {
    return this.files.remove(path, options);
  }

  openPort(port: number): PortConnection {
    this.ensureRunning();
    return this.agent.forwardPort(port);
  }

  async allowHosts(...hosts: string[]): Promise<string[]> {
    const list = this.allowlist();
    const before = new Set(list.entries.map((e) => e.toLowerCase()));
    list.add(hosts);
    return list.entries.filter((e) => !before.has(e.toLowerCase()));
  }

  async disallowHosts(...hosts: string[]): Promise<string[]> {
    const list = this.allowlist();
    const before = list.entries;
    list.remove(hosts);
    const after = new Set(list.entries);
    return before.filter((e) => !after.has(e));
  }

  async allowedHosts(): Promise<AllowlistState> {
    this.ensureRunning();
    const list = this.network?.egress?.allowlist;
    return {
      intercepting: list !== undefined,
      hosts: list?.entries ?? [],
      emptyDeniesAll: list?.emptyDeniesAll ?? false,
      approvedHosts: list?.approvedEntries ?? [],
    };
  }

  async pendingRequests(): Promise<BlockedRequest[]> {
    this.ensureRunning();
    return this.observer.pendingRequests();
  }

  async decideRequest(requestId: number, decision: ApprovalDecision): Promise<void> {
    this.ensureRunning();
    this.observer.decideRequest(requestId, decision);
  }

  /** What it used so far; after it stopped, the figures it stopped with. */
  async usage(): Promise<SandboxUsage> {
    return this.finalUsage ?? this.observer.usage();
  }

  /**
   * @internal Calls `listener` with the allowlist after every change (`allowHosts`, an
   * approval for the sandbox); the supervisor keeps the state record current with it.
   */
  onAllowlistChange(listener: (hosts: string[], approvedHosts: string[]) => void): void {
    const list = this.network?.egress?.allowlist;
    list?.onChange(() => listener(list.entries, list.approvedEntries));
  }

  async configure(options: ConfigureOptions): Promise<void> {
    this.ensureRunning();
    const change = planConfigure(options);
    if (configureNeedsIntercept(change)) {
      const configure = this.network?.configure;
      if (!configure)
        throw new ErrInvalidConfig(
          `sandbox ${this.id} was started without network interception: secrets, ` +
            "allowedHosts and policyScript need it (start it with networkIntercept: true)",
        );
      await configure(change);
    }
    this.configuredEnv = { ...this.configuredEnv, ...change.env };
  }

  async checkpoint(name?: string): Promise<CheckpointInfo> {
    this.ensureRunning();
    return this.copies.checkpoint(name);
  }

  /**
   * Starts `count` copies of this running sandbox (stopping it for a moment to save its
   * state): each has its memory, files and processes as they were, its own writable disk,
   * network link, id and hostname, and fresh entropy and clock. Not kept as a checkpoint.
   */
  async fork(count: number, options: ForkOptions = {}): Promise<VmSandbox[]> {
    this.ensureRunning();
    if (!Number.isInteger(count) || count < 1 || count > MAX_FORKS)
      throw new ErrInvalidConfig(
        `fork count must be an integer from 1 to ${MAX_FORKS}, got ${count}`,
      );
    return this.copies.fork(count, options);
  }

  events(): AsyncIterableIterator<SandboxEvent> {
    return this.hub.subscribe();
  }

  /** Powers the VM off and removes everything it wrote. Safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /**
   * @internal Stops the VM at once, without the guest's clean poweroff, even while a `close()`
   * waits for one (`wheellock rpc` on stdin EOF, or a `close` whose deadline passed).
   */
  kill(): Promise<void> {
    this.qemu.kill();
    return this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal Arms `timeoutSeconds` (at launch, or when a pool hands the sandbox out). */
  startTimeout(): void {
    const seconds = this.config.timeoutSeconds;
    if (seconds > 0 && this.deadline === undefined && this.running) {
      this.deadline = setTimeout(() => {
        this.fail(new ErrTimeout(`sandbox ${this.id} timed out after ${seconds} s`));
      }, seconds * 1000);
      // The deadline alone must not keep a finished program alive.
      this.deadline.unref();
    }
  }

  /** @internal Reports the sandbox running and ends it if QEMU exits behind its back. */
  watch(): void {
    void this.qemu.exited.then((exit) => {
      if (this.closing) return;
      this.fail(
        new ErrVMNotRunning(
          `sandbox ${this.id} VM exited unexpectedly (code ${exit.code ?? "-"}, signal ${exit.signal ?? "-"})`,
        ),
      );
    });
    this.hub.emit({ type: "lifecycle", timestamp: new Date(), lifecycle: { state: "running" } });
  }

  /** @internal Ends the sandbox because of an error; pending operations reject with it. */
  fail(err: WheellockError): void {
    if (this.failure || this.closing) return;
    this.failure = err;
    this.agent.close(err);
    void this.close();
  }

  private ensureRunning(): void {
    if (this.failure) throw this.failure;
    if (this.closing) throw new ErrVMNotRunning(`sandbox ${this.id} is closed`);
  }

  private allowlist(): HostAllowlist {
    this.ensureRunning();
    const egress = this.network?.egress;
    if (!egress)
      throw new ErrInvalidConfig(
        `sandbox ${this.id} was started without network interception: no allowlist to change`,
      );
    return egress.allowlist;
  }

  private async shutdown(): Promise<void> {
    clearTimeout(this.deadline);
    // The last figures while QEMU (and, on a clean stop, the agent) still run.
    this.finalUsage = await this.observer
      .finish(this.finalUsageWanted || this.hub.subscribed)
      .catch(() => undefined);
    // Cleanup problems are reported, never thrown: the caller's work is done by now, and what
    // could not be removed is left for `wheellock gc`.
    await this.resources.release();
    const why = this.failure ? { reason: this.failure.message, code: this.failure.code } : {};
    this.hub.emit({
      type: "lifecycle",
      timestamp: new Date(),
      lifecycle: { state: "stopped", ...why },
    });
    this.hub.end();
  }
}
