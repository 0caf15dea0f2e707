/**
 * The host side of the host<->guest contract (docs/PROTOCOL.md, version 2): wire numbers,
 * record tags, and the names the host and the agent must agree on (virtio-serial ports, disk
 * serials, kernel command-line keys). The agent's copy is guest/proto.h; the unit test
 * test/unit/guest-contract.test.ts parses that header and fails when the two differ, so a
 * change here goes together with the same change there (and, for the wire, the spec).
 */

export const PROTOCOL_VERSION = 2;
export const FRAME_MAGIC = 0x57;
/** magic u8, type u8, reserved u16, stream u32, length u32, token u32. */
export const FRAME_HEADER_BYTES = 16;
/** Largest payload either side may send in one frame; also the parser's allocation bound. */
export const MAX_PAYLOAD = 262144;
/** Host -> guest (STDIN) flow-control window per stream at open: what the agent may have to buffer. */
export const INITIAL_WINDOW = 262144;
/**
 * Guest -> host (STDOUT/STDERR) window per stream at open: what the host may have to buffer.
 * Four maximal frames, so the agent keeps sending while CREDIT for earlier ones travels back
 * (with one frame's worth a file read was stop-and-wait).
 */
export const GUEST_WINDOW = 1048576;
/** Bytes per TLV entry header: u8 tag + u32 length. */
export const RECORD_ENTRY_HEADER_BYTES = 5;

export const FrameType = {
  Hello: 0x01,
  Configure: 0x02,
  Poweroff: 0x04,
  Ping: 0x05,
  NetworkSetup: 0x06,
  Attribute: 0x07,
  Usage: 0x08,
  Mount: 0x09,
  Exec: 0x10,
  Started: 0x11,
  Stdin: 0x12,
  Stdout: 0x13,
  Stderr: 0x14,
  Eof: 0x15,
  Signal: 0x16,
  Resize: 0x17,
  Exit: 0x18,
  Credit: 0x19,
  Close: 0x1a,
  Error: 0x1f,
  FileWrite: 0x20,
  Ok: 0x21,
  FileRead: 0x22,
  FileList: 0x23,
  FileStat: 0x24,
  Mkdir: 0x25,
  Remove: 0x26,
  PortForward: 0x30,
  DiskMount: 0x0a,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** "FileWrite" -> "FILE_WRITE": the spec's (and proto.h's) spelling of a name. */
export function screamingSnake(name: string): string {
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

const frameTypeNames = new Map<number, string>(
  Object.entries(FrameType).map(([name, value]) => [value, screamingSnake(name)]),
);

export function isFrameType(value: number): value is FrameType {
  return frameTypeNames.has(value);
}

/** Name for error messages; unknown numbers print as hex so a corrupt byte is recognisable. */
export function frameTypeName(value: number): string {
  return frameTypeNames.get(value) ?? `0x${value.toString(16).padStart(2, "0")}`;
}

/** The only types a guest may send; anything else from the guest is a protocol error. */
export const GUEST_FRAME_TYPES: ReadonlySet<number> = new Set<number>([
  FrameType.Hello,
  FrameType.Started,
  FrameType.Stdout,
  FrameType.Stderr,
  FrameType.Exit,
  FrameType.Credit,
  FrameType.Error,
  FrameType.Ok,
  // Only on PORT_FORWARD streams: the guest service closed its side.
  FrameType.Eof,
]);

// Record tags, one object per record kind (tags are only meaningful within their record).
export const HelloTag = { Version: 1, BootMs: 2, Agent: 3 } as const;
export const ConfigureTag = { TimeUnixMs: 1, Hostname: 2, Seed: 3, Token: 4, Freeze: 5 } as const;
export const NetworkSetupTag = { CaPem: 1, CaPath: 2, Bundle: 3, HostsLine: 4 } as const;
/** ATTRIBUTE: which exec a process or socket belongs to; each tag repeats (at most 64 keys). */
export const AttributeTag = { Pid: 1, TcpPort: 2, UdpPort: 3 } as const;
export const AttributeOkTag = { Entry: 1 } as const;
/** One ATTRIBUTE_OK entry: the key asked about and what the guest found. */
export const AttributionTag = {
  Kind: 1,
  Key: 2,
  State: 3,
  Exec: 4,
  Pid: 5,
  Arg: 6,
  /** The process's cgroup2 id (u64): tells a pid's process from a later one (the SYN stamp). */
  Cgroup: 7,
} as const;
export const AttributionKind = { Pid: 1, Tcp: 2, Udp: 3 } as const;
/** GONE: no such process or socket now; EXEC: an exec's (EXEC = its stream id); NO_EXEC: not. */
export const AttributionState = { Gone: 0, Exec: 1, NoExec: 2 } as const;
export const UsageOkTag = { DiskWrittenBytes: 1 } as const;
export const MountTag = { Path: 1 } as const;
export const ExecTag = { Argv: 1, Env: 2, Cwd: 3, User: 4, Tty: 5, Rows: 6, Cols: 7 } as const;
export const StartedTag = { Pid: 1 } as const;
export const ErrorTag = { Message: 1, Errno: 2 } as const;
export const FileWriteTag = { Path: 1, Mode: 2, Uid: 3, Gid: 4 } as const;
export const FileReadTag = { Path: 1 } as const;
export const FileReadOkTag = { Size: 1 } as const;
export const FileListTag = { Path: 1 } as const;
export const FileListOkTag = { Entry: 1 } as const;
export const FileStatTag = { Path: 1, Follow: 2 } as const;
export const MkdirTag = { Path: 1, Mode: 2 } as const;
export const RemoveTag = { Path: 1, Recursive: 2 } as const;
export const PortForwardTag = { Port: 1 } as const;
/** DISK_MOUNT: entry i mounts extra disk i (serial `wl-disk<i>`) read-write or read-only. */
export const DiskMountTag = { Path: 1, ReadonlyPath: 2 } as const;
export const StatTag = {
  Name: 1,
  Size: 2,
  Mode: 3,
  Uid: 4,
  Gid: 5,
  MtimeMs: 6,
  Link: 7,
} as const;

/** Every record kind by name; proto.h spells tag `Field` of record `Kind` as `T_KIND_FIELD`. */
export const RECORD_TAGS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  Hello: HelloTag,
  Configure: ConfigureTag,
  NetworkSetup: NetworkSetupTag,
  Attribute: AttributeTag,
  AttributeOk: AttributeOkTag,
  Attribution: AttributionTag,
  UsageOk: UsageOkTag,
  Mount: MountTag,
  Exec: ExecTag,
  Started: StartedTag,
  Error: ErrorTag,
  FileWrite: FileWriteTag,
  FileRead: FileReadTag,
  FileReadOk: FileReadOkTag,
  FileList: FileListTag,
  FileListOk: FileListOkTag,
  FileStat: FileStatTag,
  Mkdir: MkdirTag,
  Remove: RemoveTag,
  PortForward: PortForwardTag,
  Stat: StatTag,
  DiskMount: DiskMountTag,
};

/** virtio-serial port names (`/sys/class/virtio-ports/<port>/name` in the guest). */
export const PortName = {
  /** The framed protocol of this file. */
  Control: "wheellock.ctl",
  /** Raw FUSE messages; present when the sandbox has mounts or may use a snapshot. */
  Fuse: "wheellock.fuse",
} as const;

/** virtio-blk serials: the agent finds its disks by serial, not by /dev/vdX order. */
export const DiskSerial = {
  /** The image, mounted read-only as the overlay's lower layer. */
  Root: "wl-root",
  /** The writable ext4 holding the overlay's upper and work dirs. */
  Upper: "wl-upper",
  /** Extra disk `i` is `wl-disk<i>`. */
  ExtraPrefix: "wl-disk",
} as const;

export function extraDiskSerial(index: number): string {
  return `${DiskSerial.ExtraPrefix}${index}`;
}

/** Kernel command-line keys the agent reads (docs/PROTOCOL.md "Boot"). */
export const CmdlineKey = {
  /** `=1`: commands run without the agent's hardening (and /sys stays writable). */
  Privileged: "wheellock.privileged",
  /** `=/a,/b:ro`: guest path of extra disk i at position i. */
  Disks: "wheellock.disks",
  /** `=ADDR/PREFIX,GATEWAY,MTU`: static eth0 settings. */
  Net: "wheellock.net",
  /**
   * `=0`: execs get no cgroups of their own (attribution by parent pid only; benchmarks).
   * `=fork`: each child joins its cgroup after `fork`, not through clone3 (tests).
   */
  Attribution: "wheellock.attribution",
  /**
   * `=1`: the host will send `MOUNT`; the agent mounts the FUSE filesystem at boot (its INIT
   * answered only after `MOUNT`), so a restore does not pay for the mount itself.
   */
  Mounts: "wheellock.mounts",
} as const;
export type CmdlineKey = (typeof CmdlineKey)[keyof typeof CmdlineKey];

/** One kernel command-line word, `key=value` (values must not contain spaces). */
export function kernelArg(key: CmdlineKey, value: string): string {
  if (/\s/.test(value)) throw new RangeError(`${key}: value must not contain whitespace`);
  return `${key}=${value}`;
}
