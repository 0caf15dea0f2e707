/**
 * The host end of the control port: one Channel per VM, multiplexing operations onto
 * streams (the typed operations are GuestAgent's, agent.ts). Everything arriving here is
 * guest-controlled, so every handler path either succeeds or ends the whole channel with one
 * error; nothing throws out of an io event and every promise handed out settles when the
 * channel ends.
 */
import type { Duplex } from "node:stream";
import { ErrProtocol, ErrVMNotRunning } from "../errors.js";
import {
  FrameType,
  GUEST_FRAME_TYPES,
  HelloTag,
  PROTOCOL_VERSION,
  frameTypeName,
} from "./contract.js";
import { Deferred } from "./deferred.js";
import { FrameParser, type Frame } from "./frame.js";
import { Transport } from "./transport.js";
import { decodeRecord } from "./record.js";
import { StrayFrameGuard } from "./stray.js";
import type { StreamContext, StreamHandler, StreamOpener } from "./streams.js";
import { TokenGate } from "./token.js";

export interface ChannelOptions {
  /** Called once when the guest breaks the protocol (ErrProtocol) or a handler fails; the channel is already closed. */
  onFatal?: (err: Error) => void;
  /** Frames tolerated on unknown streams, and on each stream after the host CLOSEd it (default 1024). */
  maxUnknownFrames?: number;
  /**
   * The guest already said HELLO to an earlier host: a VM restored from a memory snapshot
   * resumes after its hello, so this channel starts as if it had received one. Its agent
   * still holds the snapshot's session token, which this channel never accepts: the first
   * request must be a CONFIGURE (GuestAgent.configure) with a token of its own.
   */
  resumed?: boolean;
  /**
   * The first stream id this channel opens (default 1). A copy of a running guest (a fork or
   * a checkpoint) starts past every id its source can have used: the agent keeps, for each
   * exec's cgroup, the id of the exec it was made for, and a copy that numbered its streams
   * from 1 again would have its own execs named for the source's processes (attribution).
   */
  firstStreamId?: number;
}

export interface Hello {
  readonly version: number;
  readonly bootMs: number;
  readonly agent: string;
}

const DEFAULT_MAX_UNKNOWN_FRAMES = 1024;
/** What `hello` resolves with on a resumed channel (the real HELLO went to an earlier host). */
const RESUMED_HELLO: Hello = { version: PROTOCOL_VERSION, bootMs: 0, agent: "restored" };
const MAX_STREAM_ID = 0xffffffff;

export class Channel {
  private readonly transport: Transport;
  private readonly parser: FrameParser;
  private readonly streams = new Map<number, StreamHandler>();
  private readonly stray: StrayFrameGuard;
  private readonly tokens: TokenGate;
  private readonly helloD = new Deferred<Hello>();
  private helloReceived = false;
  private nextId = 1;
  private closeError: Error | undefined;
  /** Chunks waiting while a chunk is being parsed (see onData). */
  private parsing: Buffer[] | undefined;
  private readonly ctx: StreamContext;

  private constructor(
    io: Duplex,
    private readonly opts: ChannelOptions,
  ) {
    const maxUnknownFrames = opts.maxUnknownFrames ?? DEFAULT_MAX_UNKNOWN_FRAMES;
    if (!Number.isInteger(maxUnknownFrames) || maxUnknownFrames < 0) {
      throw new RangeError(
        `maxUnknownFrames must be a non-negative integer, got ${maxUnknownFrames}`,
      );
    }
    this.parser = new FrameParser((frame) => this.onFrame(frame));
    this.stray = new StrayFrameGuard(maxUnknownFrames);
    this.tokens = new TokenGate(opts.resumed === true);
    if (opts.firstStreamId !== undefined) {
      if (
        !Number.isInteger(opts.firstStreamId) ||
        opts.firstStreamId < 1 ||
        opts.firstStreamId > MAX_STREAM_ID
      )
        throw new RangeError(`firstStreamId must be a stream id, got ${opts.firstStreamId}`);
      this.nextId = opts.firstStreamId;
    }
    this.transport = new Transport(io, {
      onData: (chunk) => this.onData(chunk),
      onGone: (err) => this.close(err),
    });
    if (opts.resumed === true) {
      this.helloReceived = true;
      this.transport.flushHeld();
      this.helloD.resolve(RESUMED_HELLO);
    }
    this.ctx = {
      send: (type, id, payload) => this.transport.send(type, id, payload),
      whenWritable: () => this.transport.whenWritable(),
      consumed: (id, bytes) => {
        const credit = this.streams.get(id)?.recv.consumed(bytes) ?? 0;
        if (credit > 0) this.transport.send(FrameType.Credit, id, u32(credit));
      },
      abandon: (id) => {
        if (!this.streams.delete(id)) return;
        this.stray.hostClosed(id);
        this.transport.send(FrameType.Close, id);
      },
    };
  }

  /** Takes ownership of `io` (the control port's socket): it is destroyed when the channel closes. */
  static attach(io: Duplex, opts: ChannelOptions = {}): Channel {
    return new Channel(io, opts);
  }

  /** Resolves with the guest's HELLO; the host sends nothing before it (the guest may not be listening yet). */
  get hello(): Promise<Hello> {
    return this.helloD.promise;
  }

  get closed(): boolean {
    return this.closeError !== undefined;
  }

  /** Streams open now (execs, transfers, port connections): a checkpoint waits for none. */
  get openStreams(): number {
    return this.streams.size;
  }

  /** A fresh session token for the CONFIGURE about to be sent (token.ts). */
  nextToken(): number {
    return this.tokens.next();
  }

  /** Asks the agent to power the VM off; there is no reply, the io simply ends. */
  poweroff(): void {
    this.transport.send(FrameType.Poweroff, 0);
  }

  /** Idempotent. Pending operations reject with `err` (default ErrVMNotRunning). */
  close(err?: Error): void {
    if (this.closeError !== undefined) return;
    const error = err ?? new ErrVMNotRunning("guest channel closed");
    this.closeError = error;
    this.parser.stop();
    this.helloD.reject(error);
    const handlers = [...this.streams.values()];
    this.streams.clear();
    for (const handler of handlers) handler.fail(error);
    this.transport.close(error);
  }

  /** Opens streams for the operations (agent.ts, open.ts); a closed channel fails them at once. */
  opener(): StreamOpener {
    return {
      ctx: this.ctx,
      open: <T extends StreamHandler>(
        type: number,
        payload: Buffer,
        make: (id: number) => T,
      ): T => {
        if (this.closeError !== undefined || this.nextId > MAX_STREAM_ID) {
          const handler = make(0);
          handler.fail(this.closeError ?? new ErrVMNotRunning("stream ids exhausted"));
          return handler;
        }
        const id = this.nextId++;
        const handler = make(id);
        this.streams.set(id, handler);
        this.stray.opened(id);
        this.transport.send(type, id, payload);
        return handler;
      },
    };
  }

  /**
   * A Duplex may emit 'data' again from inside our own handling (a frame we send can make a
   * synchronous peer answer at once); the parser is not reentrant, so such chunks queue.
   */
  private onData(chunk: Buffer): void {
    if (this.parsing !== undefined) {
      this.parsing.push(chunk);
      return;
    }
    this.parsing = [chunk];
    try {
      for (let next = this.parsing.shift(); next !== undefined; next = this.parsing.shift()) {
        if (this.closeError !== undefined) break;
        this.parser.push(next);
      }
    } catch (err) {
      this.fatal(err);
    } finally {
      this.parsing = undefined;
    }
  }

  private fatal(err: unknown): void {
    if (this.closeError !== undefined) return;
    const error = err instanceof Error ? err : new ErrProtocol(String(err));
    this.close(error);
    try {
      this.opts.onFatal?.(error);
    } catch (hookErr) {
      // Throwing here would escape an io event handler; make it visible without crashing.
      process.emitWarning(`Channel onFatal handler threw: ${String(hookErr)}`);
    }
  }

  private onFrame(frame: Frame): void {
    const { type, streamId, payload } = frame;
    this.tokens.check(frame);
    if (!GUEST_FRAME_TYPES.has(type))
      throw new ErrProtocol(`guest sent ${frameTypeName(type)}, a host-to-guest frame`);
    if (type === FrameType.Hello) return this.onHello(frame);
    if (!this.helloReceived) throw new ErrProtocol(`${frameTypeName(type)} before HELLO`);
    if (type === FrameType.Credit && payload.length !== 4) {
      throw new ErrProtocol(`CREDIT payload of ${payload.length} bytes, expected 4`);
    }
    if (streamId === 0) return this.onControl(frame);
    const handler = this.streams.get(streamId);
    if (handler === undefined) return this.stray.check(frame);
    if (type === FrameType.Credit) {
      handler.sender?.window.grant(payload.readUInt32BE(0));
      return;
    }
    if (type === FrameType.Stdout || type === FrameType.Stderr)
      handler.recv.receive(payload.length);
    if (handler.onFrame(frame)) this.streams.delete(streamId);
  }

  private onHello(frame: Frame): void {
    if (frame.streamId !== 0) throw new ErrProtocol(`HELLO on stream ${frame.streamId}`);
    if (this.helloReceived) throw new ErrProtocol("HELLO twice");
    const rec = decodeRecord(frame.payload, "HELLO");
    const version = rec.require(rec.u32(HelloTag.Version), "VERSION");
    if (version !== PROTOCOL_VERSION) {
      throw new ErrProtocol(
        `agent speaks protocol version ${version}, host speaks ${PROTOCOL_VERSION}`,
      );
    }
    const hello: Hello = {
      version,
      bootMs: rec.require(rec.u64(HelloTag.BootMs), "BOOT_MS"),
      agent: rec.require(rec.string(HelloTag.Agent), "AGENT"),
    };
    this.helloReceived = true;
    this.transport.flushHeld();
    this.helloD.resolve(hello);
  }

  private onControl(frame: Frame): void {
    if (frame.type === FrameType.Credit) return; // stream 0 carries no data; harmless
    if (frame.type === FrameType.Error) {
      const rec = decodeRecord(frame.payload, "ERROR");
      throw new ErrProtocol(`agent failed: ${rec.string(1) ?? "(no message)"}`);
    }
    throw new ErrProtocol(`${frameTypeName(frame.type)} on the control stream`);
  }
}

function u32(value: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(value);
  return out;
}
