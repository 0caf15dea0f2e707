/**
 * The data plane: `GET /v1/sandboxes/{id}/operation` upgraded to a WebSocket carries
 * operations of the sandbox protocol (src/remote), one after another. The token is checked
 * before the upgrade (401 none, 403 one that does not open this sandbox); each REQUEST is
 * checked against what the token may do (request-gate.ts); the stream goes to the sandbox's
 * host, which serves it with backpressure end to end. Frames are bounded (`maxPayload`), and
 * so is the number of connections open at once.
 */
import type { IncomingMessage, Server } from "node:http";
import type { Socket } from "node:net";
import { WebSocketServer, createWebSocketStream } from "ws";
import {
  ErrAuth,
  ErrCapacity,
  ErrInvalidConfig,
  ErrVMNotFound,
  ErrVMNotRunning,
} from "../errors.js";
import {
  encodeJson,
  MAX_FRAME_BYTES,
  Msg,
  SPARE_HEADER,
  webSocketDuplex,
  wireError,
  type OperationRequest,
} from "../remote/index.js";
import { nodeSandboxId, parseNodeSandboxId } from "../util/index.js";
import { bearerToken, type NodeCredentials } from "./auth.js";
import { decodePathSegment, HttpError, refuseOnSocket, requestUrl } from "./http-json.js";
import type { SandboxHost } from "./host.js";
import {
  gateRequests,
  type GatedInput,
  type GateState,
  type GateVerdict,
  type NodeAnswer,
} from "./request-gate.js";
import { readNodePolicyScript } from "./policy-script-read.js";

export interface DataPlaneOptions {
  host: SandboxHost;
  credentials: NodeCredentials;
  nodeId: string;
  /**
   * Operations running at once, over all sandboxes; also the connections kept open (idle
   * ones, between operations, are asked to go first when a new one needs the room).
   */
  maxOperations: number;
  /**
   * Operations one sandbox may run at once: a tenant holding its sandbox's token must not take
   * every slot of the node from the others (docs/SECURITY.md). Default: all of them.
   */
  maxOperationsPerSandbox?: number;
  /** The node's audit trail: one line per change to a sandbox. */
  audit?: (line: string) => void;
  /** Node directories `configure`'s policy script may be in (serve --host-path). */
  hostPaths: readonly string[];
  /** Of those, the ones callers may write (a policy script is never taken from one). */
  writableHostPaths?: readonly string[];
  /** Largest WebSocket frame accepted (a protocol message and its header). */
  maxFrameBytes?: number;
  /** How long a connection may wait for its REQUEST (a client's spare). Default 60 s. */
  requestWaitMs?: number;
}

/**
 * Spares (connections a client opens ahead of its next operation, marked by a header) wait
 * for a request while holding an operation slot: each sandbox may keep this many waiting, and
 * they are accepted only while at least half of the node's slots are free, so spares never
 * crowd out operations. A refused spare costs the client nothing but its head start.
 */
const MAX_WAITING_SPARES_PER_SANDBOX = 4;

const OPERATION_PATH = /^\/v1\/sandboxes\/([^/]+)\/operation$/;

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

function nodeFull(maxOperations: number): ErrCapacity {
  return new ErrCapacity(`this node serves its limit of ${maxOperations} operations`);
}

function notRunning(sandbox: { id: string; status: string; lastError?: string }): ErrVMNotRunning {
  return ErrVMNotRunning.withStatus(sandbox.id, sandbox.status, sandbox.lastError);
}

export class DataPlane {
  private readonly wss: WebSocketServer;
  /** Connections open, and of them those asked to go (IDLE sent): they hold no room. */
  private open = 0;
  private leaving = 0;
  /** Operations running (a REQUEST passed, its OP_END not yet). */
  private busy = 0;
  /** Of them, by sandbox id. */
  private readonly busyBySandbox = new Map<string, number>();
  /** Connections between operations, longest idle first: the first asked to go. */
  private readonly idle = new Set<GatedInput>();
  /** Spares waiting for their REQUEST, by sandbox id. */
  private readonly waitingSpares = new Map<string, number>();

  constructor(private readonly opts: DataPlaneOptions) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxFrameBytes ?? MAX_FRAME_BYTES,
      perMessageDeflate: false,
    });
  }

  /** Operations running now. */
  get openOperations(): number {
    return this.busy;
  }

  attach(server: Server): void {
    server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      socket.on("error", () => undefined);
      try {
        const spare = req.headers[SPARE_HEADER] !== undefined;
        // The token is the handshake's: whether it is the operator's is decided once here.
        const { id, running, operator } = this.authorize(req, spare);
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          this.open++;
          ws.once("close", () => this.open--);
          const stream = webSocketDuplex(ws, (s) => createWebSocketStream(s));
          // Not running (crashed, stopped): nothing to relay to; the node answers `stop`.
          const prepared = running ? this.opts.host.prepareOperation(id) : undefined;
          // The gate reports its first state before it is returned: counted, then listed.
          const conn: { input?: GatedInput; state: GateState } = { state: "closed" };
          const input = gateRequests(stream, {
            decide: (r) => this.decide(id, operator, r, running),
            firstRequest: spare ? this.holdSpare(id) : () => undefined,
            stateChanged: (next) => {
              this.count(id, conn.input, conn.state, next);
              conn.state = next;
            },
            ...(this.opts.requestWaitMs !== undefined ? { waitMs: this.opts.requestWaitMs } : {}),
          });
          conn.input = input;
          if (conn.state === "idle") this.count(id, input, "idle", "idle");
          prepared?.serve(stream, input);
        });
      } catch (err) {
        refuseOnSocket(socket, err);
      }
    });
  }

  /**
   * Resolves once no operation runs, or after `waitMs`; idle connections are asked to go
   * (their clients open new ones elsewhere), and so is each one whose operation ends.
   */
  async drained(waitMs: number): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      for (const gate of [...this.idle]) gate.leave();
      if (this.busy === 0 || Date.now() >= deadline) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Keeps the counts as a connection changes state (`input` is unset only at its start). */
  private count(id: string, input: GatedInput | undefined, from: GateState, to: GateState): void {
    if (from === "busy") {
      this.busy--;
      const left = (this.busyBySandbox.get(id) ?? 1) - 1;
      if (left > 0) this.busyBySandbox.set(id, left);
      else this.busyBySandbox.delete(id);
    }
    if (from === "leaving") this.leaving--;
    if (to === "busy") {
      this.busy++;
      this.busyBySandbox.set(id, (this.busyBySandbox.get(id) ?? 0) + 1);
    }
    if (to === "leaving") this.leaving++;
    if (!input) return;
    this.idle.delete(input);
    if (to === "idle") this.idle.add(input);
  }

  /** Connections that hold room: open, not asked to go. */
  private get live(): number {
    return this.open - this.leaving;
  }

  close(): void {
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
  }

  /** Counts a spare as waiting; the function returned ends that (once). */
  private holdSpare(id: string): () => void {
    this.waitingSpares.set(id, (this.waitingSpares.get(id) ?? 0) + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = (this.waitingSpares.get(id) ?? 1) - 1;
      if (left > 0) this.waitingSpares.set(id, left);
      else this.waitingSpares.delete(id);
    };
  }

  /**
   * The local id the request may open, and whether it runs; throws the refusal otherwise. A
   * sandbox that does not run is opened for `stop` alone (the SDK's close() removes it).
   */
  private authorize(
    req: IncomingMessage,
    spare: boolean,
  ): { id: string; running: boolean; operator: boolean } {
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
    const running = sandbox.status === "running";
    if (!running && spare) throw notRunning(sandbox);
    if (this.live >= this.opts.maxOperations) {
      // Full: a connection kept idle (another client's, most likely) makes room, if any is.
      const [longestIdle] = this.idle;
      if (spare || !longestIdle) throw nodeFull(this.opts.maxOperations);
      longestIdle.leave();
    }
    if (
      spare &&
      (this.live >= this.opts.maxOperations / 2 ||
        (this.waitingSpares.get(sandbox.id) ?? 0) >= MAX_WAITING_SPARES_PER_SANDBOX)
    )
      throw new ErrCapacity("this node keeps its free slots for operations now: no spare");
    return { id: sandbox.id, running, operator };
  }

  /** What the node does with a REQUEST on `id`'s connection (opened by the operator or not). */
  private decide(
    id: string,
    operator: boolean,
    req: OperationRequest,
    running: boolean,
  ): GateVerdict {
    const refuse = (err: unknown): NodeAnswer => ({
      answer: Promise.resolve(encodeJson(Msg.Error, wireError(err))),
    });
    if (!running && req.op !== "stop") {
      const sandbox = this.opts.host.find(id);
      return refuse(sandbox ? notRunning(sandbox) : new ErrVMNotFound(id));
    }
    // Connections kept between operations hold no operation: the limit is checked here too.
    if (this.busy >= this.opts.maxOperations) return refuse(nodeFull(this.opts.maxOperations));
    const perSandbox = this.opts.maxOperationsPerSandbox ?? this.opts.maxOperations;
    if ((this.busyBySandbox.get(id) ?? 0) >= perSandbox && req.op !== "stop")
      return refuse(
        new ErrCapacity(`sandbox ${id} runs its limit of ${perSandbox} operations on this node`),
      );
    if (operatorOnly(req) && !operator) {
      const what = req.op === "allow-list" ? "allow-list add" : req.op;
      return refuse(new ErrAuth(`${what} needs the node's operator token`));
    }
    const by = operator ? "operator" : "its own token";
    if (req.op === "configure") {
      try {
        const configured = this.configureOnNode(req);
        // Names only: a secret's value never reaches a log.
        const keys = Object.keys((req.options as Record<string, unknown> | null) ?? {}).sort();
        this.opts.audit?.(
          `configured ${nodeSandboxId(id, this.opts.nodeId)} (${keys.join(", ") || "nothing"}; data plane, ${by})`,
        );
        return configured;
      } catch (err) {
        return refuse(err);
      }
    }
    if (req.op === "stop") {
      // Stopping through the node removes the sandbox too, as DELETE does: nothing is left.
      return {
        answer: this.opts.host.remove(id).then(
          () => {
            this.opts.audit?.(
              `removed ${nodeSandboxId(id, this.opts.nodeId)} (stop, data plane, ${by})`,
            );
            return encodeJson(Msg.Result, {});
          },
          (err: unknown) => encodeJson(Msg.Error, wireError(err)),
        ),
      };
    }
    return req;
  }

  /**
   * `configure` as the sandbox gets it: a policy script named by path is opened and read here,
   * once, and its content passed on (a path would be opened again by the sandbox, after the
   * check: a swap in between would run another file). A caller cannot send content itself:
   * code that runs in the node's host process comes only from the directories its owner opened.
   */
  private configureOnNode(req: Extract<OperationRequest, { op: "configure" }>): OperationRequest {
    const options = req.options as Record<string, unknown> | null;
    if (typeof options !== "object" || options === null) return req;
    if (options.policyScriptSource !== undefined)
      throw new ErrInvalidConfig("configure: policyScriptSource is set by the node, not callers");
    if (options.policyScript === undefined) return req;
    const { policyScript, ...rest } = options;
    const source = readNodePolicyScript(
      policyScript,
      this.opts.hostPaths,
      this.opts.writableHostPaths,
    );
    return { op: "configure", options: { ...rest, policyScriptSource: source } };
  }
}
