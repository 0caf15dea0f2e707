/**
 * The first message of an operation stream, read on the node before anything is served: the
 * node decides from it whether the caller's token may run that operation, then hands the
 * stream on with the message put back, untouched.
 */
import type { Duplex } from "node:stream";
import { ErrProtocol } from "../errors.js";
import {
  encodeJson,
  MessageReader,
  Msg,
  parseJson,
  type OperationRequest,
} from "../remote/index.js";

export interface ReadRequest {
  req: OperationRequest;
  /**
   * Puts the REQUEST back at the stream's front, as it came or as `replacement` (what the
   * node passes on instead), with every byte read after it.
   */
  putBack(replacement?: OperationRequest): void;
}

const HEADER_BYTES = 5;

/** How long a connection may stay open without asking for anything (a client's spare). */
export const REQUEST_WAIT_MS = 60_000;

/** Resolves with the REQUEST; the stream is paused until `putBack`. */
export function readRequest(stream: Duplex, waitMs = REQUEST_WAIT_MS): Promise<ReadRequest> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let done = false;
    let requestBytes = 0;
    const finish = (err: Error | undefined, req?: OperationRequest): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.off("data", onData);
      stream.off("close", onClose);
      stream.pause();
      if (err) return reject(err);
      const read = Buffer.concat(chunks);
      resolve({
        req: req as OperationRequest,
        putBack: (replacement) =>
          stream.unshift(
            replacement === undefined
              ? read
              : Buffer.concat([encodeJson(Msg.Request, replacement), read.subarray(requestBytes)]),
          ),
      });
    };
    const reader = new MessageReader((msg) => {
      if (done) return;
      if (msg.type !== Msg.Request)
        return finish(new ErrProtocol("an operation must start with REQUEST"));
      try {
        requestBytes = HEADER_BYTES + msg.payload.length;
        const req = parseJson<OperationRequest>(msg.payload);
        if (typeof req !== "object" || req === null || typeof req.op !== "string")
          return finish(new ErrProtocol("malformed REQUEST"));
        finish(undefined, req);
      } catch (err) {
        finish(err as Error);
      }
    });
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      try {
        reader.push(chunk);
      } catch (err) {
        finish(err as Error);
      }
    };
    const onClose = (): void => finish(new ErrProtocol("connection closed before its REQUEST"));
    const timer = setTimeout(() => finish(new ErrProtocol("no REQUEST in time")), waitMs);
    timer.unref();
    stream.on("data", onData);
    stream.once("close", onClose);
  });
}
