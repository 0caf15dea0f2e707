/**
 * The FUSE server: turns kernel requests into provider calls. Requests run concurrently and
 * each reply goes out when its own provider call finishes, tagged with the request's
 * `unique`, so a slow read never holds up a lookup. Nothing the guest sends can throw out of
 * here: a malformed request gets an error reply, a broken stream stops the server.
 */
import type { Duplex } from "node:stream";
import {
  FUSE_KERNEL_VERSION,
  FUSE_MAX_PAGES,
  FUSE_MIN_KERNEL_MINOR,
  FUSE_OUR_MINOR,
  InitFlag,
  MAX_READAHEAD_BYTES,
  LIST_DIR_OPCODE,
  MAX_WRITE_BYTES,
  NOTIFY_LOST_OPCODE,
  Opcode,
  RELAY_ANSWERED_FLAG,
  RELAY_BEHIND_DONE,
} from "./fuse-constants.js";
import { Errno, VfsError, toErrno } from "./errors.js";
import { DirListings } from "./dir-listings.js";
import { Invalidator } from "./fuse-notify.js";
import type { HostProbe } from "./stat-signature.js";
import { FuseFramer, type FuseRequest } from "./fuse-framer.js";
import { BodyReader } from "./fuse-reader.js";
import { errorReply, initOut, relayMessage, reply, type CacheTimeouts } from "./fuse-reply.js";
import { HandleTable } from "./handle-table.js";
import { InodeTable, type InodeTableState } from "./inode-table.js";
import { fuseRequestStats } from "./request-stats.js";
import { RelayListings, dropMessage } from "./relay-listing.js";
import { fileOps } from "./ops-file.js";
import { nodeOps } from "./ops-node.js";
import type { OpHandler, OpsContext } from "./ops-context.js";
import type { VfsCaller, VfsProvider } from "./provider.js";

export interface FuseServerOptions {
  readonly provider: VfsProvider;
  /** How long the guest kernel may cache names and attributes; host-side changes show up after this. */
  readonly entryTimeoutMs?: number;
  readonly attrTimeoutMs?: number;
  /**
   * Longer timeouts for paths whose host-side changes reach `invalidate()` (a watched host
   * directory); undefined keeps the defaults. Once an invalidation may have been lost (see
   * Invalidator.reliable), new replies get the defaults everywhere again.
   */
  readonly watchedTimeouts?: (path: string) => CacheTimeouts | undefined;
  /** Requests served at once; beyond this the server stops reading from the stream. */
  readonly maxInFlight?: number;
  /**
   * Request bytes (mostly WRITE data) held at once; beyond this the server stops reading, so
   * a guest cannot make the host buffer more than about this much (default 32 MiB).
   */
  readonly maxInFlightBytes?: number;
  /** Open handles the guest may hold at once (EMFILE beyond). */
  readonly maxHandles?: number;
  /** Called once when the stream breaks the protocol or fails; the server has stopped. */
  readonly onError?: (err: Error) => void;
  /**
   * Runs before each request is served; a promise holds the request (its caller waits in
   * the guest) until it settles. The sandbox uses it to learn which exec a new caller pid
   * belongs to while that process is certainly alive.
   */
  readonly beforeRequest?: (caller: VfsCaller) => Promise<void> | undefined;
  /**
   * Lets the guest's FUSE relay answer LOOKUPs from directory listings the server gives it
   * (relay-listing.ts). Off by default; off where each stat must reach the provider (file
   * hooks).
   */
  readonly relayListings?: boolean;
}

const NO_REPLY = new Set<number>([
  Opcode.FORGET,
  Opcode.BATCH_FORGET,
  Opcode.INTERRUPT,
  NOTIFY_LOST_OPCODE,
  LIST_DIR_OPCODE,
]);
const MAX_BACKGROUND = 64;
/** A WL_RELAY_BEHIND_DONE goes out at least every this many write-behind requests. */
const BEHIND_REPORT_EVERY = 256;

/**
 * What a copy of a guest (fork, checkpoint) needs from the server of the original: the
 * kernel's FUSE session was initialised and holds these node ids. Open handles are not part
 * of it: a session with any is not copied (see FuseServer.exportSession).
 */
export interface FuseSessionState {
  initialized: boolean;
  inodes: InodeTableState;
  /** Directories whose listings the guest's relay may hold (RelayListings.exportState). */
  relayDirs?: string[];
}

/**
 * `state` with the file ids in `renamed` (old -> new) replaced: a copy whose provider holds
 * the same files under other ids (restored contents) keeps the guest's node ids on them.
 */
export function withRenamedFileIds(
  state: FuseSessionState,
  renamed: ReadonlyMap<string, string>,
): FuseSessionState {
  if (renamed.size === 0) return state;
  const nodes = state.inodes.nodes.map((n) => {
    const to = n.fileId === undefined ? undefined : renamed.get(n.fileId);
    return to === undefined ? n : { ...n, fileId: to };
  });
  return { ...state, inodes: { ...state.inodes, nodes } };
}

export class FuseServer {
  private readonly ctx: OpsContext;
  private readonly ops = new Map<number, OpHandler>([...nodeOps, ...fileOps]);
  private initialized = false;
  private destroyed = false;
  private inFlight = 0;
  /** Of those, the relay's LIST_DIRs (not a reason to refuse a copy: see exportSession). */
  private listDirsInFlight = 0;
  private inFlightBytes = 0;
  private stream: Duplex | undefined;
  private readonly invalidator: Invalidator;

  constructor(private readonly options: FuseServerOptions) {
    const defaults: CacheTimeouts = {
      entryMs: options.entryTimeoutMs ?? 1000,
      attrMs: options.attrTimeoutMs ?? 1000,
    };
    const inodes = new InodeTable();
    const relay = new RelayListings(options.relayListings ?? false);
    this.invalidator = new Invalidator(
      inodes,
      () => this.stream,
      (node) => relay.replaced(node),
    );
    const watched = options.watchedTimeouts;
    this.ctx = {
      provider: options.provider,
      inodes,
      handles: new HandleTable(options.maxHandles ?? 4096),
      listings: new DirListings(),
      relay,
      pushes: [],
      timeouts:
        watched === undefined
          ? () => defaults
          : (path) => (path !== "" && this.invalidator.reliable && watched(path)) || defaults,
    };
  }

  /** Node ids and handles the guest currently holds (for tests and leak checks). */
  get counts(): { nodes: number; handles: number; inFlight: number; relayDirs: number } {
    return {
      nodes: this.ctx.inodes.size,
      handles: this.ctx.handles.size,
      inFlight: this.inFlight,
      relayDirs: this.ctx.relay.size,
    };
  }

  /**
   * The session as plain data, for a copy of the guest; undefined while a file is open or a
   * request is being served (a copy's server could not answer for them).
   */
  exportSession(): FuseSessionState | undefined {
    // A LIST_DIR being answered does not count: a copy's relay gives up waiting for it and asks
    // again (the answer goes to the original, whose relay it was).
    const serving = this.inFlight - this.listDirsInFlight;
    if (this.ctx.handles.size > 0 || serving > 0 || this.destroyed) return undefined;
    return {
      initialized: this.initialized,
      inodes: this.ctx.inodes.exportState(),
      relayDirs: this.ctx.relay.exportState(),
    };
  }

  /** Takes over a copied guest's session (before `attach`): no INIT comes again. */
  resumeSession(state: FuseSessionState): void {
    if (this.stream !== undefined || this.initialized)
      throw new Error("FuseServer.resumeSession: the server is already serving");
    this.ctx.inodes.importState(state.inodes);
    this.ctx.relay.importState(state.relayDirs);
    this.initialized = state.initialized;
  }

  /**
   * Tells the guest kernel that `path` (in the served tree) changed behind its back, so its
   * cached name, attributes and pages are dropped now instead of when they time out.
   * `probe` reads the host's state of the path when the invalidation is sent: what already
   * matches what the guest was told is not invalidated (see Invalidator.changed).
   */
  invalidate(path: string, probe?: HostProbe): void {
    if (this.initialized && !this.destroyed) this.invalidator.changed(path, probe);
  }

  /** Write-behind requests received and not finished, and the promise of the last of them. */
  private behindPending = 0;
  private behindTail: Promise<unknown> = Promise.resolve();
  /** Write-behind requests finished and not yet reported to the relay, and their errors. */
  private behindDone = 0;
  private behindErrors: { unique: bigint; errno: number }[] = [];

  /**
   * `handle` in the order write-behind needs: a request the relay already answered (marked,
   * RELAY_ANSWERED_FLAG) runs after every earlier marked one; any other request waits until
   * all earlier marked ones finished, so a READ sees the WRITEs before it, a RENAME the
   * chmod, a FLUSH (whose reply the relay turns into their error) all of them. A marked
   * request gets no reply of its own: the relay learns that it is done, and its error, from
   * a WL_RELAY_BEHIND_DONE message, one per batch (sent before any later request's reply).
   * A hostile guest marking everything only serialises its own requests and loses their
   * replies; each still counts in the in-flight limits while it waits.
   */
  private ordered(request: FuseRequest): Promise<Buffer | undefined> {
    const marked = ((request.header.relayFlags ?? 0) & RELAY_ANSWERED_FLAG) !== 0;
    if (!marked) {
      if (this.behindPending === 0) return this.handle(request);
      return this.behindTail.then(() => {
        this.reportBehind();
        return this.handle(request);
      });
    }
    this.behindPending++;
    const result = this.behindTail.then(async () => {
      const reply = await this.handle(request);
      this.behindPending--;
      this.behindDone++;
      const errno = reply === undefined || reply.length < 16 ? 0 : -reply.readInt32LE(4);
      if (errno > 0) this.behindErrors.push({ unique: request.header.unique, errno });
      if (
        this.behindPending === 0 ||
        this.behindDone >= BEHIND_REPORT_EVERY ||
        this.behindErrors.length >= BEHIND_REPORT_EVERY
      )
        this.reportBehind();
      return undefined;
    });
    this.behindTail = result;
    return result;
  }

  /** WL_RELAY_BEHIND_DONE for the marked requests finished since the last one (PROTOCOL.md). */
  private reportBehind(): void {
    if (this.behindDone === 0) return;
    const errors = this.behindErrors;
    const body = Buffer.alloc(8 + 16 * errors.length);
    body.writeUInt32LE(this.behindDone, 0);
    body.writeUInt32LE(errors.length, 4);
    errors.forEach((e, i) => {
      body.writeBigUInt64LE(e.unique, 8 + 16 * i);
      body.writeInt32LE(e.errno, 16 + 16 * i);
    });
    const msg = relayMessage(RELAY_BEHIND_DONE, body);
    this.behindDone = 0;
    this.behindErrors = [];
    const stream = this.stream;
    if (stream !== undefined && !stream.destroyed) stream.write(msg);
  }

  /** Serves one request; resolves to the reply bytes, or undefined for requests with none. */
  async handle(request: FuseRequest): Promise<Buffer | undefined> {
    const { header } = request;
    const noReply = NO_REPLY.has(header.opcode);
    const started = fuseRequestStats.start();
    // What this request tells the guest's relay goes just before its reply (relay-listing.ts).
    const pushes: Buffer[] = [];
    const withPushes = (out: Buffer): Buffer =>
      pushes.length === 0 ? out : Buffer.concat([...pushes, out]);
    try {
      if (header.opcode === LIST_DIR_OPCODE) return await this.listDir(request);
      const payload = await this.dispatch(request, pushes);
      if (noReply || payload === undefined)
        return pushes.length === 0 ? undefined : Buffer.concat(pushes);
      return withPushes(reply(header.unique, payload));
    } catch (err) {
      if (noReply) return pushes.length === 0 ? undefined : Buffer.concat(pushes);
      return withPushes(errorReply(header.unique, toErrno(err)));
    } finally {
      const behind = ((header.relayFlags ?? 0) & RELAY_ANSWERED_FLAG) !== 0;
      fuseRequestStats.record(header.opcode, started, behind);
    }
  }

  /** The relay's LIST_DIR: a listing or DROP (a whole message of its own), or nothing. */
  private async listDir(request: FuseRequest): Promise<Buffer | undefined> {
    const { nodeid } = request.header;
    if (!this.initialized || this.destroyed) return dropMessage(nodeid, true);
    const op = request.body.length >= 4 ? request.body.readUInt32LE(0) : 0;
    const seq = request.body.length >= 8 ? request.body.readUInt32LE(4) : 0;
    return this.ctx.relay.request(this.ctx, nodeid, op, seq);
  }

  private async dispatch(request: FuseRequest, pushes: Buffer[]): Promise<Buffer | undefined> {
    const { header } = request;
    const body = new BodyReader(request.body);
    if (header.opcode === Opcode.INIT) return this.init(body);
    if (header.opcode === NOTIFY_LOST_OPCODE) {
      // The agent dropped a notification: long cache timeouts can no longer be trusted.
      this.invalidator.lost();
      return undefined;
    }
    if (!this.initialized || this.destroyed) throw new VfsError(Errno.EIO);
    if (header.opcode === Opcode.DESTROY) {
      this.destroyed = true;
      await this.releaseAll();
      return Buffer.alloc(0);
    }
    if (header.opcode === Opcode.INTERRUPT) return undefined; // replies come when the work ends
    const handler = this.ops.get(header.opcode);
    if (handler === undefined) throw new VfsError(Errno.ENOSYS);
    const caller = { uid: header.uid, gid: header.gid, pid: header.pid };
    const held = NO_REPLY.has(header.opcode) ? undefined : this.options.beforeRequest?.(caller);
    if (held) await held.catch(() => undefined);
    const { provider } = this.ctx;
    const ctx: OpsContext =
      provider.forCaller === undefined
        ? { ...this.ctx, pushes }
        : { ...this.ctx, pushes, provider: provider.forCaller(caller) };
    return handler(ctx, header, body);
  }

  private init(body: BodyReader): Buffer {
    if (this.initialized) throw new VfsError(Errno.EIO);
    const major = body.u32();
    const minor = body.u32();
    body.u32(); // max_readahead: the kernel's current window, not a limit (below)
    const kernelFlags = body.u32();
    if (major < FUSE_KERNEL_VERSION) throw new VfsError(Errno.EPROTO);
    if (major === FUSE_KERNEL_VERSION && minor < FUSE_MIN_KERNEL_MINOR) {
      throw new VfsError(Errno.EPROTO);
    }
    // A newer major: answer with ours only and the kernel sends INIT again (fuse.h rule).
    if (major > FUSE_KERNEL_VERSION) {
      return initOut({
        minor: FUSE_OUR_MINOR,
        maxReadaheadBytes: 0,
        flags: 0,
        maxBackground: 0,
        maxWriteBytes: 0,
        maxPages: 0,
      });
    }
    this.initialized = true;
    const wanted =
      InitFlag.ASYNC_READ |
      InitFlag.ATOMIC_O_TRUNC |
      InitFlag.BIG_WRITES |
      InitFlag.AUTO_INVAL_DATA |
      InitFlag.PARALLEL_DIROPS |
      InitFlag.HANDLE_KILLPRIV |
      InitFlag.MAX_PAGES;
    return initOut({
      minor: Math.min(minor, FUSE_OUR_MINOR),
      // The kernel keeps the smaller of this and the mount's window. The agent raises that
      // window to 4 MiB right after mounting, when this INIT (with the 128 KiB default in
      // it) is already queued: echoing the request's value would undo the raise.
      maxReadaheadBytes: MAX_READAHEAD_BYTES,
      flags: kernelFlags & wanted,
      maxBackground: MAX_BACKGROUND,
      maxWriteBytes: MAX_WRITE_BYTES,
      maxPages: FUSE_MAX_PAGES,
    });
  }

  /** Serves the requests arriving on `stream` (the relay's socket) and writes replies to it. */
  attach(stream: Duplex): void {
    if (this.stream !== undefined) throw new Error("FuseServer is already attached");
    this.stream = stream;
    const maxInFlight = this.options.maxInFlight ?? 256;
    const maxInFlightBytes = this.options.maxInFlightBytes ?? 32 * 1024 * 1024;
    const full = (): boolean =>
      this.inFlight >= maxInFlight || this.inFlightBytes >= maxInFlightBytes;
    // The framer and the stream pause together: a chunk can hold hundreds of small requests.
    const pause = (): void => {
      framer.pause();
      stream.pause();
    };
    const resume = (): void => {
      if (full() || stream.destroyed) return;
      framer.resume();
      if (!full()) stream.resume();
    };
    const framer: FuseFramer = new FuseFramer(
      (request) => {
        // A request counts until its reply has left the socket: a guest that stops reading
        // replies stalls itself instead of filling host memory with them.
        let heldBytes = request.body.length + replyEstimateBytes(request);
        const listDir = request.header.opcode === LIST_DIR_OPCODE;
        this.inFlight++;
        if (listDir) this.listDirsInFlight++;
        this.inFlightBytes += heldBytes;
        if (full()) pause();
        const done = (): void => {
          this.inFlight--;
          if (listDir) this.listDirsInFlight--;
          this.inFlightBytes -= heldBytes;
          resume();
        };
        void this.ordered(request).then((reply) => {
          if (reply === undefined || stream.destroyed) return done();
          this.inFlightBytes += reply.length - heldBytes;
          heldBytes = reply.length;
          stream.write(reply, () => done());
        });
      },
      (reason) => this.fail(new Error(`FUSE stream corrupt: ${reason}`)),
    );
    stream.on("data", (chunk: Buffer) => framer.push(chunk));
    stream.on("error", (err: Error) => this.fail(err));
    stream.on("close", () => void this.releaseAll());
  }

  private failed = false;

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.stream?.destroy();
    void this.releaseAll();
    this.options.onError?.(err);
  }

  private async releaseAll(): Promise<void> {
    for (const handle of this.ctx.handles.drain()) {
      if (handle.kind === "file") await handle.file.close().catch(() => undefined);
    }
  }

  /** Closes open handles and the provider; the stream (if any) is ended. */
  async close(): Promise<void> {
    this.destroyed = true;
    this.stream?.destroy();
    await this.releaseAll();
    await this.options.provider.close?.();
  }
}

/** What a READ or READDIR will send back (its size field, capped): reserved when it arrives. */
function replyEstimateBytes(request: FuseRequest): number {
  const { opcode } = request.header;
  if (opcode === LIST_DIR_OPCODE) return 64 * 1024;
  if ((opcode !== Opcode.READ && opcode !== Opcode.READDIR) || request.body.length < 20) return 0;
  return Math.min(request.body.readUInt32LE(16), MAX_WRITE_BYTES);
}
