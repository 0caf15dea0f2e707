import { join } from "node:path";
import type { Readable } from "node:stream";
import type { Channel, PortStream } from "../channel/index.js";
import {
  resolveSandboxOptions,
  type ResolvedSandboxConfig,
  type SandboxOptions,
} from "../config/index.js";
import { ErrInvalidConfig, ErrTimeout, ErrVMNotRunning, WheellockError } from "../errors.js";
import { runDir } from "../paths.js";
import { removeTree, removeTreeSync } from "../util/remove-tree.js";
import { prepareAssets } from "../setup/index.js";
import { detectAccel, type Accel, type QemuProcess } from "../vmm/index.js";
import type { BootRequest } from "./boot.js";
import { configureGuest } from "./guest-config.js";
import { snapshotKeyFor } from "./snapshot-policy.js";
import { startVm } from "./start-vm.js";
import { prepareNetwork, type SandboxNetwork } from "./network.js";
import { applyGuestNetworkSetup } from "./guest-network-setup.js";
import { EventHub, type SandboxEvent } from "./events.js";
import { commandArgv, composeExecEnv } from "./exec-env.js";
import { ExecProcess } from "./exec-process.js";
import { runCollected, type ExecOptions, type ExecResult } from "./exec-collect.js";
import { SandboxFiles, type FileInfo } from "./files.js";
import { createRunDir, onProcessExit, sweepStaleRunDirs } from "./run-dir.js";
import { RemoteSandbox } from "../supervisor/client.js";
import { startDetachedSandbox, type DetachedStartOptions } from "../supervisor/start-detached.js";
import { listRecords, type SandboxRecord } from "../state/index.js";
import { resolveImage, type ImageSelection } from "./image.js";
import { FuseMounts } from "./fuse-mounts.js";
import { SandboxDisks } from "./disks.js";
import { compileFileHooks } from "../vfs/index.js";
import { SandboxPool, type PoolOptions } from "./pool.js";

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

/** How long the guest may take to power off cleanly before QEMU is killed. */
const POWEROFF_GRACE_MS = 2000;

/**
 * One sandbox = one micro-VM. Create with `Sandbox.create()`, run commands with `exec()`
 * (collected output) or `spawn()` (streaming), move files with the file methods, and
 * `close()` it (or `await using`) to destroy the VM and everything it wrote.
 */
export class Sandbox implements AsyncDisposable {
  readonly id: string;
  readonly config: ResolvedSandboxConfig;
  /** The accelerator the VM runs on. */
  readonly accel: Accel;
  /** Milliseconds from starting QEMU to the guest agent being ready. */
  readonly bootMs: number;
  /** True when the VM resumed from a memory snapshot instead of booting its kernel. */
  get restoredFromSnapshot(): boolean {
    return this.restored;
  }
  private restored = false;
  readonly files: SandboxFiles;

  /** Exec, lifecycle and file events (file events begin with the mounts, before boot). */
  private readonly events_: EventHub;
  private failure: WheellockError | undefined;
  private closing: Promise<void> | undefined;
  private deadline: NodeJS.Timeout | undefined;
  /** The FUSE server behind `options.mounts`; closed (overlay layers dropped) on shutdown. */
  private mounts: FuseMounts | undefined;
  /** Attach locks of the extra disks; released once QEMU has stopped writing them. */
  private disks: SandboxDisks | undefined;

  /**
   * Where the upper layer of each overlay mount with `keepUpper` is kept (guest path -> host
   * directory). It holds the guest's changes as plain files and survives `close()`.
   */
  get keptOverlays(): Readonly<Record<string, string>> {
    return this.mounts?.keptUpperDirs ?? {};
  }
  private network: SandboxNetwork | undefined;

  private constructor(
    config: ResolvedSandboxConfig,
    accel: Accel,
    bootMs: number,
    private readonly channel: Channel,
    private readonly qemu: QemuProcess,
    private readonly dir: string,
    private readonly unregisterExitCleanup: () => void,
    /** The image booted, with its ENV/ENTRYPOINT/CMD/USER/WORKDIR. */
    readonly image: ImageSelection,
    events: EventHub,
  ) {
    this.events_ = events;
    this.id = config.id;
    this.config = config;
    this.accel = accel;
    this.bootMs = bootMs;
    this.files = new SandboxFiles(
      channel,
      () => this.ensureRunning(),
      () => this.mounts?.files,
    );
  }

  /**
   * Boots a new sandbox. `internal` is for wheellock's own benchmarks and tests (extra raw
   * serial ports); it is not part of the supported API.
   */
  static async create(
    options: SandboxOptions = {},
    internal: {
      rawPorts?: { name: string; socketPath: string }[];
      /** A supervisor picks the id first, to name the record and log before boot. */
      id?: string;
      /** Where the serial console goes (default: the run dir, removed with it). */
      consoleLogPath?: string;
      /** A pool starts the `timeoutSeconds` clock when it hands the sandbox out, not now. */
      deferTimeout?: boolean;
    } = {},
  ): Promise<Sandbox> {
    const config = resolveSandboxOptions(options, undefined, undefined, internal.id);
    compileFileHooks(options.fileHooks);
    const image = await resolveImage(config.image);
    const root = runDir();
    sweepStaleRunDirs(root);
    const assets = await prepareAssets({ kernel: config.kernel, log: () => undefined });
    const accel = detectAccel(config.accel);
    let sandbox: Sandbox | undefined;
    // Before the run dir exists: a bad CA file or policy script fails with nothing to clean.
    const network = await prepareNetwork(config, options, (info) =>
      sandbox?.events_.emit({ type: "network", timestamp: new Date(), network: info }),
    );
    let disks: SandboxDisks;
    try {
      disks = SandboxDisks.attach(config.id, config.disks);
    } catch (err) {
      network.close();
      throw err;
    }
    const dir = createRunDir(root, config.id);
    let qemuPid: number | undefined;
    const unregister = onProcessExit(() => {
      if (qemuPid !== undefined) process.kill(qemuPid, "SIGKILL");
      removeTreeSync(dir);
      disks.release();
    });
    let mounts: FuseMounts | undefined;
    const events = new EventHub();
    try {
      if (options.mounts !== undefined && Object.keys(options.mounts).length > 0) {
        mounts = await FuseMounts.open(
          dir,
          options.mounts,
          (err) =>
            sandbox?.fail(
              new ErrVMNotRunning(`sandbox ${config.id} mounts failed: ${err.message}`),
            ),
          {
            ...(options.fileHooks !== undefined ? { fileHooks: options.fileHooks } : {}),
            onFileEvent: (file) => events.emit({ type: "file", timestamp: new Date(), file }),
          },
          config.diskSizeMb * 1024 * 1024,
        );
      }
      const rawPorts = [...(internal.rawPorts ?? []), ...(mounts ? [mounts.rawPort] : [])];
      const bootRequest: BootRequest = {
        runDir: dir,
        accel: accel.accel,
        cpus: config.vcpuCount,
        memoryMb: config.memoryMb,
        kernelPath: assets.kernel.vmlinuzPath,
        initramfsPath: assets.initramfsPath,
        kernelArgs: [
          ...(config.privileged ? ["wheellock.privileged=1"] : []),
          ...(mounts?.kernelArgs ?? []),
          ...disks.kernelArgs,
        ],
        imagePath: image.ext4Path ?? assets.image.ext4Path,
        upperDiskPath: join(dir, "upper.ext4"),
        extraDisks: disks.vmDisks,
        ...(rawPorts.length > 0 ? { rawPorts } : {}),
        ...(internal.consoleLogPath ? { consoleLogPath: internal.consoleLogPath } : {}),
        network: network.link,
        bootTimeoutMs: accel.accel === "kvm" ? 30_000 : 120_000,
        configureGuest: (channel) => configureGuest(channel, config.hostname),
        onFatal: (err) =>
          sandbox?.fail(new ErrVMNotRunning(`sandbox ${config.id} stopped: ${err.message}`)),
      };
      const vm = await startVm(bootRequest, {
        diskSizeMb: config.diskSizeMb,
        snapshotKey: snapshotKeyFor(config, bootRequest, { rawPorts }),
        warn: (msg) => {
          if (process.env.WHEELLOCK_DEBUG === "1") process.stderr.write(`wheellock: ${msg}\n`);
        },
      });
      qemuPid = vm.qemu.pid;
      sandbox = new Sandbox(
        config,
        accel.accel,
        vm.hostBootMs,
        vm.channel,
        vm.qemu,
        dir,
        unregister,
        image,
        events,
      );
      sandbox.restored = vm.restored;
      sandbox.mounts = mounts;
      sandbox.disks = disks;
      sandbox.network = network;
      // A restore configured the guest as its first request (BootRequest.configureGuest).
      if (!vm.restored) await configureGuest(vm.channel, config.hostname);
      await sandbox.applyNetworkSetup();
      sandbox.watch();
      if (!internal.deferTimeout) sandbox.startTimeout();
      return sandbox;
    } catch (err) {
      if (sandbox) await sandbox.close();
      else {
        network.close();
        await mounts?.close();
        unregister();
        await removeTree(dir);
        disks.release();
      }
      throw err;
    }
  }

  /**
   * Keeps `size` sandboxes of this configuration started so `acquire()` returns one at once
   * (docs/PERFORMANCE.md has the figures). `close()` the pool when done.
   */
  static pool(options: PoolOptions): SandboxPool {
    return new SandboxPool(options, async (o) => {
      const sandbox = await Sandbox.create(o, { deferTimeout: true });
      // One command while nobody waits: the guest's exec path (and, under TCG, its translated
      // code) is warm for the caller's first command (an image without `true` just misses it).
      await sandbox.exec(["true"]).catch(() => undefined);
      return sandbox;
    });
  }

  /**
   * Attaches to a long-lived sandbox that another process owns (`wheellock run -d`), by id:
   * the same exec and file methods, over its supervisor's control socket.
   */
  static connect(id: string): RemoteSandbox {
    return RemoteSandbox.connect(id);
  }

  /**
   * Starts a long-lived sandbox in a supervisor process of its own, as `wheellock run -d`
   * does: it outlives this process and is managed by id (`connect`, `list`, the CLI's
   * `exec`, `kill`, `rm`). Options travel as JSON (never in argv), so hook callbacks and
   * custom providers are refused: use `policyScript` and declarative rules instead.
   */
  static startDetached(
    options: SandboxOptions = {},
    start: DetachedStartOptions = {},
  ): Promise<RemoteSandbox> {
    return startDetachedSandbox(options, start);
  }

  /** The records of long-lived sandboxes, newest first, each status checked now. */
  static list(): SandboxRecord[] {
    return listRecords();
  }

  /** Runs a command to completion and collects its output. */
  async exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return runCollected(this.spawn(command, options), options);
  }

  /** Starts a command and returns at once with its streams. */
  spawn(command: string | readonly string[], options: SpawnOptions = {}): ExecProcess {
    this.ensureRunning();
    const argv = commandArgv(command);
    const tty = options.tty === true ? { rows: 24, cols: 80 } : options.tty || undefined;
    const startedAt = Date.now();
    const user = options.user ?? this.config.user ?? this.image.config?.user;
    const cwd = options.cwd ?? this.config.workdir ?? this.image.config?.workdir;
    const stream = this.channel.exec({
      argv,
      env: composeExecEnv({
        image: this.image.env,
        sandbox: this.config.env,
        network: this.network?.execEnv,
        command: options.env,
        hostname: this.config.hostname,
        tty: tty !== undefined,
      }),
      ...(cwd !== undefined ? { cwd } : {}),
      ...(user !== undefined ? { user } : {}),
      ...(tty !== undefined ? { tty } : {}),
    });
    return new ExecProcess(stream, startedAt, (exit) =>
      this.events_.emit({
        type: "exec",
        timestamp: new Date(),
        exec: { command: argv, exitCode: exit.exitCode, durationMs: exit.durationMs },
      }),
    );
  }

  writeFile(
    path: string,
    data: string | Buffer | Uint8Array | Readable | AsyncIterable<Buffer | Uint8Array>,
    options?: { mode?: number; uid?: number; gid?: number },
  ): Promise<void> {
    return this.files.writeFile(path, data, options);
  }

  readFile(path: string): Promise<Buffer> {
    return this.files.readFile(path);
  }

  listFiles(path: string): Promise<FileInfo[]> {
    return this.files.list(path);
  }

  stat(path: string, options?: { followSymlinks?: boolean }): Promise<FileInfo> {
    return this.files.stat(path, options);
  }

  mkdir(path: string, options?: { mode?: number }): Promise<void> {
    return this.files.mkdir(path, options);
  }

  remove(path: string, options?: { recursive?: boolean }): Promise<void> {
    return this.files.remove(path, options);
  }

  /** A TCP connection to `127.0.0.1:port` inside the guest (what `-p` / port-forward use). */
  openPort(port: number): PortStream {
    this.ensureRunning();
    return this.channel.forwardPort(port);
  }

  /**
   * Adds entries to the intercept-mode host allowlist (same syntax as `allowedHosts`); new
   * connections and requests see them at once. Returns the entries that were not there yet.
   * Throws ErrInvalidConfig on an open-mode sandbox, which has no allowlist to change.
   */
  allowHosts(...hosts: string[]): string[] {
    const list = this.allowlist();
    const before = new Set(list.entries.map((e) => e.toLowerCase()));
    list.add(hosts);
    return list.entries.filter((e) => !before.has(e.toLowerCase()));
  }

  /** Removes allowlist entries (exact text, case-insensitive); returns those it removed. */
  disallowHosts(...hosts: string[]): string[] {
    const list = this.allowlist();
    const before = list.entries;
    list.remove(hosts);
    const after = new Set(list.entries);
    return before.filter((e) => !after.has(e));
  }

  /**
   * The allowlist now. Empty means every host if it was empty from the start (reference
   * semantics), and no host when started with `denyAllHosts` or emptied by `disallowHosts`.
   */
  get allowedHosts(): string[] {
    return this.network?.egress?.allowlist.entries ?? [];
  }

  /** Whether an empty `allowedHosts` now denies every host (see there). */
  get allowlistEmptyDeniesAll(): boolean {
    return this.network?.egress?.allowlist.emptyDeniesAll ?? false;
  }

  /** True when the network goes through the intercepting proxy (allowlist, TLS, secrets). */
  get intercepting(): boolean {
    return this.network?.egress !== undefined;
  }

  private allowlist() {
    this.ensureRunning();
    const egress = this.network?.egress;
    if (!egress)
      throw new ErrInvalidConfig(
        `sandbox ${this.id} was started without network interception: no allowlist to change`,
      );
    return egress.allowlist;
  }

  /** Network, file and exec events, from now on, until the sandbox closes. */
  events(): AsyncIterableIterator<SandboxEvent> {
    return this.events_.subscribe();
  }

  get running(): boolean {
    return this.failure === undefined && this.closing === undefined;
  }

  /** Powers the VM off and removes everything it wrote. Safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private ensureRunning(): void {
    if (this.failure) throw this.failure;
    if (this.closing) throw new ErrVMNotRunning(`sandbox ${this.id} is closed`);
  }

  /** The CA and `--add-host` lines (after CONFIGURE, which rewrites `/etc/hosts`). */
  private async applyNetworkSetup(): Promise<void> {
    if (this.network) await applyGuestNetworkSetup(this.files, this.network.guestSetup);
  }

  /** @internal Arms `timeoutSeconds` (at create, or when a pool hands the sandbox out). */
  startTimeout(): void {
    if (this.config.timeoutSeconds > 0 && this.deadline === undefined && this.running) {
      this.deadline = setTimeout(() => {
        this.fail(
          new ErrTimeout(`sandbox ${this.id} timed out after ${this.config.timeoutSeconds} s`),
        );
      }, this.config.timeoutSeconds * 1000);
      // The deadline alone must not keep a finished program alive.
      this.deadline.unref();
    }
  }

  private watch(): void {
    void this.qemu.exited.then((exit) => {
      if (this.closing) return;
      this.fail(
        new ErrVMNotRunning(
          `sandbox ${this.id} VM exited unexpectedly (code ${exit.code ?? "-"}, signal ${exit.signal ?? "-"})`,
        ),
      );
    });
    this.events_.emit({
      type: "lifecycle",
      timestamp: new Date(),
      lifecycle: { state: "running" },
    });
  }

  /** Ends the sandbox because of an error; pending operations reject with it. */
  private fail(err: WheellockError): void {
    if (this.failure || this.closing) return;
    this.failure = err;
    this.channel.close(err);
    void this.close();
  }

  private async shutdown(): Promise<void> {
    clearTimeout(this.deadline);
    if (!this.channel.closed) {
      this.channel.poweroff();
    }
    await this.qemu.stop(this.failure ? 0 : POWEROFF_GRACE_MS);
    this.channel.close(this.failure ?? new ErrVMNotRunning(`sandbox ${this.id} is closed`));
    await this.mounts?.close();
    this.disks?.release();
    this.network?.close();
    await removeTree(this.dir);
    this.unregisterExitCleanup();
    this.events_.emit({
      type: "lifecycle",
      timestamp: new Date(),
      lifecycle: { state: "stopped", ...(this.failure ? { reason: this.failure.message } : {}) },
    });
    this.events_.end();
  }
}
