/**
 * The sandbox's event stream: exec, lifecycle, network events (one per HTTP request or raw
 * TCP connection in intercept mode) and file events (operations on mounts).
 * Each `events()` iterator gets every event emitted after it was created. A slow consumer's
 * backlog is bounded: past `maxBacklog` the oldest events are dropped and counted, so an
 * iterator nobody reads cannot grow host memory without bound.
 */
import type { NetworkEventInfo as ProxyEventInfo } from "../net/index.js";
import type { ApprovalEventInfo, ExecAttribution, SandboxUsage } from "../observe/index.js";
import type { FileEventInfo as VfsFileEventInfo } from "../vfs/index.js";
import type { PolicyErrorCode } from "./network-event-error.js";

/** One HTTP request or raw connection as the proxy saw it, with the policy error it met. */
export interface NetworkEventInfo extends ProxyEventInfo {
  /** Set on requests refused by policy: the reference API's error for it. */
  errorCode?: PolicyErrorCode;
}

/** One operation on a mount, with the exec that made it (absent: could not be told). */
export interface FileEventInfo extends VfsFileEventInfo {
  readonly attribution?: ExecAttribution;
}

export interface ExecEventInfo {
  /** The id network and file events name in `attribution.execId`. */
  execId: number;
  /** The guest pid of the command's first process. */
  pid?: number;
  command: string[];
  exitCode: number;
  durationMs: number;
}

export type SandboxEvent =
  | { type: "exec"; timestamp: Date; exec: ExecEventInfo }
  /** One HTTP request or raw TCP connection in intercept mode. */
  | { type: "network"; timestamp: Date; network: NetworkEventInfo }
  /** One operation on a mount (reads and writes: totals per open handle, at close). */
  | { type: "file"; timestamp: Date; file: FileEventInfo }
  /** A request held for approval, and how it was decided. */
  | { type: "approval"; timestamp: Date; approval: ApprovalEventInfo }
  /** What the sandbox used: once, just before it stops. */
  | { type: "usage"; timestamp: Date; usage: SandboxUsage }
  | {
      type: "lifecycle";
      timestamp: Date;
      /** `code`: the error that stopped it (ErrTimeout, ErrBudgetExceeded, ...), if any. */
      lifecycle: { state: "running" | "stopped"; reason?: string; code?: string };
    };

interface Subscriber {
  queue: SandboxEvent[];
  wake: (() => void) | undefined;
  dropped: number;
}

export class EventHub {
  private readonly subscribers = new Set<Subscriber>();
  private ended = false;

  constructor(private readonly maxBacklog = 10_000) {}

  emit(event: SandboxEvent): void {
    for (const sub of this.subscribers) {
      if (sub.queue.length >= this.maxBacklog) {
        sub.queue.shift();
        sub.dropped++;
      }
      sub.queue.push(event);
      sub.wake?.();
    }
  }

  /** True while anyone iterates the events (an emitted event has a reader). */
  get subscribed(): boolean {
    return this.subscribers.size > 0;
  }

  /** Ends every iterator once its queued events are consumed. */
  end(): void {
    this.ended = true;
    for (const sub of this.subscribers) sub.wake?.();
  }

  subscribe(): AsyncIterableIterator<SandboxEvent> {
    const sub: Subscriber = { queue: [], wake: undefined, dropped: 0 };
    this.subscribers.add(sub);
    const subscribers = this.subscribers;
    const isEnded = () => this.ended;
    const iterator: AsyncIterableIterator<SandboxEvent> = {
      async next(): Promise<IteratorResult<SandboxEvent>> {
        for (;;) {
          const event = sub.queue.shift();
          if (event !== undefined) return { value: event, done: false };
          if (isEnded() || !subscribers.has(sub)) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (sub.wake = resolve));
          sub.wake = undefined;
        }
      },
      async return(): Promise<IteratorResult<SandboxEvent>> {
        subscribers.delete(sub);
        sub.wake?.();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }
}
