/**
 * The guest agent as the host sees it: one typed method per operation of docs/PROTOCOL.md.
 * Callers never build records or name frame types; this is the only place that turns an
 * operation into its request and its reply into a typed result.
 */
import type { Duplex, Readable } from "node:stream";
import { ErrExec } from "../errors.js";
import {
  FileListOkTag,
  FileListTag,
  FileStatTag,
  FrameType,
  MkdirTag,
  MountTag,
  DiskMountTag,
  PortForwardTag,
  RemoveTag,
} from "./contract.js";
import {
  decodeAttributeReply,
  decodeUsageReply,
  encodeAttributeRequest,
  type AttributionKey,
  type GuestAttribution,
  type GuestUsage,
} from "./attribution.js";
import { Channel, type ChannelOptions, type Hello } from "./channel.js";
import { ExecHandle, type ExecRequest, type ExecStream } from "./exec.js";
import {
  openReadFile,
  openRequest,
  openWriteFile,
  type FileData,
  type WriteFileRequest,
} from "./open.js";
import { PortHandle, type PortStream } from "./port.js";
import { encodeRecord, field, type RecordField } from "./record.js";
import {
  encodeConfigure,
  encodeExecRequest,
  encodeNetworkSetup,
  type GuestSettings,
  type NetworkSetupRequest,
} from "./requests.js";
import { decodeListEntry, decodeStat, type StatInfo } from "./stat.js";

export class GuestAgent {
  private constructor(private readonly channel: Channel) {}

  /** Takes ownership of `io` (the control port's socket): it is destroyed when the agent closes. */
  static attach(io: Duplex, opts: ChannelOptions = {}): GuestAgent {
    return new GuestAgent(Channel.attach(io, opts));
  }

  /** Resolves with the agent's HELLO; nothing is sent before it (the agent may not be listening yet). */
  get hello(): Promise<Hello> {
    return this.channel.hello;
  }

  /** Streams open now (see Channel.openStreams). */
  get openStreams(): number {
    return this.channel.openStreams;
  }

  get closed(): boolean {
    return this.channel.closed;
  }

  // Every method is async or returns a stream, so a value the wire cannot carry (RangeError
  // from the record builders) rejects or errors the stream instead of throwing.

  /**
   * CONFIGURE: the first request after a boot and after every restore. Besides `settings` it
   * hands the agent a fresh session token (token.ts), so a guest restored from a snapshot
   * stops using the token its snapshot holds. An ERROR reply rejects (GuestExecError).
   */
  async configure(settings: GuestSettings = {}): Promise<void> {
    const token = this.channel.nextToken();
    await this.request(FrameType.Configure, encodeConfigure(settings, token));
  }

  /** A no-op round trip (liveness, latency). */
  async ping(): Promise<void> {
    await this.request(FrameType.Ping, []);
  }

  /** NETWORK_SETUP: installs the intercept CA and `/etc/hosts` lines in one round trip. */
  async networkSetup(req: NetworkSetupRequest): Promise<void> {
    await this.request(FrameType.NetworkSetup, encodeNetworkSetup(req));
  }

  /**
   * MOUNT: the guest mounts the FUSE port's filesystem and binds each guest path to its
   * subtree (the host serves them: sandbox/fuse-mounts.ts). Once per guest, after CONFIGURE
   * and before the first command; an ERROR names the path that failed.
   */
  async mount(guestPaths: readonly string[]): Promise<void> {
    await this.request(
      FrameType.Mount,
      guestPaths.map((path) => field.string(MountTag.Path, path)),
    );
  }

  /**
   * DISK_MOUNT: the guest probes each extra disk's device afresh (a restored guest still knows
   * its snapshot's placeholder drive) and mounts disk i at `disks[i].guestPath`. Once per guest,
   * after CONFIGURE and before the first command; an ERROR names the disk that failed.
   */
  async mountDisks(disks: readonly { guestPath: string; readonly: boolean }[]): Promise<void> {
    await this.request(
      FrameType.DiskMount,
      disks.map((d) =>
        field.string(d.readonly ? DiskMountTag.ReadonlyPath : DiskMountTag.Path, d.guestPath),
      ),
    );
  }

  /** ATTRIBUTE: which exec each process or socket belongs to (one answer per key, in order). */
  async attribute(keys: readonly AttributionKey[]): Promise<GuestAttribution[]> {
    return decodeAttributeReply(
      await this.request(FrameType.Attribute, encodeAttributeRequest(keys)),
    );
  }

  /** USAGE: what only the guest can count (bytes written to its disks). */
  async usage(): Promise<GuestUsage> {
    return decodeUsageReply(await this.request(FrameType.Usage, []));
  }

  /** `id`: the exec's stream, the id attribution answers name. */
  exec(req: ExecRequest): ExecStream & { readonly id: number } {
    const opener = this.channel.opener();
    let payload: Buffer;
    try {
      payload = encodeExecRequest(req);
    } catch (err) {
      const handle = new ExecHandle(0, opener.ctx);
      handle.fail(
        new ErrExec(`invalid exec request: ${err instanceof Error ? err.message : String(err)}`),
      );
      return handle;
    }
    return opener.open(FrameType.Exec, payload, (id) => new ExecHandle(id, opener.ctx));
  }

  /** Creates or truncates the file (parents 0755) and streams `data` into it. */
  writeFile(req: WriteFileRequest, data: FileData): Promise<void> {
    return openWriteFile(this.channel.opener(), req, data);
  }

  /** File contents as a stream; guest errors (ENOENT, ...) arrive as the stream's 'error'. */
  readFile(path: string): Readable {
    return openReadFile(this.channel.opener(), path);
  }

  /** FILE_STAT; `follow` stats a symlink's target instead of the link. */
  async stat(path: string, opts: { follow?: boolean } = {}): Promise<StatInfo> {
    const reply = await this.request(
      FrameType.FileStat,
      [
        field.string(FileStatTag.Path, path),
        field.u8(FileStatTag.Follow, opts.follow === true ? 1 : 0),
      ],
      path,
    );
    return decodeStat(reply);
  }

  /** FILE_LIST: the entries of a directory, sorted by name, without `.` and `..`. */
  async listFiles(path: string): Promise<StatInfo[]> {
    const reply = await this.request(
      FrameType.FileList,
      [field.string(FileListTag.Path, path)],
      path,
    );
    return reply.records(FileListOkTag.Entry).map(decodeListEntry);
  }

  /** `mkdir -p`; `mode` (default 0755) applies to the last component if it is created. */
  async mkdir(path: string, opts: { mode?: number } = {}): Promise<void> {
    await this.request(
      FrameType.Mkdir,
      [field.string(MkdirTag.Path, path), field.u32(MkdirTag.Mode, opts.mode ?? 0o755)],
      path,
    );
  }

  /** Never follows symlinks; `recursive` is `rm -rf` (a missing path is fine). */
  async remove(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await this.request(
      FrameType.Remove,
      [
        field.string(RemoveTag.Path, path),
        field.u8(RemoveTag.Recursive, opts.recursive === true ? 1 : 0),
      ],
      path,
    );
  }

  /** PORT_FORWARD: a TCP connection to 127.0.0.1:`port` inside the guest. */
  forwardPort(port: number): PortStream {
    const opener = this.channel.opener();
    const payload = encodeRecord([field.u32(PortForwardTag.Port, port)]);
    return opener.open(FrameType.PortForward, payload, (id) => new PortHandle(id, opener.ctx));
  }

  /** Asks the agent to power the VM off; there is no reply, the io simply ends. */
  poweroff(): void {
    this.channel.poweroff();
  }

  /** Idempotent. Pending operations reject with `err` (default ErrVMNotRunning). */
  close(err?: Error): void {
    this.channel.close(err);
  }

  private request(type: number, fields: readonly RecordField[], path?: string) {
    return openRequest(this.channel.opener(), type, fields, path);
  }
}
