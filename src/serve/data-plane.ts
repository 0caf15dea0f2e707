/**
 * The data plane: `GET /v1/sandboxes/{id}/operation` upgraded to a WebSocket carries one
 * operation of the sandbox protocol (src/remote). The token is checked before the upgrade
 * (401 none, 403 one that does not open this sandbox); the first message is read and checked
 * against what the token may do; then the stream goes to the sandbox's host, which serves it
 * with backpressure end to end. Frames are bounded (`maxPayload`), and so is the number of
 * operations open at once.
 */
import { STATUS_CODES, type IncomingMessage, type Server } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, createWebSocketStream } from "ws";
import { ErrAuth, ErrCapacity, ErrVMNotFound, ErrVMNotRunning } from "../errors.js";
import {
  encodeJson,
  MAX_FRAME_BYTES,
  Msg,
  webSocketDuplex,
  wireError,
  type OperationRequest,
} from "../remote/index.js";
import { parseNodeSandboxId } from "../util/index.js";
import { bearerToken, type NodeCredentials } from "./auth.js";
import { decodePathSegment, errorBody, HttpError, requestUrl, statusFor } from "./http-json.js";
import type { SandboxHost } from "./host.js";
import { nodeOptions } from "./node-options.js";
import { readRequest } from "./operation-request.js";

export interface DataPlaneOptions {
  host: SandboxHost;
  credentials: NodeCredentials;
  nodeId: string;
  /** Operations (WebSockets) open at once, over all sandboxes. */
  maxOperations: number;
  /** Node directories `configure`'s policy script may be in (serve --host-path). */
  hostPaths: readonly string[];
  /** Largest WebSocket frame accepted (a protocol message and its header). */
  maxFrameBytes?: number;
}

const OPERATION_PATH = /^\/v1\/sandboxes\/([^/]{1,100})\/operation$/;

/**
 * Operations a sandbox's own token may not run: they change what the operator decided (its
 * secrets, policy, env), widen where the guest may reach (an allowlist entry, approving a
 * held request), or spend the node's disk on a checkpoint that outlives the sandbox.
 * Narrowing the allowlist and denying a held request (for the sandbox too) are fine.
 */
function operatorOnly(req: OperationRequest): boolean {
  return (
    req.op === "configure" ||
    req.op === "checkpoint" ||
    (req.op === "allow-list" && req.action === "add") ||
    (req.op === "decide-request" && req.decision !== "deny" && req.decision !== "deny-sandbox")
  );
}

/** A refusal on the raw socket, before any WebSocket exists. */
function refuseUpgrade(socket: Socket, err: unknown): void {
  const { status, code, message } = statusFor(err);
  const body = errorBody(code, message);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\n` +
      "Content-Type: application/json\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      (status === 401 ? 'WWW-Authenticate: Bearer realm="wheellock"\r\n' : "") +
      "Connection: close\r\n\r\n" +
      body,
  );
}

export class DataPlane {
  private readonly wss: WebSocketServer;
  private open = 0;

  constructor(private readonly opts: DataPlaneOptions) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxFrameBytes ?? MAX_FRAME_BYTES,
      perMessageDeflate: false,
    });
  }

  /** Operations open now. */
  get openOperations(): number {
    return this.open;
  }

  attach(server: Server): void {
    server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      socket.on("error", () => undefined);
      try {
        const id = this.authorize(req);
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          this.open++;
          ws.once("close", () => this.open--);
          const stream = webSocketDuplex(ws, (s) => createWebSocketStream(s));
          void this.serve(id, stream, bearerToken(req.headers.authorization));
        });
      } catch (err) {
        refuseUpgrade(socket, err);
      }
    });
  }

  /** Resolves once no operation is open, or after `waitMs`. */
  async drained(waitMs: number): Promise<void> {
    const deadline = Date.now() + waitMs;
    while (this.open > 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
  }

  close(): void {
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
  }

  /** The local id the request may open; throws the refusal otherwise. */
  private authorize(req: IncomingMessage): string {
    const path = requestUrl(req).pathname;
    const match = OPERATION_PATH.exec(path);
    if (!match) throw new HttpError(404, "ErrNotFound", `no such endpoint: ${path}`);
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) throw new HttpError(401, "ErrAuth", "a bearer token is required");
    const text = decodePathSegment(match[1]);
    const parsed = parseNodeSandboxId(text);
    const operator = this.opts.credentials.isOperator(token);
    // Only the operator learns whether an id exists; anyone else gets the same 403.
    const denied = new ErrAuth("this token does not open that sandbox");
    if (!parsed)
      throw operator ? new HttpError(400, "ErrInvalidConfig", "malformed sandbox id") : denied;
    const sandbox =
      parsed.nodeId === undefined || parsed.nodeId === this.opts.nodeId
        ? this.opts.host.find(parsed.localId)
        : undefined;
    if (!sandbox) throw operator ? new ErrVMNotFound(text) : denied;
    if (!this.opts.credentials.opens(token, sandbox.id, sandbox.createdAt)) throw denied;
    if (sandbox.status !== "running")
      throw new ErrVMNotRunning(`sandbox ${sandbox.id} is not running (status: ${sandbox.status})`);
    if (this.open >= this.opts.maxOperations)
      throw new ErrCapacity(`this node serves its limit of ${this.opts.maxOperations} operations`);
    return sandbox.id;
  }

  private async serve(id: string, stream: Duplex, token: string | undefined): Promise<void> {
    let req: OperationRequest;
    try {
      req = await readRequest(stream);
    } catch {
      stream.destroy();
      return;
    }
    const reply = (type: number, value: unknown): void =>
      void stream.end(encodeJson(type as Msg, value));
    if (operatorOnly(req) && !this.opts.credentials.isOperator(token)) {
      const what = req.op === "allow-list" ? "allow-list add" : req.op;
      reply(Msg.Error, wireError(new ErrAuth(`${what} needs the node's operator token`)));
      stream.resume();
      return;
    }
    if (req.op === "configure") {
      try {
        // Checked only: the request goes to the supervisor as sent (a path given through a
        // symlink is opened as given; its target was checked).
        const policyScript = (req.options as { policyScript?: unknown })?.policyScript;
        nodeOptions({ policyScript }, this.opts.hostPaths);
      } catch (err) {
        reply(Msg.Error, wireError(err));
        stream.resume();
        return;
      }
    }
    if (req.op === "stop") {
      // Stopping through the node removes the sandbox too, as DELETE does: nothing is left.
      stream.resume();
      this.opts.host.remove(id).then(
        () => reply(Msg.Result, {}),
        (err: unknown) => reply(Msg.Error, wireError(err)),
      );
      return;
    }
    // The host resumes the stream once it reads it (the REQUEST is back at its front).
    this.opts.host.serveOperation(id, stream);
  }
}
