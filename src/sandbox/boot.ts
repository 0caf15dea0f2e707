/**
 * Boots one VM: QEMU started, the control port connected, the agent's hello (or a restore's
 * first CONFIGURE) awaited; failures report the console tail.
 */
import { randomInt } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { DiskSerial, GuestAgent } from "../channel/index.js";
import { ErrSetup, ErrTimeout, ErrVMNotRunning } from "../errors.js";
import { NetworkLink, type NetworkLinkOptions } from "../net/index.js";
import { ResourceStack } from "../util/index.js";
import {
  QemuProcess,
  VmStateSaver,
  logTail,
  startIncoming,
  waitUntilRunning,
  type Accel,
  type VmSpec,
} from "../vmm/index.js";
import { guestNetworkArgs } from "./network.js";

/** How long a boot failure waits for QEMU to exit, so that the console is complete. */
const AGENT_EXIT_GRACE_MS = 3000;

export interface BootRequest {
  runDir: string;
  accel: Accel;
  cpus: number;
  memoryMb: number;
  kernelPath: string;
  initramfsPath: string;
  kernelArgs: string[];
  imagePath: string;
  upperDiskPath: string;
  /** Attached after the root and upper disks (the user's `--disk`s). */
  extraDisks?: VmSpec["disks"];
  bootTimeoutMs: number;
  rawPorts?: VmSpec["rawPorts"];
  /** Default: `console.log` in the run dir (a ring log: util/ring-log.ts). */
  consoleLogPath?: string;
  /** Resume from this saved VM state (a snapshot) instead of booting the kernel. */
  restoreStatePath?: string;
  /**
   * The saved state carries the VM's RAM in its stream (a checkpoint), not in a memory file
   * (a snapshot): the capability both sides of a migration must agree on.
   */
  restoreRamInStream?: boolean;
  /** Guest RAM in a file (see VmSpec.memoryFile): shared to be saved, private to restore. */
  memoryFile?: VmSpec["memoryFile"];
  /** See VmSpec.namedRam. */
  namedRam?: boolean;
  /**
   * The sandbox's own settings (guest-config.ts). After a restore they are the first request,
   * and their reply is the proof that the resumed agent runs (no separate PING: under TCG
   * every first round trip after a restore is slow). A cold boot leaves them to the caller,
   * which must send them only after any snapshot is saved.
   */
  configureGuest?: (agent: GuestAgent) => Promise<void>;
  /** Start the userspace network stack and give the VM a NIC; none when absent. */
  network?: NetworkLinkOptions;
  onFatal: (err: Error) => void;
  /** The sandbox's resources: a VM that booted hands its QEMU and network link over to it. */
  resources: ResourceStack;
}

export interface BootedVm {
  qemu: QemuProcess;
  agent: GuestAgent;
  consoleLogPath: string;
  /** Guest CLOCK_BOOTTIME when the agent became ready. */
  guestBootMs: number;
  /** Host wall time from spawning QEMU to the agent's hello. */
  hostBootMs: number;
  /** Ends by itself when QEMU closes its end of the link. */
  network: NetworkLink | undefined;
  /**
   * Saves the VM's state (a snapshot, checkpoints); owned by the sandbox's resources. Every
   * VM has one: any running sandbox may be checkpointed.
   */
  stateSaver: VmStateSaver;
  /** The RAM block is `wl-ram` (a memory file or `namedRam`): what a restore of its state needs. */
  namedRam: boolean;
}

/**
 * Where a copy's stream ids start: at random in the upper half of the id space, leaving at
 * least 2^28 ids. Its source numbered from 1 (or, a copy itself, from its own such start), so
 * no exec id of the source can come up again in the copy, where the agent still names the
 * source's processes by them; a copy of a copy overlaps its source's ids with a chance of
 * (ids used) / 2^31.
 */
function copyFirstStreamId(): number {
  return 2 ** 31 + randomInt(2 ** 31 - 2 ** 28);
}

function listen(path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(path, () => resolve(server));
  });
}

function firstConnection(server: Server): Promise<Socket> {
  return new Promise((resolve) => server.once("connection", resolve));
}

/**
 * Starts QEMU and waits for the guest agent's hello. Any failure (QEMU dies, boot times out,
 * the guest talks nonsense) kills QEMU and reports the console tail, so a broken kernel or
 * image explains itself.
 */
export async function bootVm(req: BootRequest): Promise<BootedVm> {
  const controlSocketPath = join(req.runDir, "ctl.sock");
  const consoleLogPath = req.consoleLogPath ?? join(req.runDir, "console.log");
  const spec: VmSpec = {
    accel: req.accel,
    cpus: Math.ceil(req.cpus),
    memoryMb: req.memoryMb,
    kernelPath: req.kernelPath,
    initramfsPath: req.initramfsPath,
    kernelArgs: req.kernelArgs,
    disks: [
      { path: req.imagePath, serial: DiskSerial.Root, readonly: true },
      { path: req.upperDiskPath, serial: DiskSerial.Upper, readonly: false },
      ...(req.extraDisks ?? []),
    ],
    controlSocketPath,
    consoleLogPath,
    consoleSocketPath: join(req.runDir, "console.sock"),
    name: req.runDir,
    ...(req.rawPorts ? { rawPorts: req.rawPorts } : {}),
    qmpSocketPath: join(req.runDir, "qmp.sock"),
    saveStateSocketPath: join(req.runDir, "save.sock"),
    ...(req.restoreStatePath ? { incomingStatePath: req.restoreStatePath } : {}),
    ...(req.memoryFile ? { memoryFile: req.memoryFile } : {}),
    ...(req.namedRam ? { namedRam: true } : {}),
  };
  // What this attempt acquires; handed to the sandbox only if the VM comes up.
  const own = new ResourceStack();
  const network = req.network
    ? await NetworkLink.listen(join(req.runDir, "net.sock"), req.network)
    : undefined;
  if (network) {
    own.defer("network link", () => network.close());
    spec.networkSocketPath = join(req.runDir, "net.sock");
    spec.networkMtu = network.stack.addressing.mtuBytes;
    spec.kernelArgs = [...spec.kernelArgs, ...guestNetworkArgs(network.stack.addressing)];
  }
  const started = Date.now();
  let qemu: QemuProcess;
  let closeServers = (): void => undefined;
  let ctlConnection: Promise<Socket>;
  let qmpConnection: Promise<Socket>;
  let stateSink: Server;
  try {
    const server = await listen(controlSocketPath);
    ctlConnection = firstConnection(server);
    // QEMU's monitor: told to load a saved state, or later to save one.
    const qmpServer = await listen(join(req.runDir, "qmp.sock"));
    qmpConnection = firstConnection(qmpServer);
    const monitor = qmpConnection;
    own.defer("qmp connection", () => void monitor.then((s) => s.destroy()));
    const sink = await listen(join(req.runDir, "save.sock"));
    stateSink = sink;
    closeServers = () => {
      if (server.listening) server.close();
      if (qmpServer.listening) qmpServer.close();
    };
    own.defer("boot listeners", () => {
      closeServers();
      if (sink.listening) sink.close();
    });
    qemu = await QemuProcess.start(spec, join(req.runDir, "qemu.log"));
  } catch (err) {
    await own.release();
    throw err;
  }
  const vm = qemu;
  own.defer(
    "qemu",
    async () => {
      vm.kill();
      await vm.exited;
    },
    () => vm.kill(),
  );
  const describeFailure = (what: string): string => {
    const tail = logTail(join(req.runDir, "qemu.log")) || logTail(consoleLogPath);
    return tail ? `${what}; last output:\n${tail}` : what;
  };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ErrTimeout(describeFailure(`VM did not become ready within ${req.bootTimeoutMs} ms`)),
        ),
      req.bootTimeoutMs,
    );
  });
  const qemuDied = qemu.exited.then((exit) => {
    throw new ErrVMNotRunning(
      describeFailure(
        `QEMU exited during boot (code ${exit.code ?? "-"}, signal ${exit.signal ?? "-"})`,
      ),
    );
  });
  try {
    const qmpSocket = await Promise.race([qmpConnection, deadline, qemuDied]);
    // A restored VM starts by itself once QEMU has loaded its state (it was saved running);
    // a state that fails to load makes QEMU exit, which `qemuDied` reports.
    const sink = stateSink;
    const saving = req.restoreStatePath
      ? startIncoming(qmpSocket, req.restoreRamInStream !== true).then(async (qmp) => {
          if (req.restoreRamInStream) await waitUntilRunning(qmp, started + req.bootTimeoutMs);
          return VmStateSaver.from(qmp, sink);
        })
      : VmStateSaver.attach(qmpSocket, sink);
    saving.catch(() => undefined); // raced below; QEMU's death or the deadline wins otherwise
    const stateSaver = await Promise.race([saving, deadline, qemuDied]);
    own.defer("state saver", () => stateSaver.close());
    const socket = await Promise.race([ctlConnection, deadline, qemuDied]);
    // Only QEMU may connect; stop listening so nothing else can attach to the control port.
    closeServers();
    const agent = GuestAgent.attach(socket, {
      onFatal: req.onFatal,
      ...(req.restoreStatePath ? { resumed: true } : {}),
      // A copy of a running guest: its execs' ids must not be ones its source's execs had.
      ...(req.restoreRamInStream ? { firstStreamId: copyFirstStreamId() } : {}),
    });
    // The agent's channel ends before its hello when it stops at boot (a disk it cannot
    // mount, say): its reason is on the console, complete once QEMU has gone.
    const helloOrReason = agent.hello.catch(async (err: unknown) => {
      if (!(err instanceof ErrVMNotRunning)) throw err;
      await Promise.race([vm.exited, delay(AGENT_EXIT_GRACE_MS, undefined, { ref: false })]);
      throw new ErrVMNotRunning(describeFailure("the guest agent stopped during boot"), {
        cause: err,
      });
    });
    const hello = await Promise.race([helloOrReason, deadline, qemuDied]);
    // A restored agent said hello long ago; a round trip proves it is really running. It
    // must be a CONFIGURE: the agent still holds its snapshot's session token, and only a
    // CONFIGURE gives it this session's. An error reply fails the restore too (the caller
    // then boots cold, where the same CONFIGURE runs again and reports its error).
    if (req.restoreStatePath) {
      const roundTrip = req.configureGuest ? req.configureGuest(agent) : agent.configure();
      await Promise.race([roundTrip, deadline, qemuDied]);
    }
    own.transferTo(req.resources);
    return {
      qemu,
      agent,
      consoleLogPath,
      guestBootMs: hello.bootMs,
      hostBootMs: Date.now() - started,
      network,
      stateSaver,
      namedRam: req.memoryFile !== undefined || req.namedRam === true,
    };
  } catch (err) {
    await own.release();
    if (err instanceof ErrSetup || err instanceof ErrTimeout || err instanceof ErrVMNotRunning)
      throw err;
    throw new ErrVMNotRunning(describeFailure(`VM failed to boot: ${(err as Error).message}`), {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
    qemuDied.catch(() => undefined);
  }
}
