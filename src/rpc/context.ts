/**
 * What the method handlers see: the sandbox an rpc session drives (a `SandboxApi` plus the few
 * facts the reference's methods need that the API does not carry), the session's state, and
 * one call's context (its id, its cancellation, its notifications).
 */
import type { Writable } from "node:stream";
import type { SandboxOptions } from "../config/index.js";
import type { SandboxApi } from "../sandbox/index.js";
import type { CreatePlan } from "./create-payload.js";
import type { RequestId } from "./wire.js";

/** The parts of the image config that decide what `launch_entrypoint` runs and where. */
export interface ImageDefaults {
  entrypoint?: readonly string[] | undefined;
  cmd?: readonly string[] | undefined;
  workdir?: string | undefined;
}

/** One sandbox as the session holds it. */
export interface RpcSandbox {
  readonly id: string;
  readonly api: SandboxApi;
  /** The booted image's config (undefined for wheellock's default image, which has none). */
  readonly image: ImageDefaults | undefined;
  /** Host file with the serial console and the entrypoint's output (kept after close, until `rm`). */
  readonly logPath: string;
  /** Stops the VM with a clean guest poweroff. */
  close(): Promise<void>;
  /** Stops the VM at once (no guest poweroff): stdin EOF, or `close` with no time given. */
  kill(): Promise<void>;
  /** Stops the VM at once and removes its record and log: a `create` that failed after the boot. */
  discard(): Promise<void>;
}

/** Boots a sandbox for `create`. */
export type SandboxFactory = (options: SandboxOptions) => Promise<RpcSandbox>;

/** The VM of the session and what hangs off it. */
export interface ActiveVm {
  readonly sandbox: RpcSandbox;
  readonly plan: CreatePlan;
  /** Where a command runs when `working_dir` is not given (undefined: the sandbox decides). */
  readonly defaultCwd: string | undefined;
  /** Releases port forwards, the entrypoint and the event forwarder (not the VM). */
  readonly detach: Array<() => void>;
  /** The current `port_forward` set, replaced by the next call. */
  portForwards: { close(): void } | undefined;
}

/** Where `exec_pipe.*` / `exec_tty.*` input messages go, by request id. */
export interface InputTarget {
  readonly kind: "pipe" | "tty";
  write(data: Buffer): void;
  end(): void;
  resize(rows: number, cols: number): void;
}

export interface SessionState {
  /** The VM, or a -32000 `VM not created` error. */
  currentVm(): ActiveVm;
  /** The VM if there is one. */
  peekVm(): ActiveVm | undefined;
  /** The log of the last VM created, even after `close`. */
  readonly lastLogPath: string | undefined;
  /** Routes input messages for `id` to `target` until the returned function is called. */
  registerInput(id: number, target: InputTarget): () => void;
  /** Stops reading the client until `stream` drains (its input piles up in host memory). */
  holdInputUntilDrained(stream: Writable): void;
  readonly factory: SandboxFactory;
  /** Makes `vm` the session's VM (undefined: none), after the previous one was released. */
  setVm(vm: ActiveVm | undefined): void;
  /** Cancels every request in flight except `keep` (they answer -32003). */
  cancelInFlight(keep: AbortSignal): void;
  /** The VM's event stream as `event` notifications (file events only when `fileEvents`). */
  forwardEvents(vm: ActiveVm): () => void;
}

export interface CallContext {
  readonly id: RequestId;
  /** Aborted by `cancel`, `close`, a second `create`, or the end of the session. */
  readonly signal: AbortSignal;
  readonly session: SessionState;
  /** A notification tied to this request (`params.id`). */
  notify(method: string, extra?: Record<string, unknown>): void;
  /** True while the client is behind on reading its output. */
  backedUp(): boolean;
  /** Resolves when the client reads its output again (back-pressure for streamed output). */
  writable(): Promise<void>;
}

/** A method handler: resolves with the `result`, or rejects with an RpcError. */
export type MethodHandler = (params: unknown, ctx: CallContext) => Promise<object>;
