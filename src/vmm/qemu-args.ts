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
  /** What the opened image must be (`dev:ino`, src/util/file-identity.ts), when a node checked it. */
  identity?: string;
}

/**
 * What one VM is made of. Paths are the host's: QEMU never opens any of them by name. Files
 * and sockets are handed to it as inherited descriptors (planQemuLaunch), so a QEMU running as
 * a user of its own (jail.ts) needs no access to the run dir, the cache or the data dir.
 */
export interface VmSpec {
  accel: Accel;
  cpus: number;
  memoryMb: number;
  kernelPath: string;
  /** `dev:ino` the kernel opened must have (a node checked the path). */
  kernelIdentity?: string;
  initramfsPath: string;
  /** Extra kernel command-line words (wheellock.* keys). */
  kernelArgs: string[];
  disks: VmDisk[];
  /** Unix socket the host listens on, for the control port. */
  controlSocketPath: string;
  /** Serial console output is kept here as a bounded ring log (util/ring-log.ts). */
  consoleLogPath: string;
  /** Where the launcher briefly listens to connect the console to this process. */
  consoleSocketPath: string;
  /** Unix socket of the host network stack (-netdev stream); no NIC when absent. */
  networkSocketPath?: string;
  /** Jumbo MTU on the virtual link so one frame can carry up to 64 KB. */
  networkMtu?: number;
  /**
   * Extra raw virtio-serial ports (no protocol), each connected to a host unix socket. The
   * benchmark uses one to measure the bare transport the control channel runs on; FUSE
   * mounts use one for their requests.
   */
  rawPorts?: { name: string; socketPath: string }[];
  /** A host socket for QEMU's QMP monitor (saving a VM's state, loading a saved one). */
  qmpSocketPath?: string;
  /**
   * A host socket a saved VM state is streamed to (`migrate` to `unix:/proc/self/fd/N`):
   * QEMU reaches it through an inherited O_PATH descriptor, never by its path.
   */
  saveStateSocketPath?: string;
  /**
   * Guest RAM backed by this file instead of anonymous memory. `shared`: the guest's writes go
   * to the file (a VM whose RAM a snapshot will copy); otherwise the file is mapped
   * copy-on-write (a restored VM: pages come from the snapshot on first touch, and its writes
   * never reach the file).
   */
  memoryFile?: { path: string; shared: boolean };
  /**
   * Anonymous RAM, but under the memory backend id a `memoryFile` VM uses: a state saved with
   * its RAM in the stream by such a VM (a checkpoint of a restored sandbox) names that
   * backend, and QEMU loads RAM only into a block of the same name.
   */
  namedRam?: boolean;
  /**
   * Start from saved VM state instead of booting: device state (and any RAM not in
   * `memoryFile`) is loaded from this file, written by a VM with the same spec. QEMU waits
   * (`-incoming defer`) until told over QMP to read it from INCOMING_STATE_FD.
   */
  incomingStatePath?: string;
  /** Shown as the VM's name in QEMU's command line: `gc` recognises a sandbox's QEMU by it. */
  name?: string;
}

/** The descriptor QEMU inherits the saved state file on (`incomingStatePath`). */
export const INCOMING_STATE_FD = 3;
/** The O_PATH descriptor of `saveStateSocketPath`. */
export const SAVE_STATE_FD = 4;
const FIRST_FREE_FD = 5;

/**
 * One descriptor QEMU inherits, and how the launcher makes it:
 * - `file`: opened here, read-only or read-write, and used by QEMU as it is (disks, state);
 * - `reopen`: an O_PATH descriptor QEMU opens again through `/proc/self/fd/N` (kernel,
 *   initramfs, RAM files: QEMU 7.2 takes only paths there), so the user QEMU runs as needs
 *   permission on the file itself (`write`: read-write); `create` for a new RAM file;
 * - `connect`: a connection to a host socket, made here on QEMU's behalf;
 * - `path`: an O_PATH descriptor, a name QEMU can connect to that no path of its own reaches;
 * - `console`: one end of a socket pair made through a listener at `path` (console-stream.ts);
 *   the host reads the console from the other.
 */
export type LaunchDescriptor = { fd: number } & (
  | { kind: "file"; path: string; write: boolean; identity?: string }
  | { kind: "reopen"; path: string; write: boolean; create?: boolean; identity?: string }
  | { kind: "connect"; path: string }
  | { kind: "path"; path: string }
  | { kind: "console"; path: string }
);

export interface QemuLaunchPlan {
  args: string[];
  descriptors: LaunchDescriptor[];
}

const RAM_BACKEND_ID = "wl-ram";

/**
 * QEMU's own seccomp filter: no obsolete syscalls, no setuid/setgid-style privilege changes,
 * no fork/exec (so no `exec:` migration: states are saved to a socket), no scheduler or
 * resource-limit changes.
 */
export const QEMU_SECCOMP =
  "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

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

/** Hands out descriptor numbers in order and remembers what each one is. */
class DescriptorTable {
  readonly descriptors: LaunchDescriptor[] = [];
  private next = FIRST_FREE_FD;

  add(what: DistributiveOmit<LaunchDescriptor, "fd">, fd = this.next++): number {
    this.descriptors.push({ ...what, fd } as LaunchDescriptor);
    return fd;
  }

  /** A path QEMU opens again through the descriptor (QEMU 7.2 has no fd option there). */
  reopenable(path: string, write = false, create = false, identity?: string): string {
    const fd = this.add({
      kind: "reopen",
      path,
      write,
      ...(create ? { create } : {}),
      ...(identity !== undefined ? { identity } : {}),
    });
    return `/proc/self/fd/${fd}`;
  }

  socket(path: string): number {
    return this.add({ kind: "connect", path });
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * The guest CPU: the host's under KVM; under TCG every feature TCG emulates except ERMS and
 * FSRM ("fast REP MOVSB"). With those, the guest kernel copies user data (read, write,
 * virtio-console, FUSE replies, the page cache) with `rep movsb`, which TCG runs one byte
 * per loop iteration; without them it uses `rep movsq`, eight bytes per iteration: a guest
 * `cat` from tmpfs moved 2.2x as fast and a read through a host-dir mount 2.3x
 * (docs/PERFORMANCE.md, "Sequential read through a mount, session 14"). Part of the
 * snapshot key: a saved guest keeps the copy routines its kernel picked at boot.
 */
export function qemuCpuModel(accel: Accel): string {
  return accel === "kvm" ? "host" : TCG_CPU_MODEL;
}
export const TCG_CPU_MODEL = "max,-erms,-fsrm";

/** The QEMU command line for `spec` and the descriptors it expects to inherit. */
export function planQemuLaunch(spec: VmSpec): QemuLaunchPlan {
  const fds = new DescriptorTable();
  const consoleFd = fds.add({ kind: "console", path: spec.consoleSocketPath });
  const args: string[] = [
    "-sandbox",
    QEMU_SECCOMP,
    ...(spec.name !== undefined ? ["-name", `guest=${quoteOptionValue(spec.name)}`] : []),
    "-M",
    spec.memoryFile || spec.namedRam
      ? `microvm,rtc=on,memory-backend=${RAM_BACKEND_ID}`
      : "microvm,rtc=on",
    "-accel",
    spec.accel,
    "-cpu",
    qemuCpuModel(spec.accel),
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
    fds.reopenable(spec.kernelPath, false, false, spec.kernelIdentity),
    "-initrd",
    fds.reopenable(spec.initramfsPath),
    "-append",
    kernelCommandLine(spec),
    "-chardev",
    `socket,id=console,fd=${consoleFd}`,
    "-serial",
    "chardev:console",
  ];
  spec.disks.forEach((disk, i) => {
    // QEMU picks an fdset member by access mode, and opens a writable disk read-only too.
    const set = i + 1;
    const image = (write: boolean): DistributiveOmit<LaunchDescriptor, "fd"> => ({
      kind: "file",
      path: disk.path,
      write,
      ...(disk.identity !== undefined ? { identity: disk.identity } : {}),
    });
    args.push("-add-fd", `fd=${fds.add(image(false))},set=${set}`);
    if (!disk.readonly) args.push("-add-fd", `fd=${fds.add(image(true))},set=${set}`);
    // QEMU's own image locks are off: they are OFD locks, and a descriptor the fdset keeps
    // still holds the locks QEMU drops by closing its copy, so re-taking the write lock when
    // a VM continues after its state was saved failed ("Failed to get write lock"). Who may
    // use a disk is decided by wheellock's own locks (volumes/disk-lock.ts); a writable
    // upper disk is one sandbox's alone, in its 0700 run dir.
    args.push(
      "-drive",
      `id=disk${i},file=/dev/fdset/${set},file.locking=off,format=raw,if=none,` +
        `readonly=${disk.readonly ? "on" : "off"},cache=${disk.cache ?? "unsafe"}`,
      "-device",
      `virtio-blk-device,drive=disk${i},serial=${disk.serial}`,
    );
  });
  args.push(
    "-device",
    "virtio-serial-device,max_ports=4",
    "-chardev",
    `socket,id=ctl,fd=${fds.socket(spec.controlSocketPath)}`,
    "-device",
    `virtserialport,chardev=ctl,name=${PortName.Control}`,
    "-device",
    "virtio-rng-device",
  );
  if (spec.qmpSocketPath !== undefined) {
    args.push(
      "-chardev",
      `socket,id=qmp,fd=${fds.socket(spec.qmpSocketPath)}`,
      "-mon",
      "chardev=qmp,mode=control",
    );
  }
  if (spec.saveStateSocketPath !== undefined) {
    fds.add({ kind: "path", path: spec.saveStateSocketPath }, SAVE_STATE_FD);
  }
  if (spec.memoryFile !== undefined) {
    const { path, shared } = spec.memoryFile;
    // A shared RAM file is this VM's own and created for it; a snapshot's is mapped
    // copy-on-write, which QEMU 7.2 still opens read-write (jail.ts, SNAPSHOT_RAM_GID).
    const memPath = fds.reopenable(path, true, shared);
    args.push(
      "-object",
      `memory-backend-file,id=${RAM_BACKEND_ID},size=${spec.memoryMb}M,` +
        `mem-path=${memPath},share=${shared ? "on" : "off"}`,
    );
  }
  if (spec.namedRam && spec.memoryFile === undefined) {
    args.push("-object", `memory-backend-ram,id=${RAM_BACKEND_ID},size=${spec.memoryMb}M`);
  }
  if (spec.incomingStatePath !== undefined) {
    // Deferred: the migration capabilities must match the saving side's before the stream is
    // read, and QEMU 7.2 cannot set them on the command line. The file is INCOMING_STATE_FD,
    // so QEMU reads it with no shell, `cat` or pipe in between.
    fds.add({ kind: "file", path: spec.incomingStatePath, write: false }, INCOMING_STATE_FD);
    args.push("-incoming", "defer");
  }
  (spec.rawPorts ?? []).forEach((port, i) => {
    args.push(
      "-chardev",
      `socket,id=raw${i},fd=${fds.socket(port.socketPath)}`,
      "-device",
      `virtserialport,chardev=raw${i},name=${port.name}`,
    );
  });
  if (spec.networkSocketPath !== undefined) {
    args.push(
      "-netdev",
      `stream,id=net0,server=off,addr.type=fd,addr.str=${fds.socket(spec.networkSocketPath)}`,
      "-device",
      `virtio-net-device,netdev=net0,host_mtu=${spec.networkMtu ?? 65520}`,
    );
  }
  return { args, descriptors: fds.descriptors };
}
