import { Duplex } from "node:stream";
import { connect } from "node:tls";

/**
 * The first flight of a real Node TLS client (its ClientHello record), caught on a socket that
 * goes nowhere: what a guest's TLS client sends first, for the sniffing tests and fuzz seeds.
 */
export function clientHello(servername?: string, alpn?: string[]): Promise<Buffer> {
  return new Promise((resolve) => {
    const sink = new Duplex({
      read() {},
      write(chunk: Buffer, _e, cb) {
        resolve(Buffer.from(chunk));
        cb();
        setImmediate(() => socket.destroy());
      },
    });
    const socket = connect({
      socket: sink,
      ...(servername ? { servername } : {}),
      ...(alpn ? { ALPNProtocols: alpn } : {}),
    });
    socket.on("error", () => undefined);
  });
}
