/**
 * The server side of the operation protocol: one connection (any byte stream) carries
 * operations on a `SandboxApi`, one at a time, each through its own view of the connection
 * (OperationStream). A supervisor serves its control socket with it; `serve` serves
 * WebSocket streams with it. Nothing here knows which kind of sandbox is behind the API.
 */
import type { Duplex } from "node:stream";
import { ErrInvalidConfig } from "../errors.js";
import { PassThrough } from "node:stream";
import { OperationStream } from "./operation-stream.js";
import type { ExecProcess, SandboxApi } from "../sandbox/index.js";
import { serveExec } from "./serve-exec.js";
import { serveEvents, servePort, serveReadFile } from "./serve-streams.js";
import {
  encodeJson,
  isClientOperationMessage,
  Msg,
  parseJson,
  readMessages,
  wireError,
  type Message,
  type OperationRequest,
} from "./protocol.js";

export interface ServeHooks {
  /** `stop` asked for; resolves once the sandbox is stopped. Default: `api.close()`. */
  stop?: () => Promise<void>;
  /** Each command started through this server, until it ends (for a graceful shutdown). */
  trackExec?: (proc: ExecProcess) => () => void;
}

type OnMessage = (msg: Message) => void;
const ignore: OnMessage = () => undefined;

/**
 * Serves the connection's operations: each REQUEST starts one; after its terminal message
 * (and OP_END), what the client still sends for it (stdin, a signal, an older client's own
 * OP_END) is dropped, and the next REQUEST starts the next. Anything else is a protocol
 * error: the connection closes.
 */
export function serveConnection(api: SandboxApi, conn: Duplex, hooks: ServeHooks = {}): void {
  conn.on("error", () => undefined);
  let op: OperationStream | undefined;
  let onMessage: OnMessage = ignore;
  readMessages(conn, (msg) => {
    if (op && !op.destroyed) {
      if (msg.type === Msg.OpEnd || msg.type === Msg.Request) return conn.destroy();
      return onMessage(msg);
    }
    // Between operations: the client's late messages for the last one are dropped.
    if (op && isClientOperationMessage(msg.type)) return;
    if (msg.type !== Msg.Request) return conn.destroy();
    const current = new OperationStream(conn);
    op = current;
    try {
      onMessage = dispatch(api, current, parseJson<OperationRequest>(msg.payload), hooks);
    } catch (err) {
      current.end(encodeJson(Msg.Error, wireError(err)));
      onMessage = ignore;
    }
  });
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== "string") throw new TypeError(`operation field ${field} must be a string`);
  return value;
}

function dispatch(
  api: SandboxApi,
  stream: OperationStream,
  req: OperationRequest,
  hooks: ServeHooks,
): OnMessage {
  const reply = (work: Promise<unknown>): OnMessage => {
    work.then(
      (value) => stream.end(encodeJson(Msg.Result, value ?? {})),
      (err: unknown) => stream.end(encodeJson(Msg.Error, wireError(err))),
    );
    return ignore;
  };
  if (typeof req !== "object" || req === null) throw new TypeError("operation must be an object");
  switch (req.op) {
    case "exec":
      // An array only, as REST's `command`: a string would otherwise run (as `sh -c`).
      if (
        !Array.isArray(req.argv) ||
        req.argv.length === 0 ||
        !req.argv.every((a: unknown) => typeof a === "string")
      )
        throw new ErrInvalidConfig("exec argv must be a non-empty array of strings");
      return serveExec(api, stream, req, hooks.trackExec ?? (() => () => undefined));
    case "read-file":
      serveReadFile(api, stream, requireString(req.path, "path"));
      return ignore;
    case "write-file":
      return serveWriteFile(api, stream, req, reply);
    case "list-files":
      return reply(api.listFiles(requireString(req.path, "path")));
    case "stat":
      return reply(
        api.stat(
          requireString(req.path, "path"),
          req.followSymlinks !== undefined ? { followSymlinks: req.followSymlinks } : {},
        ),
      );
    case "mkdir":
      return reply(
        api.mkdir(
          requireString(req.path, "path"),
          req.mode !== undefined ? { mode: req.mode } : {},
        ),
      );
    case "remove":
      return reply(
        api.remove(requireString(req.path, "path"), { recursive: req.recursive === true }),
      );
    case "port-forward":
      return servePort(api, stream, req.port);
    case "allow-list":
      return reply(
        (req.action === "add"
          ? api.allowHosts(...req.hosts)
          : api.disallowHosts(...req.hosts)
        ).then((changed) => ({ changed })),
      );
    case "allowed-hosts":
      return reply(api.allowedHosts());
    case "pending-requests":
      return reply(api.pendingRequests().then((requests) => ({ requests })));
    case "decide-request":
      if (!Number.isSafeInteger(req.requestId)) throw new TypeError("requestId must be an integer");
      return reply(api.decideRequest(req.requestId, req.decision));
    case "usage":
      return reply(api.usage());
    case "configure":
      return reply(api.configure(req.options));
    case "checkpoint":
      return reply(
        api.checkpoint(req.name === undefined ? undefined : requireString(req.name, "name")),
      );
    case "events":
      serveEvents(api, stream);
      return ignore;
    case "stop":
      return reply((hooks.stop ?? (() => api.close()))());
    default:
      throw new TypeError(`unknown operation: ${String((req as { op: unknown }).op)}`);
  }
}

function serveWriteFile(
  api: SandboxApi,
  stream: OperationStream,
  req: Extract<OperationRequest, { op: "write-file" }>,
  reply: (work: Promise<unknown>) => OnMessage,
): OnMessage {
  const body = new PassThrough();
  const { mode, uid, gid } = req;
  reply(
    api.writeFile(requireString(req.path, "path"), body, {
      ...(mode !== undefined ? { mode } : {}),
      ...(uid !== undefined ? { uid } : {}),
      ...(gid !== undefined ? { gid } : {}),
    }),
  );
  stream.once("close", () => body.destroy());
  return (msg) => {
    if (msg.type !== Msg.Stdin) return;
    if (msg.payload.length === 0) body.end();
    else if (!body.write(msg.payload)) {
      stream.pause();
      body.once("drain", () => stream.resume());
    }
  };
}
