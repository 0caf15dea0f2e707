import { PortName } from "../channel/index.js";
import type { Accel } from "./accel.js";

export interface VmDisk {
  path: string;
  /** virtio-blk serial: the guest finds its disks by serial, not by /dev/vdX order. */
  serial: string;
  readonly: boolean;
  /**
   * QEMU cache mode. Default `unsafe` (guest flushes ignored): right for throwaway disks.
   * Disks whose data must outlive the VM use `writeback`, so a guest fsync reaches the host.
   */
  cache?: "unsafe" | "writeback";
}

export interface VmSpec {
  accel: Accel;
  cpus: number;
  memoryMb: number;
  kernelPath: string;
  initramfsPath: string;
  /** Extra kernel command-line words (wheellock.* keys). */
  kernelArgs: string[];
  disks: VmDisk[];
  /** Unix socket the host listens on; QEMU connects to it for the control port. */
  controlSocketPath: string;
  /** Serial console output goes here. */
  consoleLogPath: string;
  /** Unix socket of the host network stack (-netdev stream); no NIC when absent. */
  networkSocketPath?: string;
  /** Jumbo MTU on the virtual link so one frame can carry up to 64 KB. */
  networkMtu?: number;
  /**
   * Extra raw virtio-serial ports (no protocol), each connected to a host unix socket. The
   * benchmark uses one to measure the bare transport the control channel runs on.
   */
  rawPorts?: { name: string; socketPath: string }[];
  /** QMP control socket (QEMU listens): used to save the VM's state for snapshots. */
  qmpSocketPath?: string;
  /** A host socket QEMU connects its QMP monitor to (used to start loading a saved state). */
  qmpConnectPath?: string;
  /**
   * Guest RAM backed by this file instead of anonymous memory. `shared`: the guest's writes go
   * to the file (a VM whose RAM a snapshot will copy); otherwise the file is mapped
   * copy-on-write (a restored VM: pages come from the snapshot on first touch, and its writes
   * never reach the file).
   */
  memoryFile?: { path: string; shared: boolean };
  /**
   * Start from saved VM state instead of booting: device state (and any RAM not in
   * `memoryFile`) is loaded from this file, written by a VM with the same spec. QEMU waits
   * (`-incoming defer`) until told over QMP to read it from INCOMING_STATE_FD.
   */
  incomingStatePath?: string;
}

/** The descriptor QEMU inherits the saved state file on (`incomingStatePath`). */
export const INCOMING_STATE_FD = 3;

const RAM_BACKEND_ID = "wl-ram";

function quoteOptionValue(value: string): string {
  // QEMU option values escape a literal comma by doubling it.
  return value.replaceAll(",", ",,");
}

export function kernelCommandLine(spec: Pick<VmSpec, "accel" | "kernelArgs">): string {
  const words = ["console=ttyS0", "quiet", "panic=-1", "reboot=t"];
  // Without a calibrated TSC frequency, a TCG guest spins for seconds calibrating it.
  if (spec.accel === "tcg") words.push("tsc_early_khz=2000000");
  return [...words, ...spec.kernelArgs].join(" ");
}

export function buildQemuArgs(spec: VmSpec): string[] {
  const args: string[] = [
    "-M",
    spec.memoryFile ? `microvm,rtc=on,memory-backend=${RAM_BACKEND_ID}` : "microvm,rtc=on",
    "-accel",
    spec.accel,
    "-cpu",
    spec.accel === "kvm" ? "host" : "max",
    "-smp",
    String(spec.cpus),
    "-m",
    `${spec.memoryMb}M`,
    "-nodefaults",
    "-no-user-config",
    "-nographic",
    // A guest reboot (our agent's exit path) must end QEMU, never restart the VM.
    "-no-reboot",
    "-kernel",
    spec.kernelPath,
    "-initrd",
    spec.initramfsPath,
    "-append",
    kernelCommandLine(spec),
    "-chardev",
    // append: a detached sandbox's log also holds the output of commands run in it.
    `file,id=console,path=${quoteOptionValue(spec.consoleLogPath)},append=on`,
    "-serial",
    "chardev:console",
  ];
  spec.disks.forEach((disk, i) => {
    args.push(
      "-drive",
      `id=disk${i},file=${quoteOptionValue(disk.path)},format=raw,if=none,` +
        `readonly=${disk.readonly ? "on" : "off"},cache=${disk.cache ?? "unsafe"}`,
      "-device",
      `virtio-blk-device,drive=disk${i},serial=${disk.serial}`,
    );
  });
  args.push(
    "-device",
    "virtio-serial-device,max_ports=4",
    "-chardev",
    `socket,id=ctl,path=${quoteOptionValue(spec.controlSocketPath)}`,
    "-device",
    `virtserialport,chardev=ctl,name=${PortName.Control}`,
    "-device",
    "virtio-rng-device",
  );
  if (spec.qmpSocketPath !== undefined) {
    args.push("-qmp", `unix:${quoteOptionValue(spec.qmpSocketPath)},server=on,wait=off`);
  }
  if (spec.memoryFile !== undefined) {
    args.push(
      "-object",
      `memory-backend-file,id=${RAM_BACKEND_ID},size=${spec.memoryMb}M,` +
        `mem-path=${quoteOptionValue(spec.memoryFile.path)},share=${spec.memoryFile.shared ? "on" : "off"}`,
    );
  }
  if (spec.qmpConnectPath !== undefined) {
    args.push("-qmp", `unix:${quoteOptionValue(spec.qmpConnectPath)}`);
  }
  if (spec.incomingStatePath !== undefined) {
    // Deferred: the migration capabilities must match the saving side's before the stream is
    // read, and QEMU 7.2 cannot set them on the command line. QemuProcess opens the file as
    // INCOMING_STATE_FD, so QEMU reads it with no shell, `cat` or pipe in between.
    args.push("-incoming", "defer");
  }
  (spec.rawPorts ?? []).forEach((port, i) => {
    args.push(
      "-chardev",
      `socket,id=raw${i},path=${quoteOptionValue(port.socketPath)}`,
      "-device",
      `virtserialport,chardev=raw${i},name=${port.name}`,
    );
  });
  if (spec.networkSocketPath !== undefined) {
    args.push(
      "-netdev",
      `stream,id=net0,server=off,addr.type=unix,addr.path=${quoteOptionValue(spec.networkSocketPath)}`,
      "-device",
      `virtio-net-device,netdev=net0,host_mtu=${spec.networkMtu ?? 65520}`,
    );
  }
  return args;
}
