/**
 * A client's connection relayed to the sandbox's own protocol server (a supervisor's control
 * socket): the client's messages as the node let them through (request-gate.ts), the
 * supervisor's bytes as they come. `pipe()` stops reading one side while the other cannot
 * take more, so a slow client stops the supervisor's writes, which stops the guest's credits,
 * which stops the guest process: the node holds a few buffers per connection, whatever the
 * rates. The supervisor connection is opened when the client's connection is accepted, so the
 * client's first REQUEST finds it ready, and it stays open as long as the client's does
 * (both carry operations one after another).
 */
import type { Duplex, Readable } from "node:stream";
import type { Connector } from "../remote/index.js";
import type { PreparedOperation } from "./host.js";
import { GatedInput } from "./request-gate.js";

export function prepareRelay(connect: Connector): PreparedOperation {
  const upstream = connect().then(
    (socket) => {
      socket.on("error", () => undefined);
      return socket;
    },
    () => undefined,
  );
  return {
    serve: (stream, input) => {
      stream.on("error", () => undefined);
      // Until the supervisor connection is there, the client's messages wait in `input`.
      void upstream.then((socket) => {
        if (!socket || socket.destroyed) return void stream.destroy();
        if (stream.destroyed) return void socket.destroy();
        pipeBothWays(stream, input, socket);
      });
    },
  };
}

function pipeBothWays(stream: Duplex, input: Readable, socket: Duplex): void {
  stream.once("close", () => socket.destroy());
  // An operation the node answers itself (`stop`: it removes the sandbox, which ends the
  // supervisor's side first) ends the client's stream with the node's reply, never before it.
  const nodeAnswers = (): boolean => input instanceof GatedInput && input.answeredByNode;
  // A clean end reaches the client after the last bytes; only a socket that failed (a
  // supervisor killed mid-operation) cuts the client off at once.
  socket.once("end", () => nodeAnswers() || stream.end());
  socket.once("close", (hadError: boolean) => hadError && !nodeAnswers() && stream.destroy());
  input.pipe(socket);
  socket.pipe(stream, { end: false });
  // After pipe(): the gate learns an operation ended once its last bytes went to the client.
  if (input instanceof GatedInput) input.watchServer(socket);
}
