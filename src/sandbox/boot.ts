import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { Channel, FrameType, PROTOCOL_VERSION, type Hello } from "../channel/index.js";
import { ErrSetup, ErrTimeout, ErrVMNotRunning } from "../errors.js";
import { NetworkLink, type NetworkLinkOptions } from "../net/index.js";
import {
  QemuProcess,
  VmStateSaver,
  logTail,
  startIncoming,
  type Accel,
  type VmSpec,
} from "../vmm/index.js";
import { guestNetworkArgs } from "./network.js";

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
  /** Connect QEMU's monitor and a state socket, so the VM's state can be saved. */
  qmp?: boolean;
  /** Resume from this saved VM state (a snapshot) instead of booting the kernel. */
  restoreStatePath?: string;
  /** Guest RAM in a file (see VmSpec.memoryFile): shared to be saved, private to restore. */
  memoryFile?: VmSpec["memoryFile"];
  /**
   * The sandbox's own settings (guest-config.ts). After a restore they are the first request,
   * and their reply is the proof that the resumed agent runs (no separate PING: under TCG
   * every first round trip after a restore is slow). A cold boot leaves them to the caller,
   * which must send them only after any snapshot is saved.
   */
  configureGuest?: (channel: Channel) => Promise<void>;
  /** Start the userspace network stack and give the VM a NIC; none when absent. */
  network?: NetworkLinkOptions;
  onFatal: (err: Error) => void;
}

export interface BootedVm {
  qemu: QemuProcess;
  channel: Channel;
  consoleLogPath: string;
  /** Guest CLOCK_BOOTTIME when the agent became ready. */
  guestBootMs: number;
  /** Host wall time from spawning QEMU to the agent's hello. */
  hostBootMs: number;
  /** Ends by itself when QEMU closes its end of the link. */
  network: NetworkLink | undefined;
  /** With `qmp`: saves the VM's state once; close it when done. */
  stateSaver: VmStateSaver | undefined;
}

const RESTORED_HELLO: Hello = { version: PROTOCOL_VERSION, bootMs: 0, agent: "restored" };

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
      { path: req.imagePath, serial: "wl-root", readonly: true },
      { path: req.upperDiskPath, serial: "wl-upper", readonly: false },
      ...(req.extraDisks ?? []),
    ],
    controlSocketPath,
    consoleLogPath,
    consoleSocketPath: join(req.runDir, "console.sock"),
    name: req.runDir,
    ...(req.rawPorts ? { rawPorts: req.rawPorts } : {}),
    ...(req.qmp || req.restoreStatePath ? { qmpSocketPath: join(req.runDir, "qmp.sock") } : {}),
    ...(req.qmp ? { saveStateSocketPath: join(req.runDir, "save.sock") } : {}),
    ...(req.restoreStatePath ? { incomingStatePath: req.restoreStatePath } : {}),
    ...(req.memoryFile ? { memoryFile: req.memoryFile } : {}),
  };
  const network = req.network
    ? await NetworkLink.listen(join(req.runDir, "net.sock"), req.network)
    : undefined;
  if (network) {
    spec.networkSocketPath = join(req.runDir, "net.sock");
    spec.networkMtu = network.stack.addressing.mtuBytes;
    spec.kernelArgs = [...spec.kernelArgs, ...guestNetworkArgs(network.stack.addressing)];
  }
  const server = await listen(controlSocketPath);
  const ctlConnection = firstConnection(server);
  // QEMU's monitor: told to load a saved state, or later to save one.
  const qmpServer = spec.qmpSocketPath ? await listen(spec.qmpSocketPath) : undefined;
  const qmpConnection = qmpServer ? firstConnection(qmpServer) : undefined;
  const stateSink = spec.saveStateSocketPath ? await listen(spec.saveStateSocketPath) : undefined;
  const closeServers = () => {
    server.close();
    qmpServer?.close();
    stateSink?.close();
    void qmpConnection?.then((socket) => socket.destroy());
  };
  const started = Date.now();
  let qemu: QemuProcess;
  try {
    qemu = await QemuProcess.start(spec, join(req.runDir, "qemu.log"));
  } catch (err) {
    closeServers();
    network?.close();
    throw err;
  }
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
    const qmpSocket = qmpConnection
      ? await Promise.race([qmpConnection, deadline, qemuDied])
      : undefined;
    qmpServer?.close();
    if (qmpSocket && req.restoreStatePath) {
      // A restored VM starts by itself once QEMU has loaded its state (it was saved running);
      // a state that fails to load makes QEMU exit, which `qemuDied` reports.
      try {
        await Promise.race([startIncoming(qmpSocket), deadline, qemuDied]);
      } finally {
        qmpSocket.destroy();
      }
    }
    const socket = await Promise.race([ctlConnection, deadline, qemuDied]);
    // Only QEMU may connect; stop listening so nothing else can attach to the control port.
    server.close();
    const channel = Channel.attach(socket, {
      onFatal: req.onFatal,
      ...(req.restoreStatePath ? { resumedHello: RESTORED_HELLO } : {}),
    });
    const hello = await Promise.race([channel.hello, deadline, qemuDied]);
    // A restored agent said hello long ago; a round trip proves it is really running. An
    // error reply to CONFIGURE fails the restore too (the caller then boots cold, where the
    // same CONFIGURE runs again and reports its error).
    if (req.restoreStatePath) {
      const roundTrip = req.configureGuest
        ? req.configureGuest(channel)
        : channel.request(FrameType.Ping).then(() => undefined);
      await Promise.race([roundTrip, deadline, qemuDied]);
    }
    return {
      qemu,
      channel,
      consoleLogPath,
      guestBootMs: hello.bootMs,
      hostBootMs: Date.now() - started,
      network,
      stateSaver:
        qmpSocket && stateSink && !req.restoreStatePath
          ? new VmStateSaver(qmpSocket, stateSink)
          : undefined,
    };
  } catch (err) {
    qemu.kill();
    closeServers();
    network?.close();
    await qemu.exited;
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
