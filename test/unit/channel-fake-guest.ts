/**
 * Test support for the channel tests: an in-memory duplex pair and a fake guest agent that
 * speaks docs/PROTOCOL.md from the guest side, honouring (and checking) credits.
 */
import { Duplex } from "node:stream";
import { once, EventEmitter } from "node:events";
import {
  ConfigureTag,
  FrameType,
  GUEST_WINDOW,
  INITIAL_WINDOW,
  PROTOCOL_VERSION,
} from "../../src/channel/contract.js";
import { FrameParser, encodeFrame, type Frame } from "../../src/channel/frame.js";
import {
  decodeRecord,
  encodeRecord,
  field,
  type DecodedRecord,
  type RecordField,
} from "../../src/channel/record.js";

/**
 * Two connected Duplexes (node:stream's duplexPair is Node >= 22). Like a socket, delivery is
 * asynchronous (setImmediate, in order), so neither side sees reentrant 'data' events.
 */
export function duplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = [];
  const make = (peer: () => Duplex): Duplex => {
    const deliver = (chunk: Buffer | null): void => {
      setImmediate(() => {
        const p = peer();
        if (!p.destroyed && !p.readableEnded) p.push(chunk);
      });
    };
    return new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        deliver(chunk);
        cb();
      },
      final(cb) {
        deliver(null);
        cb();
      },
      destroy(err, cb) {
        deliver(null);
        cb(err);
      },
    });
  };
  sides.push(
    make(() => sides[1] as Duplex),
    make(() => sides[0] as Duplex),
  );
  return [sides[0] as Duplex, sides[1] as Duplex];
}

export function u32(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32BE(v, i * 4));
  return b;
}

export function i32pair(a: number, b: number): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeInt32BE(a, 0);
  buf.writeInt32BE(b, 4);
  return buf;
}

export function helloFrame(version = PROTOCOL_VERSION): Buffer {
  return encodeFrame(
    FrameType.Hello,
    0,
    encodeRecord([field.u32(1, version), field.u64(2, 1234), field.string(3, "fake-agent/1")]),
  );
}

interface GuestStream {
  id: number;
  kind: number;
  /** Guest -> host window the host granted us. */
  sendWindow: number;
  /** Bytes of host STDIN received and not yet credited back. */
  stdinOutstanding: number;
  stdin: Buffer[];
  eof: boolean;
  argv: string[];
  path: string;
  ended: boolean;
}

export type Program = (guest: FakeGuest, s: GuestStream) => Promise<void>;

/**
 * Guest agent stand-in. Programs are chosen by argv[0]. It records every violation of the
 * host's obligations (window overrun, frames before HELLO) in `violations`.
 */
export class FakeGuest extends EventEmitter {
  readonly streams = new Map<number, GuestStream>();
  readonly files = new Map<string, Buffer>();
  readonly violations: string[] = [];
  readonly received: Frame[] = [];
  /** When false, STDIN is not credited back until `releaseStdin` (tests host backpressure). */
  autoCredit = true;
  helloSent = false;
  bytesSentToHost = 0;
  /** Stamped on every frame, like the agent: 0 until a CONFIGURE gives one. */
  token = 0;
  /** What ATTRIBUTE answers: the reply's fields for the request's record (default: none). */
  attributeReply: (request: DecodedRecord) => RecordField[] = () => [];
  /** Every record request after HELLO, by frame type (tests inspect what the host asked). */
  readonly requests: { type: number; record: DecodedRecord }[] = [];
  private readonly parser: FrameParser;

  constructor(
    readonly io: Duplex,
    private readonly programs: Record<string, Program> = {},
  ) {
    super();
    this.parser = new FrameParser((frame) => this.onFrame(frame));
    io.on("data", (chunk: Buffer) => this.parser.push(chunk));
  }

  hello(): void {
    this.helloSent = true;
    this.io.write(helloFrame());
  }

  send(type: number, id: number, payload: Uint8Array = Buffer.alloc(0)): void {
    if (this.io.writable) this.io.write(encodeFrame(type, id, payload, this.token));
  }

  ok(id: number, fields: RecordField[] = []): void {
    this.end(id);
    this.send(FrameType.Ok, id, encodeRecord(fields));
  }

  error(id: number, message: string, errno?: number): void {
    this.end(id);
    const fields = [field.string(1, message)];
    if (errno !== undefined) fields.push(field.u32(2, errno));
    this.send(FrameType.Error, id, encodeRecord(fields));
  }

  exit(id: number, code: number, signal = 0): void {
    this.end(id);
    this.send(FrameType.Exit, id, i32pair(code, signal));
  }

  /** Sends data within the host's window, waiting for CREDIT like the real agent. */
  async write(id: number, type: number, data: Buffer, frameBytes = 64 * 1024): Promise<void> {
    const s = this.stream(id);
    let offset = 0;
    while (offset < data.length) {
      while (s.sendWindow === 0) {
        if (s.ended) return;
        await once(this, `credit:${id}`);
      }
      if (s.ended) return;
      const n = Math.min(s.sendWindow, frameBytes, data.length - offset);
      s.sendWindow -= n;
      this.bytesSentToHost += n;
      this.send(type, id, data.subarray(offset, offset + n));
      offset += n;
    }
  }

  /** Resolves with everything the host sent on STDIN once it sent EOF. */
  async readStdin(id: number): Promise<Buffer> {
    const s = this.stream(id);
    while (!s.eof) await once(this, `stdin:${id}`);
    return Buffer.concat(s.stdin);
  }

  releaseStdin(id: number): void {
    const s = this.stream(id);
    if (s.stdinOutstanding > 0) this.send(FrameType.Credit, id, u32(s.stdinOutstanding));
    s.stdinOutstanding = 0;
  }

  stream(id: number): GuestStream {
    const s = this.streams.get(id);
    if (s === undefined) throw new Error(`fake guest: no stream ${id}`);
    return s;
  }

  private end(id: number): void {
    const s = this.streams.get(id);
    if (s) s.ended = true;
  }

  private onFrame(frame: Frame): void {
    this.received.push(frame);
    if (!this.helloSent) this.violations.push(`host sent ${frame.type} before HELLO`);
    const { type, streamId: id, payload } = frame;
    const s = this.streams.get(id);
    switch (type) {
      case FrameType.Credit:
        if (s) {
          s.sendWindow += payload.readUInt32BE(0);
          this.emit(`credit:${id}`);
        }
        return;
      case FrameType.Stdin:
        if (!s) return;
        s.stdinOutstanding += payload.length;
        if (s.stdinOutstanding > INITIAL_WINDOW)
          this.violations.push(`host overran STDIN window on ${id}`);
        s.stdin.push(Buffer.from(payload));
        if (this.autoCredit) this.releaseStdin(id);
        this.emit(`stdin:${id}`);
        return;
      case FrameType.Eof:
        if (s) {
          s.eof = true;
          this.emit(`stdin:${id}`);
        }
        return;
      case FrameType.Signal:
      case FrameType.Resize:
      case FrameType.Close:
        if (type === FrameType.Close && s) s.ended = true;
        this.emit(`ctl:${id}`, type, payload);
        this.emit(`credit:${id}`);
        return;
      case FrameType.Poweroff:
        this.emit("poweroff");
        return;
    }
    const rec = decodeRecord(payload);
    this.requests.push({ type, record: rec });
    if (type === FrameType.Configure) this.token = rec.u32(ConfigureTag.Token) ?? this.token;
    const stream: GuestStream = {
      id,
      kind: type,
      sendWindow: GUEST_WINDOW,
      stdinOutstanding: 0,
      stdin: [],
      eof: false,
      argv: type === FrameType.Exec ? rec.strings(1) : [],
      // Requests whose tag 1 is no single path (MOUNT and DISK_MOUNT repeat it).
      path: [
        FrameType.Exec,
        FrameType.PortForward,
        FrameType.Attribute,
        FrameType.Mount,
        FrameType.DiskMount,
      ].includes(type as never)
        ? ""
        : (rec.string(1) ?? ""),
      ended: false,
    };
    this.streams.set(id, stream);
    this.serve(stream, type === FrameType.Exec ? rec.string(4) : undefined).catch((err: unknown) =>
      this.violations.push(`guest program threw: ${String(err)}`),
    );
  }

  private async serve(s: GuestStream, user: string | undefined): Promise<void> {
    const id = s.id;
    switch (s.kind) {
      case FrameType.Ping:
      case FrameType.Configure:
      case FrameType.NetworkSetup:
      case FrameType.Mount:
      case FrameType.DiskMount:
        return this.ok(id);
      case FrameType.Attribute:
        return this.ok(id, this.attributeReply(this.requests.at(-1)!.record));
      case FrameType.Usage:
        return this.ok(id, [field.u64(1, 8192)]);
      case FrameType.FileStat: {
        const data = this.files.get(s.path);
        if (data === undefined) return this.error(id, "No such file or directory", 2);
        return this.ok(id, [
          field.string(1, s.path.split("/").pop() ?? ""),
          field.u64(2, data.length),
          field.u32(3, 0o100644),
          field.u32(4, 0),
          field.u32(5, 0),
          field.u64(6, 1_700_000_000_000),
        ]);
      }
      case FrameType.FileList: {
        const prefix = s.path.endsWith("/") ? s.path : `${s.path}/`;
        const names = [...this.files.keys()]
          .filter((p) => p.startsWith(prefix))
          .map((p) => p.slice(prefix.length))
          .sort();
        const entries = names.map((name) =>
          field.record(1, [
            field.string(1, name),
            field.u64(2, this.files.get(prefix + name)?.length ?? 0),
            field.u32(3, 0o100644),
            field.u32(4, 0),
            field.u32(5, 0),
            field.u64(6, 0),
          ]),
        );
        return this.ok(id, entries);
      }
      case FrameType.FileWrite: {
        if (s.path.startsWith("/ro/")) return this.error(id, "Read-only file system", 30);
        this.files.set(s.path, await this.readStdin(id));
        return this.ok(id);
      }
      case FrameType.FileRead: {
        const data = this.files.get(s.path);
        if (data === undefined) return this.error(id, "No such file or directory", 2);
        await this.write(id, FrameType.Stdout, data);
        return this.ok(id, [field.u64(1, data.length)]);
      }
      case FrameType.Exec: {
        if (user === "nobody") return this.error(id, "unknown user: nobody");
        if (s.argv[0] === "raw") return; // the test script speaks for the guest
        this.send(FrameType.Started, id, encodeRecord([field.u32(1, 1000 + id)]));
        const program = this.programs[s.argv[0] ?? ""];
        if (program === undefined) {
          await this.write(
            id,
            FrameType.Stderr,
            Buffer.from(`wheellock: ${s.argv[0]}: not found\n`),
          );
          return this.exit(id, 127);
        }
        return program(this, s);
      }
      case FrameType.PortForward:
        return; // the test script speaks for the guest
      default:
        return this.error(id, "unsupported");
    }
  }
}
