/**
 * The sandbox's events as the reference's `event` notifications (`api.Event`, reference/
 * matchlock-rpc.md §6): network events (timestamps in seconds, as the reference sends them)
 * and, when the create payload asked for them, file events (timestamps in milliseconds). The
 * SDKs run their VFS after-hooks on the file events. Exec and lifecycle events have no
 * counterpart there and are not sent. A client that does not read its output makes the
 * forwarder wait; the sandbox's event hub then drops the oldest events past its backlog.
 */
import type { ExecAttribution } from "../observe/index.js";
import type { SandboxApi, SandboxEvent } from "../sandbox/index.js";
import type { FileEventInfo } from "../vfs/index.js";
import { goFileMode } from "./file-mode.js";
import type { RpcOutput } from "./output.js";
import { notification } from "./wire.js";

/** wheellock op names the reference spells differently; others keep wheellock's name. */
const REFERENCE_OP: Readonly<Record<string, string>> = { unlink: "remove", rmdir: "remove" };

/** The reference's block reasons for the refusals it knows. */
const BLOCK_REASONS: Readonly<Record<string, string>> = {
  host_not_allowed: "host not in allowlist",
  secret_leak: "secret placeholder sent to unauthorized host",
  secret_requires_tls: "secret placeholder sent to unauthorized host",
  blocked_by_rule: "request blocked by policy",
};

/**
 * wheellock's attribution (docs/OBSERVE.md) in the reference's spelling; an extra key its
 * SDKs ignore. Absent when the exec could not be told.
 */
function attributionField(a: ExecAttribution | undefined): object {
  if (a === undefined) return {};
  return {
    attribution: {
      exec_id: a.execId,
      ...(a.pid !== undefined ? { pid: a.pid } : {}),
      ...(a.command !== undefined ? { command: a.command } : {}),
    },
  };
}

function fileEvent(timestamp: Date, f: FileEventInfo & { attribution?: ExecAttribution }): object {
  const mode = f.mode ? goFileMode(f.mode) : 0;
  return {
    type: "file",
    timestamp: timestamp.getTime(),
    file: {
      op: REFERENCE_OP[f.op] ?? f.op,
      path: f.path,
      size: f.op === "read" || f.op === "write" ? (f.size ?? 0) : 0,
      ...(mode ? { mode } : {}),
      ...(f.uid ? { uid: f.uid } : {}),
      ...(f.gid ? { gid: f.gid } : {}),
      ...attributionField(f.attribution),
    },
  };
}

/** The reference's `event` params for a sandbox event, or undefined when it sends none. */
export function referenceEvent(event: SandboxEvent, fileEvents: boolean): object | undefined {
  if (event.type === "file") {
    // The reference reports no after-event for an operation a rule refused.
    return fileEvents && !event.file.blocked ? fileEvent(event.timestamp, event.file) : undefined;
  }
  if (event.type !== "network") return undefined;
  const n = event.network;
  const reason = n.blocked
    ? ((n.code && BLOCK_REASONS[n.code]) ?? n.reason ?? "blocked")
    : undefined;
  return {
    type: "network",
    timestamp: Math.floor(event.timestamp.getTime() / 1000),
    network: {
      method: n.method,
      url: n.url,
      host: n.host,
      status_code: n.status ?? 0,
      request_bytes: n.bytesOut,
      response_bytes: n.bytesIn,
      duration_ms: n.durationMs,
      blocked: n.blocked,
      ...(reason !== undefined ? { block_reason: reason } : {}),
      ...attributionField(n.attribution),
    },
  };
}

/** Sends the sandbox's events until the returned function is called or the sandbox ends. */
export function forwardEvents(api: SandboxApi, fileEvents: boolean, out: RpcOutput): () => void {
  const events = api.events();
  let stopped = false;
  void (async () => {
    for await (const event of events) {
      if (stopped || out.isBroken) break;
      const params = referenceEvent(event, fileEvents);
      if (params === undefined) continue;
      out.send(notification("event", params));
      if (out.backedUp) await out.writable();
    }
  })().catch(() => undefined);
  return () => {
    stopped = true;
    void events.return?.();
  };
}
