/**
 * OpenTelemetry spans for one sandbox, through `@opentelemetry/api` only: with no SDK
 * registered by the application every span is a no-op and this costs next to nothing. The
 * tree: `wheellock.sandbox` (create or restore, under the caller's active context);
 * `wheellock.exec` per command (under the context active where it was started);
 * `wheellock.files` per exec (its file operations on mounts, batched: counts and bytes);
 * `wheellock.request` per intercepted request, under the exec that made it (under the
 * sandbox span when no exec did).
 */
import {
  context,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from "@opentelemetry/api";
import type { GuestOrigin, HeaderList, NetworkEventInfo } from "../net/index.js";

const TRACER_NAME = "wheellock";

interface FileBatch {
  firstMs: number;
  lastMs: number;
  ops: Record<string, number>;
  bytesRead: number;
  bytesWritten: number;
  errors: number;
}

interface ExecTrace {
  ctx: Context;
  files: FileBatch | undefined;
  /**
   * The exec has ended: its batch went out with it. A file event can still come after (the
   * guest kernel sends a handle's release after the process exited, on another port than the
   * exit), so what comes later goes out as a batch of its own, a moment later.
   */
  ended?: boolean;
  lateFlush?: NodeJS.Timeout;
}

/** How long file events after their exec's end are gathered into one batch. */
const LATE_FILES_MS = 50;

/** What a file event tells the tracer. */
export interface TracedFileOp {
  op: string;
  size?: number;
  errno: number;
}

/** Most exec contexts kept for requests and file operations that come after the exec. */
const MAX_EXECS = 256;

function traceparent(span: Span): HeaderList {
  const sc = span.spanContext();
  const flags = sc.traceFlags.toString(16).padStart(2, "0");
  const headers: HeaderList = [["traceparent", `00-${sc.traceId}-${sc.spanId}-${flags}`]];
  const state = sc.traceState?.serialize();
  if (state) headers.push(["tracestate", state]);
  return headers;
}

export class SandboxTracer {
  private readonly tracer = trace.getTracer(TRACER_NAME);
  private sandboxCtx: Context = context.active();
  private recording = false;
  private readonly execs = new Map<number, ExecTrace>();
  private readonly noExecFiles: ExecTrace = { ctx: context.active(), files: undefined };
  /** Request spans started early to be propagated upstream, by request id. */
  private readonly early = new Map<number, Span>();

  constructor(
    private readonly sandboxId: string,
    /** Send `traceparent` with each request upstream. */
    readonly propagate: boolean,
  ) {}

  /** The create/restore span, under the caller's active context; end it when ready. */
  startSandbox(): { end(restored: boolean, error?: Error): void } {
    const parent = context.active();
    const span = this.tracer.startSpan(
      "wheellock.sandbox",
      { attributes: { "wheellock.sandbox.id": this.sandboxId } },
      parent,
    );
    this.recording = span.isRecording();
    this.sandboxCtx = trace.setSpan(parent, span);
    this.noExecFiles.ctx = this.sandboxCtx;
    return {
      end: (restored, error) => {
        span.updateName(restored ? "wheellock.sandbox.restore" : "wheellock.sandbox.create");
        span.setAttribute("wheellock.restored", restored);
        if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
        span.end();
      },
    };
  }

  /** An exec's span, under the context active now; `end` with its exit code or error. */
  startExec(
    execId: number,
    argv: readonly string[],
  ): { end(exitCode: number | undefined, error?: Error): void } {
    if (!this.recording) return { end: () => undefined };
    const parent = context.active();
    const span = this.tracer.startSpan(
      "wheellock.exec",
      {
        attributes: {
          "wheellock.sandbox.id": this.sandboxId,
          "wheellock.exec.id": execId,
          "process.command_args": [...argv],
        },
      },
      parent,
    );
    const entry: ExecTrace = { ctx: trace.setSpan(parent, span), files: undefined };
    this.execs.set(execId, entry);
    if (this.execs.size > MAX_EXECS) this.execs.delete(this.execs.keys().next().value!);
    return {
      end: (exitCode, error) => {
        if (exitCode !== undefined) span.setAttribute("process.exit.code", exitCode);
        if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
        entry.ended = true;
        this.flushFiles(entry);
        span.end();
      },
    };
  }

  /** One file operation on a mount by `execId` (null: no exec), batched into its exec. */
  fileOp(execId: number | null | undefined, file: TracedFileOp): void {
    if (!this.recording) return;
    const entry = (execId != null ? this.execs.get(execId) : undefined) ?? this.noExecFiles;
    const now = Date.now();
    const b = (entry.files ??= {
      firstMs: now,
      lastMs: now,
      ops: {},
      bytesRead: 0,
      bytesWritten: 0,
      errors: 0,
    });
    b.lastMs = now;
    b.ops[file.op] = (b.ops[file.op] ?? 0) + 1;
    if (file.op === "read") b.bytesRead += file.size ?? 0;
    if (file.op === "write") b.bytesWritten += file.size ?? 0;
    if (file.errno !== 0) b.errors++;
    if (entry.ended && entry.lateFlush === undefined) {
      entry.lateFlush = setTimeout(() => {
        entry.lateFlush = undefined;
        this.flushFiles(entry);
      }, LATE_FILES_MS);
      entry.lateFlush.unref();
    }
  }

  /**
   * Headers for a request going upstream: its span starts now so upstreams can join it. The
   * guest's own `traceparent` and `tracestate` never pass (an empty value removes them): the
   * trace context upstream is ours, or none when no tracer records (no SDK registered).
   * Without propagation nothing is touched: the guest's headers pass as it sent them.
   */
  upstreamHeaders(requestId: number, origin: GuestOrigin | undefined): HeaderList {
    if (!this.propagate) return [];
    const strip: HeaderList = [
      ["traceparent", ""],
      ["tracestate", ""],
    ];
    const span = this.tracer.startSpan(
      "wheellock.request",
      { kind: SpanKind.CLIENT },
      this.parentOf(origin),
    );
    this.early.set(requestId, span);
    return span.spanContext().traceId === "00000000000000000000000000000000"
      ? strip
      : [...strip, ...traceparent(span)];
  }

  /** The span of one finished request (started early when it was propagated). */
  request(e: NetworkEventInfo): void {
    const early = this.early.get(e.requestId);
    this.early.delete(e.requestId);
    if (!this.recording && !early) return;
    const attributes: Attributes = {
      "wheellock.request.id": e.requestId,
      "url.full": e.url,
      "server.address": e.host,
      "server.port": e.port,
      "wheellock.bytes_in": e.bytesIn,
      "wheellock.bytes_out": e.bytesOut,
      "wheellock.verdict": e.blocked
        ? "blocked"
        : e.audit
          ? "audited"
          : e.approval
            ? "approved"
            : "allowed",
      ...(e.method ? { "http.request.method": e.method } : {}),
      ...(e.status !== undefined ? { "http.response.status_code": e.status } : {}),
      ...(e.code !== undefined ? { "wheellock.block_code": e.code } : {}),
      ...(e.attribution?.execId != null ? { "wheellock.exec.id": e.attribution.execId } : {}),
      ...(e.attribution?.pid !== undefined ? { "process.pid": e.attribution.pid } : {}),
    };
    const end = Date.now();
    const span =
      early ??
      this.tracer.startSpan(
        "wheellock.request",
        { kind: SpanKind.CLIENT, startTime: end - e.durationMs },
        this.parentOf(e.attribution),
      );
    span.setAttributes(attributes);
    if (e.blocked) span.setStatus({ code: SpanStatusCode.ERROR, message: e.reason ?? "blocked" });
    span.end(end);
  }

  /** Ends what is still open (file batches of execs that outlive their commands). */
  close(): void {
    for (const entry of this.execs.values()) {
      clearTimeout(entry.lateFlush);
      this.flushFiles(entry);
    }
    this.flushFiles(this.noExecFiles);
    for (const span of this.early.values()) span.end();
    this.early.clear();
  }

  private parentOf(origin: GuestOrigin | undefined): Context {
    const execId = origin?.execId;
    return (execId != null ? this.execs.get(execId)?.ctx : undefined) ?? this.sandboxCtx;
  }

  private flushFiles(entry: ExecTrace): void {
    const b = entry.files;
    if (!b) return;
    entry.files = undefined;
    const attributes: Attributes = {
      "wheellock.files.bytes_read": b.bytesRead,
      "wheellock.files.bytes_written": b.bytesWritten,
      "wheellock.files.errors": b.errors,
    };
    for (const [op, n] of Object.entries(b.ops)) attributes[`wheellock.files.ops.${op}`] = n;
    this.tracer
      .startSpan("wheellock.files", { startTime: b.firstMs, attributes }, entry.ctx)
      .end(b.lastMs);
  }
}
