/**
 * One operation relayed byte for byte between a client's stream and the sandbox's own
 * protocol server (a supervisor's control socket). `pipe()` stops reading one side while the
 * other cannot take more, so a slow client stops the supervisor's writes, which stops the
 * guest's credits, which stops the guest process: the node holds a few buffers per operation,
 * whatever the rates. The supervisor connection is opened when the client's connection is
 * accepted, so the client's REQUEST finds it ready.
 */
import type { Duplex } from "node:stream";
import type { Connector } from "../remote/index.js";
import type { PreparedOperation } from "./host.js";

export function prepareRelay(connect: Connector): PreparedOperation {
  let cancelled = false;
  const upstream = connect().then(
    (socket) => {
      socket.on("error", () => undefined);
      if (cancelled) socket.destroy();
      return socket;
    },
    () => undefined,
  );
  return {
    serve: (stream) => {
      stream.on("error", () => undefined);
      void upstream.then((socket) => {
        if (!socket || socket.destroyed) return void stream.destroy();
        if (stream.destroyed) return void socket.destroy();
        pipeBothWays(stream, socket);
      });
    },
    cancel: () => {
      cancelled = true;
      void upstream.then((socket) => socket?.destroy());
    },
  };
}

function pipeBothWays(stream: Duplex, socket: Duplex): void {
  stream.once("close", () => socket.destroy());
  // A clean end reaches the client through pipe()'s end(), after the last bytes; only a
  // socket that failed (a supervisor killed mid-operation) cuts the client off at once.
  socket.once("close", (hadError: boolean) => hadError && stream.destroy());
  stream.pipe(socket);
  socket.pipe(stream);
}
