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
  MessageReader,
  Msg,
  parseJson,
  type OperationRequest,
} from "../remote/index.js";

/** How long a connection may stay open without asking for anything (between operations). */
export const REQUEST_WAIT_MS = 60_000;

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
  waitMs?: number;
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
}

/**
 * Gates the client's messages. A protocol error (a first message that
 * is no REQUEST, a malformed one, an oversized frame) or a connection idle for `waitMs`
 * between operations closes the client's stream.
 */
export function gateRequests(client: Duplex, opts: GateOptions): GatedInput {
  const waitMs = opts.waitMs ?? REQUEST_WAIT_MS;
  let active = false;
  let answered = false;
  let timer: NodeJS.Timeout | undefined;
  const waitForRequest = (): void => {
    timer = setTimeout(() => client.destroy(), waitMs);
    timer.unref();
  };
  const input = new GatedInput({ read: () => void client.resume() });
  let out: Buffer[] = [];
  const reader = new MessageReader((msg) => {
    if (answered) return;
    if (active) {
      if (msg.type === Msg.OpEnd) {
        active = false;
        waitForRequest();
      }
      out.push(encodeMessage(msg.type as Msg, msg.payload));
      return;
    }
    if (msg.type !== Msg.Request) throw new ErrProtocol("an operation must start with REQUEST");
    clearTimeout(timer);
    opts.firstRequest();
    const req = parseRequest(msg.payload);
    const verdict = opts.decide(req);
    if ("answer" in verdict) {
      answered = true;
      input.answeredByNode = true;
      void verdict.answer.then((reply) => client.end(reply));
      return;
    }
    active = true;
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
    clearTimeout(timer);
    opts.firstRequest();
    input.destroy();
  });
  waitForRequest();
  return input;
}
