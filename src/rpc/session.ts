/**
 * One `wheellock rpc` session: reads requests from the client, runs them, writes replies and
 * notifications (reference/matchlock-rpc.md §3). Requests run concurrently and may answer out
 * of order; `cancel` and the input messages are handled at once, in arrival order; `create`
 * and `close` are barriers (later requests wait for them) that cancel what is in flight
 * instead of waiting for it — so an open `log_stream` or an exec waiting on stdin never hangs
 * them, unlike the reference. Host memory stays bounded: lines, requests in flight, queued
 * output and queued stdin all have limits, and a client that is over one gets an error or is
 * simply not read from until it catches up. The session ends on EOF, on a broken output or
 * by `end()`: everything in flight is cancelled and the VM is stopped at once.
 */
import type { Readable, Writable } from "node:stream";
import type {
  ActiveVm,
  CallContext,
  InputTarget,
  MethodHandler,
  SandboxFactory,
  SessionState,
} from "./context.js";
import { Admission } from "./admission.js";
import { forwardEvents } from "./events.js";
import { LineReader } from "./line-reader.js";
import { METHODS, type MethodKind } from "./methods.js";
import { RpcOutput } from "./output.js";
import { decodeBase64, numberField, objectParams, U16_MAX } from "./params.js";
import { salvageId } from "./salvage-id.js";
import {
  errorMessage,
  parseRequest,
  requestNotification,
  resultMessage,
  RpcCode,
  RpcError,
  type RpcRequest,
} from "./wire.js";

/** Longest request line accepted (the reference: 10 MiB, and a longer one ends the session). */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;
/** Requests running at once; more wait for a turn (create and close never wait). */
export const MAX_RUNNING = 1024;
/** Requests waiting for a turn, and the bytes of their lines; past either, -32000. */
export const MAX_QUEUED = 16384;
export const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/** Output queued for a client that is not reading before producers and the reader wait. */
export const OUTPUT_HIGH_WATER_BYTES = 8 * 1024 * 1024;
/** How long the end of a session waits for cancelled requests to answer. */
const SETTLE_MS = 500;

export interface RpcSessionOptions {
  input: Readable;
  output: Writable;
  factory: SandboxFactory;
  maxLineBytes?: number;
  maxRunning?: number;
  maxQueued?: number;
  outputHighWaterBytes?: number;
  /** Called once when the session starts to end (EOF, broken output, `end()`). */
  onEnding?: () => void;
}

function cancelledError(): RpcError {
  return new RpcError(RpcCode.Cancelled, "context canceled");
}

function toRpcError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  return new RpcError(RpcCode.VmFailed, err instanceof Error ? err.message : String(err));
}

export class RpcSession implements SessionState {
  readonly factory: SandboxFactory;
  /** Resolves once the session has ended and its VM is stopped. */
  readonly done: Promise<void>;
  private readonly reader: LineReader;
  private readonly out: RpcOutput;
  private readonly admission: Admission;
  private readonly byId = new Map<number, AbortController>();
  /** Every request not yet answered, with how to answer it -32003 if the session ends first. */
  private readonly all = new Map<AbortController, () => void>();
  /** Requests past their barrier (running against the current VM). */
  private readonly running = new Set<AbortController>();
  private readonly inputs = new Map<number, InputTarget>();
  private barrier: Promise<void> = Promise.resolve();
  private vm: ActiveVm | undefined;
  private lastLog: string | undefined;
  private ending: Promise<void> | undefined;
  private resolveDone: () => void = () => undefined;
  private holdCount = 0;
  private readonly onEnding: () => void;

  constructor(opts: RpcSessionOptions) {
    this.factory = opts.factory;
    this.onEnding = opts.onEnding ?? (() => undefined);
    this.admission = new Admission(
      opts.maxRunning ?? MAX_RUNNING,
      opts.maxQueued ?? MAX_QUEUED,
      MAX_QUEUED_BYTES,
    );
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.out = new RpcOutput(opts.output, opts.outputHighWaterBytes ?? OUTPUT_HIGH_WATER_BYTES);
    this.out.onBroken(() => void this.end());
    this.reader = new LineReader(opts.input, opts.maxLineBytes ?? MAX_LINE_BYTES, {
      line: (bytes) => this.onLine(bytes),
      oversized: (head, tail, size) => this.onOversized(head, tail, size),
      end: () => void this.end(),
    });
  }

  /** True once the session is ending (EOF, broken output, `end()`). */
  get ended(): boolean {
    return this.ending !== undefined;
  }

  get lastLogPath(): string | undefined {
    return this.lastLog;
  }

  currentVm(): ActiveVm {
    if (this.vm === undefined) throw new RpcError(RpcCode.VmFailed, "VM not created");
    return this.vm;
  }

  setVm(vm: ActiveVm | undefined): void {
    this.vm = vm;
    if (vm !== undefined) this.lastLog = vm.sandbox.logPath;
  }

  /** The VM if there is one, without the error. */
  peekVm(): ActiveVm | undefined {
    return this.vm;
  }

  registerInput(id: number, target: InputTarget): () => void {
    this.inputs.set(id, target);
    return () => {
      if (this.inputs.get(id) === target) this.inputs.delete(id);
    };
  }

  holdInputUntilDrained(stream: Writable): void {
    if (!stream.writableNeedDrain) return;
    const reason = `stdin:${++this.holdCount}`;
    this.reader.pause(reason);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      for (const event of ["drain", "close", "finish", "error"]) stream.off(event, release);
      this.reader.resume(reason);
    };
    for (const event of ["drain", "close", "finish", "error"]) stream.once(event, release);
  }

  /** Requests queued behind the caller (a barrier) are not cancelled: they run after it. */
  cancelInFlight(keep: AbortSignal): void {
    for (const c of this.running) if (c.signal !== keep) c.abort(cancelledError());
  }

  forwardEvents(vm: ActiveVm): () => void {
    return forwardEvents(vm.sandbox.api, vm.plan.fileEvents, this.out);
  }

  /** Ends the session as stdin EOF does (signals, a supervisor stop). */
  end(): Promise<void> {
    if (this.ending === undefined) {
      this.onEnding();
      this.ending = this.shutdown();
    }
    return this.ending;
  }

  private async shutdown(): Promise<void> {
    for (const c of this.all.keys()) c.abort(cancelledError());
    const vm = this.vm;
    this.vm = undefined;
    if (vm !== undefined) {
      for (const detach of vm.detach) detach();
      vm.portForwards?.close();
      // The client is gone: no clean poweroff to wait for, the guest's writes are discarded.
      await vm.sandbox.kill().catch(() => undefined);
    }
    const deadline = Date.now() + SETTLE_MS;
    while (this.all.size > 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 10));
    // What did not settle in time (a boot or pull that ignores the cancel, the requests queued
    // behind it) still answers -32003: every request read gets exactly one reply before exit.
    for (const answerCancelled of [...this.all.values()]) answerCancelled();
    await this.out.flush(SETTLE_MS);
    this.resolveDone();
  }

  private onLine(bytes: Buffer): void {
    if (this.ending) return;
    const text = bytes.toString("utf8");
    if (text.trim() === "") return;
    const req = parseRequest(text);
    if (req === undefined) this.out.send(errorMessage(undefined, RpcCode.Parse, "Parse error"));
    else this.dispatch(req, bytes.length);
    if (this.out.backedUp && !this.reader.paused) {
      this.reader.pause("output");
      void this.out.writable().then(() => this.reader.resume("output"));
    }
  }

  private onOversized(head: Buffer, tail: Buffer, sizeBytes: number): void {
    const id = salvageId(head, tail);
    this.out.send(
      errorMessage(
        id,
        RpcCode.InvalidRequest,
        `request line of ${sizeBytes} bytes is longer than the limit of ${MAX_LINE_BYTES} bytes`,
      ),
    );
  }

  private dispatch(req: RpcRequest, lineBytes: number): void {
    const spec = Object.hasOwn(METHODS, req.method) ? METHODS[req.method] : undefined;
    if (spec === undefined) {
      this.out.send(errorMessage(req.id, RpcCode.MethodNotFound, "Method not found"));
      return;
    }
    if (spec.kind === "cancel") this.cancel(req);
    else if (spec.kind === "input") this.input(req);
    else this.start(req, spec.kind, spec.handler, lineBytes);
  }

  private start(
    req: RpcRequest,
    kind: MethodKind,
    handler: MethodHandler,
    lineBytes: number,
  ): void {
    // create and close never wait for a turn: they are how a client gets out of a full house.
    const limited = kind !== "barrier";
    if (limited && !this.admission.hasRoom(lineBytes)) {
      const why = `too many requests in flight (${this.admission.describeLimits()}): wait for replies`;
      this.out.send(errorMessage(req.id, RpcCode.VmFailed, why));
      return;
    }
    const controller = new AbortController();
    const { signal } = controller;
    let answered = false;
    const answer = (message: object): void => {
      if (answered) return;
      answered = true;
      this.all.delete(controller);
      this.out.send(message);
    };
    this.all.set(controller, () => {
      const e = cancelledError();
      answer(errorMessage(req.id, e.code, e.message));
    });
    if (req.id !== undefined) this.byId.set(req.id, controller);
    const ctx: CallContext = {
      id: req.id,
      signal,
      session: this,
      notify: (method, extra) => void this.out.send(requestNotification(method, req.id, extra)),
      backedUp: () => this.out.backedUp,
      writable: () => this.out.writable(),
    };
    const barrier = this.barrier;
    const run = (async () => {
      if (limited && !(await this.admission.acquire(signal, lineBytes))) throw cancelledError();
      try {
        await barrier;
        if (signal.aborted) throw cancelledError();
        this.running.add(controller);
        return await handler(req.params, ctx);
      } finally {
        if (limited) this.admission.release();
      }
    })();
    if (kind === "barrier") this.barrier = run.then(noop, noop);
    run
      .then(
        (result) => answer(resultMessage(req.id, result)),
        (err: unknown) => {
          const e = toRpcError(err);
          answer(errorMessage(req.id, e.code, e.message));
        },
      )
      .finally(() => {
        this.all.delete(controller);
        this.running.delete(controller);
        if (req.id !== undefined && this.byId.get(req.id) === controller) this.byId.delete(req.id);
      });
  }

  /** Handled at once (never queued behind a barrier), so its reply precedes the target's -32003. */
  private cancel(req: RpcRequest): void {
    let target: unknown;
    try {
      target = objectParams(req.params, true).id;
    } catch (err) {
      const e = toRpcError(err);
      this.out.send(errorMessage(req.id, e.code, e.message));
      return;
    }
    if (
      target !== undefined &&
      target !== null &&
      !(Number.isSafeInteger(target) && (target as number) >= 0)
    ) {
      this.out.send(
        errorMessage(
          req.id,
          RpcCode.InvalidParams,
          "id must be a request id (a non-negative integer)",
        ),
      );
      return;
    }
    const controller = typeof target === "number" ? this.byId.get(target) : undefined;
    controller?.abort(cancelledError());
    this.out.send(resultMessage(req.id, { cancelled: controller !== undefined }));
  }

  /** `exec_pipe.*` / `exec_tty.*` input: never answered; anything unroutable is dropped. */
  private input(req: RpcRequest): void {
    const [kind, op] = req.method.split(".") as [string, string];
    let p;
    try {
      p = objectParams(req.params);
    } catch {
      return;
    }
    const target = typeof p.id === "number" ? this.inputs.get(p.id) : undefined;
    if (target === undefined || `exec_${target.kind}` !== kind) return;
    if (op === "stdin") {
      const data = typeof p.data === "string" ? decodeBase64(p.data) : undefined;
      if (data !== undefined && data.length > 0) target.write(data);
    } else if (op === "stdin_eof") {
      target.end();
    } else if (op === "resize") {
      try {
        const rows = numberField(p, "rows", { integer: true, max: U16_MAX });
        const cols = numberField(p, "cols", { integer: true, max: U16_MAX });
        if (rows > 0 && cols > 0) target.resize(rows, cols);
      } catch {
        // a bad size is dropped like any other bad input message
      }
    }
  }
}

function noop(): void {}
