import {
  constants,
  chownSync,
  closeSync,
  fchownSync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
} from "node:fs";
import { createConnection, type Socket } from "node:net";
import type { Stream } from "node:stream";
import { ErrInvalidConfig, ErrSetup } from "../errors.js";
import { fdIdentity } from "../util/index.js";
import { mayOpen, type QemuJail } from "./jail.js";
import { consoleSocketPair } from "./console-stream.js";
import type { LaunchDescriptor } from "./qemu-args.js";

/** Linux O_PATH (not exported by Node's fs.constants). */
const O_PATH = 0o10000000;

type StdioEntry = "ignore" | "pipe" | number | Stream;

export interface OpenedDescriptors {
  /** The spawn `stdio` array: index = descriptor number in QEMU. */
  stdio: StdioEntry[];
  /** This process's end of the console (console-stream.ts). */
  console: Socket;
  /** Closes this process's copies once QEMU has its own (or the launch failed). */
  close(): void;
}

/**
 * A connection to a host socket, made on QEMU's behalf. It must never be read here: it is
 * paused before it connects, so bytes the listener writes early (QMP commands) wait in the
 * socket for QEMU.
 */
function connectPaused(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.pause();
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Opens what `descriptors` name, for a QEMU that runs as `jail` (undefined: as this user). */
export async function openLaunchDescriptors(
  descriptors: readonly LaunchDescriptor[],
  jail: QemuJail | undefined,
): Promise<OpenedDescriptors> {
  const stdio: StdioEntry[] = ["ignore", "ignore", "pipe"];
  const fds: number[] = [];
  const sockets: Socket[] = [];
  let consoleHost: Socket | undefined;
  const close = (): void => {
    for (const fd of fds.splice(0)) closeSync(fd);
    for (const socket of sockets.splice(0)) socket.destroy();
  };
  try {
    for (const d of descriptors) {
      switch (d.kind) {
        case "file":
          stdio[d.fd] = track(fds, openImageFile(d));
          break;
        case "reopen":
          stdio[d.fd] = track(fds, openReopenable(d, jail));
          break;
        case "path":
          // Connecting needs write permission on the socket itself: the jail's user gets it.
          if (jail) chownSync(d.path, jail.uid, jail.gid);
          stdio[d.fd] = track(fds, openSync(d.path, O_PATH));
          break;
        case "connect": {
          const socket = await connectPaused(d.path);
          sockets.push(socket);
          stdio[d.fd] = socket;
          break;
        }
        case "console": {
          const pair = await consoleSocketPair(d.path);
          consoleHost = pair.host;
          sockets.push(pair.qemu);
          stdio[d.fd] = pair.qemu;
          break;
        }
      }
    }
    if (!consoleHost) throw new Error("a QEMU launch plan without a console");
    const strays = inheritableStrayFds().filter((fd) => stdio[fd] === undefined);
    if (strays.length > 0) {
      const devNull = track(fds, openSync("/dev/null", "r"));
      for (const fd of strays) stdio[fd] = devNull;
    }
  } catch (err) {
    close();
    consoleHost?.destroy();
    throw err;
  }
  for (let i = 0; i < stdio.length; i++) stdio[i] ??= "ignore";
  return { stdio, console: consoleHost, close };
}

/**
 * Opens a `file` descriptor's path. One a node checked (`identity`) must be what was opened:
 * a swap since the check (a symlink to another file) is refused.
 */
export function openImageFile(d: { path: string; write: boolean; identity?: string }): number {
  return openPinnedFile(d.path, d.write ? constants.O_RDWR : constants.O_RDONLY, d.identity);
}

/**
 * Opens `path` with `flags`; with an `identity`, only if it is still that file. The path is
 * resolved first with O_PATH, which opens nothing (no FIFO to wait on, no device whose open
 * does something), and the file is opened only once its identity is checked, through that
 * descriptor (the same file, whatever the path leads to by then).
 */
export function openPinnedFile(path: string, flags: number, identity: string | undefined): number {
  if (identity === undefined) return openSync(path, flags | OPEN_WITHOUT_WAITING);
  const located = openSync(path, O_PATH);
  try {
    if (fdIdentity(located) !== identity)
      throw new ErrInvalidConfig(
        `${path} is no longer the file that was checked (it was replaced)`,
      );
    return openSync(`/proc/self/fd/${located}`, flags | OPEN_WITHOUT_WAITING);
  } finally {
    closeSync(located);
  }
}

/** Opens that return at once whatever the path leads to: a FIFO, a terminal. */
const OPEN_WITHOUT_WAITING = constants.O_NONBLOCK | constants.O_NOCTTY;

/** O_CLOEXEC as `/proc/<pid>/fdinfo` shows it (octal `flags`). */
const O_CLOEXEC = 0o2000000;

/**
 * Descriptors this process inherited without close-on-exec from whatever started it (a shell
 * script's `exec 200>lock`, a CI runner's pipes). Node marks only the lowest ones
 * close-on-exec, and a spawned child keeps every other descriptor it is not given, so QEMU
 * (jailed or not) would hold them: a root-opened file in an unprivileged QEMU, or a lock
 * that is not released while any QEMU lives. Its stdio overlays each with /dev/null.
 */
export function inheritableStrayFds(): number[] {
  const strays: number[] = [];
  for (const name of readdirSync("/proc/self/fd")) {
    const fd = Number(name);
    if (fd < 3) continue;
    let info: string;
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
    } catch {
      continue; // the directory listing's own descriptor, closed by now
    }
    const flags = /^flags:\s+([0-7]+)$/m.exec(info)?.[1];
    if (flags !== undefined && (parseInt(flags, 8) & O_CLOEXEC) === 0) strays.push(fd);
  }
  return strays;
}

function track(fds: number[], fd: number): number {
  fds.push(fd);
  return fd;
}

export function openReopenable(
  d: Extract<LaunchDescriptor, { kind: "reopen" }>,
  jail: QemuJail | undefined,
): number {
  if (d.create) {
    // The VM's own RAM file: created for it and owned by its user, so QEMU may open it.
    const fd = openSync(d.path, "w", 0o600);
    try {
      if (jail) fchownSync(fd, jail.uid, jail.gid);
    } finally {
      closeSync(fd);
    }
  }
  // An O_PATH descriptor grants nothing by itself: QEMU's open through it is checked
  // against the file's own permissions, here first so a refusal explains itself.
  const fd = openSync(d.path, O_PATH);
  // One a node checked (`identity`) must be what was opened: a swap since the check is refused.
  if (d.identity !== undefined && fdIdentity(fd) !== d.identity) {
    closeSync(fd);
    throw new ErrInvalidConfig(
      `${d.path} is no longer the file that was checked (it was replaced)`,
    );
  }
  if (jail && !mayOpen(fstatSync(fd), jail, d.write)) {
    closeSync(fd);
    throw new ErrSetup(
      `QEMU runs as uid ${jail.uid} and may not ${d.write ? "write" : "read"} ${d.path}` +
        (d.write ? "" : ": make it readable by others (chmod o+r)"),
    );
  }
  return fd;
}
