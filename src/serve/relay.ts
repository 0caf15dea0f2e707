/**
 * One operation relayed byte for byte between a client's stream and the sandbox's own
 * protocol server (a supervisor's control socket). `pipe()` stops reading one side while the
 * other cannot take more, so a slow client stops the supervisor's writes, which stops the
 * guest's credits, which stops the guest process: the node holds a few buffers per operation,
 * whatever the rates.
 */
import type { Duplex } from "node:stream";
import type { Connector } from "../remote/index.js";

export function relayOperation(stream: Duplex, connect: Connector): void {
  stream.on("error", () => undefined);
  connect().then(
    (socket) => {
      socket.on("error", () => undefined);
      if (stream.destroyed) {
        socket.destroy();
        return;
      }
      stream.once("close", () => socket.destroy());
      // A clean end reaches the client through pipe()'s end(), after the last bytes; only a
      // socket that failed (a supervisor killed mid-operation) cuts the client off at once.
      socket.once("close", (hadError: boolean) => hadError && stream.destroy());
      stream.pipe(socket);
      socket.pipe(stream);
    },
    () => stream.destroy(),
  );
}
