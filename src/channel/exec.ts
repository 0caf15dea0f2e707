/** EXEC streams: STARTED, STDOUT/STDERR, EXIT or ERROR from the guest; STDIN, EOF, SIGNAL, RESIZE to it. */
import type { Readable, Writable } from "node:stream";
import { ErrProtocol, WheellockError } from "../errors.js";
import { FrameType, StartedTag, frameTypeName } from "./contract.js";
import { RecvWindow } from "./credit.js";
import { Deferred } from "./deferred.js";
import type { Frame } from "./frame.js";
import { CreditedReadable } from "./inbound.js";
import { CreditedWritable, OutboundSender } from "./outbound.js";
import { decodeRecord } from "./record.js";
import { GuestExecError } from "./guest-error.js";
import { decodeGuestError, type StreamContext, type StreamHandler } from "./streams.js";

export interface ExecRequest {
  argv: string[];
  /** The complete environment, `KEY=VALUE` each. */
  env: string[];
  cwd?: string;
  /** `uid`, `uid:gid`, `name` or `name:group`. */
  user?: string;
  tty?: { rows: number; cols: number };
}

export interface ExecExit {
  /** -1 when killed by a signal. */
  readonly exitCode: number;
  /** 0 when the process exited on its own. */
  readonly signal: number;
}

export interface ExecStream {
  /** The guest pid; rejects when the guest refuses to start it (e.g. unknown user). */
  readonly started: Promise<number>;
  /**
   * The exec's id (its stream on the channel: the id attribution names), once it started;
   * rejects like `started`.
   */
  readonly execId: Promise<number>;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** end() sends EOF. */
  readonly stdin: Writable;
  readonly exit: Promise<ExecExit>;
  signal(signo: number): void;
  resize(rows: number, cols: number): void;
  /** Sends CLOSE: the guest kills the process group; `started`/`exit` reject if still pending. */
  close(): void;
}

const noop = (): void => undefined;

export class ExecHandle implements ExecStream, StreamHandler {
  readonly recv = new RecvWindow();
  readonly sender: OutboundSender;
  readonly stdout: CreditedReadable;
  readonly stderr: CreditedReadable;
  readonly stdin: CreditedWritable;
  private readonly startedD = new Deferred<number>();
  private readonly exitD = new Deferred<ExecExit>();
  private live = true;
  readonly execId: Promise<number>;

  constructor(
    readonly id: number,
    private readonly ctx: StreamContext,
  ) {
    this.execId = this.startedD.promise.then(() => id);
    this.execId.catch(noop);
    const hooks = { onConsumed: (bytes: number) => this.live && this.ctx.consumed(this.id, bytes) };
    this.stdout = new CreditedReadable(hooks);
    this.stderr = new CreditedReadable(hooks);
    this.sender = new OutboundSender(ctx, id);
    this.stdin = new CreditedWritable(this.sender);
    // `exit` already reports failures; unobserved stream errors must not crash the host.
    this.stdout.on("error", noop);
    this.stderr.on("error", noop);
    this.stdin.on("error", noop);
  }

  get started(): Promise<number> {
    return this.startedD.promise;
  }

  get exit(): Promise<ExecExit> {
    return this.exitD.promise;
  }

  signal(signo: number): void {
    if (!this.live) return;
    this.ctx.send(FrameType.Signal, this.id, u32s(signo));
  }

  resize(rows: number, cols: number): void {
    if (!this.live) return;
    this.ctx.send(FrameType.Resize, this.id, u32s(rows, cols));
  }

  close(): void {
    if (!this.live) return;
    this.live = false;
    this.ctx.abandon(this.id);
    const err = new WheellockError("ErrClosed", "exec stream closed by the host");
    this.startedD.reject(err);
    this.exitD.reject(err);
    this.stdout.finish();
    this.stderr.finish();
    this.sender.discard();
  }

  onFrame(frame: Frame): boolean {
    switch (frame.type) {
      case FrameType.Started: {
        if (this.startedD.isSettled) throw new ErrProtocol(`STARTED twice on stream ${this.id}`);
        const rec = decodeRecord(frame.payload, "STARTED");
        this.startedD.resolve(rec.require(rec.u32(StartedTag.Pid), "PID"));
        return false;
      }
      case FrameType.Stdout:
      case FrameType.Stderr:
        this.requireStarted(frame.type);
        (frame.type === FrameType.Stdout ? this.stdout : this.stderr).deliver(frame.payload);
        return false;
      case FrameType.Exit: {
        this.requireStarted(frame.type);
        if (frame.payload.length !== 8)
          throw new ErrProtocol(`EXIT payload of ${frame.payload.length} bytes, expected 8`);
        this.live = false;
        this.stdout.finish();
        this.stderr.finish();
        this.sender.discard();
        this.exitD.resolve({
          exitCode: frame.payload.readInt32BE(0),
          signal: frame.payload.readInt32BE(4),
        });
        return true;
      }
      case FrameType.Error: {
        const info = decodeGuestError(frame.payload);
        this.fail(new GuestExecError(info.message, info.errno));
        return true;
      }
      default:
        throw new ErrProtocol(`unexpected ${frameTypeName(frame.type)} on exec stream ${this.id}`);
    }
  }

  fail(err: Error): void {
    this.live = false;
    this.startedD.reject(err);
    this.exitD.reject(err);
    this.stdout.fail(err);
    this.stderr.fail(err);
    this.sender.fail(err);
    if (!this.stdin.destroyed) this.stdin.destroy(err);
  }

  private requireStarted(type: number): void {
    if (!this.startedD.isSettled)
      throw new ErrProtocol(`${frameTypeName(type)} before STARTED on stream ${this.id}`);
  }
}

function u32s(...values: number[]): Buffer {
  const out = Buffer.allocUnsafe(values.length * 4);
  values.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
      throw new RangeError(`u32 out of range: ${v}`);
    out.writeUInt32BE(v, i * 4);
  });
  return out;
}
