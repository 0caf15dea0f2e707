/**
 * The node's check of every operation on a data-plane connection. A connection carries
 * operations one after another (src/remote/protocol.ts): each REQUEST is read here and
 * decided (the caller's token may run it or not, a rewrite such as `configure`'s policy
 * script, or an answer the node gives itself) before the sandbox sees it; the rest of the
 * client's messages pass as they came. What passes is the returned stream, which pauses the
 * client while the sandbox side cannot take more (backpressure).
 */
import { Readable, type Duplex } from "node:stream";
import { ErrProtocol } from "../errors.js";
import {
  encodeJson,
  encodeMessage,
  endsBothWays,
  isClientOperationMessage,
  MessageReader,
  Msg,
  OpEndWatch,
  parseJson,
  type OperationRequest,
} from "../remote/index.js";

/** How long a connection may stay open without asking for anything (between operations). */
export const REQUEST_WAIT_MS = 60_000;

/**
 * After IDLE (the node wants the connection gone), how long a REQUEST already on its way is
 * still served before the node closes the connection itself: a live client closes it at once.
 */
export const IDLE_GRACE_MS = 30_000;

const IDLE = encodeMessage(Msg.Idle);

/** Where a connection stands, for the node's count of operations and idle connections. */
export type GateState = "idle" | "busy" | "leaving" | "closed";

/** The node answers the operation itself: this message, then the connection closes. */
export interface NodeAnswer {
  answer: Promise<Buffer>;
}

/** A REQUEST to pass on (as it came, or rewritten), or the node's own answer to it. */
export type GateVerdict = OperationRequest | NodeAnswer;

export interface GateOptions {
  decide(req: OperationRequest): GateVerdict;
  /** Called once: the first REQUEST arrived, or the connection closed before one. */
  firstRequest(): void;
  /** Each change: idle (between operations), busy (one runs), leaving (IDLE sent), closed. */
  stateChanged?(state: GateState): void;
  waitMs?: number;
  graceMs?: number;
}

function parseRequest(payload: Buffer): OperationRequest {
  const req = parseJson<OperationRequest>(payload);
  if (typeof req !== "object" || req === null || typeof req.op !== "string")
    throw new ErrProtocol("malformed REQUEST");
  return req;
}

/**
 * The client's messages as the sandbox may see them; `answeredByNode` turns true when the node
 * took an operation itself (its reply, not the sandbox's end, ends the client's stream).
 */
export class GatedInput extends Readable {
  answeredByNode = false;
  /**
   * Asks the client to close the connection (IDLE), if it is between operations: it is never
   * closed under a REQUEST the client sent before it saw that (one that comes is served).
   */
  leave: () => void = () => undefined;
  /**
   * Follows the sandbox side's messages to the client (`source`'s data as it is relayed): an
   * OP_END that ends the operation both ways ends it here too, as the client sends no OP_END.
   */
  watchServer: (source: Readable) => void = () => undefined;
}

/**
 * Gates the client's messages. A protocol error (a first message that
 * is no REQUEST, a malformed one, an oversized frame) or a connection idle for `waitMs`
 * between operations closes the client's stream.
 */
export function gateRequests(client: Duplex, opts: GateOptions): GatedInput {
  const waitMs = opts.waitMs ?? REQUEST_WAIT_MS;
  const graceMs = opts.graceMs ?? IDLE_GRACE_MS;
  let state: GateState = "idle";
  let answered = false;
  let timer: NodeJS.Timeout | undefined;
  const enter = (next: GateState): void => {
    clearTimeout(timer);
    state = next;
    opts.stateChanged?.(next);
  };
  const input = new GatedInput({ read: () => void client.resume() });
  // Silent for waitMs between operations: asked to go; silent for graceMs more: closed.
  const waitForRequest = (): void => {
    enter("idle");
    timer = setTimeout(input.leave, waitMs);
    timer.unref();
  };
  input.leave = () => {
    if (state !== "idle" || answered) return;
    enter("leaving");
    // Between operations the sandbox side is quiet (the client saw its OP_END before sending
    // its own), so this message never lands inside one of the sandbox's.
    client.write(IDLE);
    timer = setTimeout(() => client.destroy(), graceMs);
    timer.unref();
  };
  input.watchServer = (source) => {
    const watch = new OpEndWatch((flags) => {
      if (state === "busy" && endsBothWays(flags)) waitForRequest();
    });
    source.on("data", (chunk: Buffer) => watch.push(chunk));
  };
  let served = false;
  let out: Buffer[] = [];
  const reader = new MessageReader((msg) => {
    if (answered) return;
    if (state === "busy") {
      // An older sandbox side waits for the client's OP_END: that ends the operation.
      if (msg.type === Msg.OpEnd) waitForRequest();
      out.push(encodeMessage(msg.type as Msg, msg.payload));
      return;
    }
    // The client's late messages for the operation that just ended: dropped.
    if (served && isClientOperationMessage(msg.type)) return;
    if (msg.type !== Msg.Request) throw new ErrProtocol("an operation must start with REQUEST");
    served = true;
    clearTimeout(timer);
    opts.firstRequest();
    const req = parseRequest(msg.payload);
    const verdict = opts.decide(req);
    if ("answer" in verdict) {
      answered = true;
      input.answeredByNode = true;
      // Its reply ends the connection: it holds no room from here on.
      enter("leaving");
      void verdict.answer.then((reply) => client.end(reply));
      return;
    }
    enter("busy");
    out.push(
      verdict === req ? encodeMessage(Msg.Request, msg.payload) : encodeJson(Msg.Request, verdict),
    );
  });
  client.on("data", (chunk: Buffer) => {
    try {
      reader.push(chunk);
    } catch {
      client.destroy();
      return;
    }
    if (out.length === 0) return;
    // What one client message carried goes on as one write (a REQUEST and its first stdin).
    const data = out.length === 1 ? out[0] : Buffer.concat(out);
    out = [];
    if (data && !input.push(data)) client.pause();
  });
  client.once("close", () => {
    enter("closed");
    opts.firstRequest();
    input.destroy();
  });
  waitForRequest();
  return input;
}
