import type { OnReadOpts, Socket } from "node:net";

/**
 * Size of the buffer an upstream TLS socket decrypts into: one TLS record's plaintext at most
 * (2^14 bytes in TLS 1.2 and 1.3), so a record is never split across two reads.
 */
export const UPSTREAM_READ_BUFFER_BYTES = 16 * 1024;

/**
 * Read options (`onread`) for one new upstream TLS socket: its records are decrypted into one
 * buffer the socket keeps, instead of a fresh Buffer per record (Node's default: a 16 KiB
 * allocation per record, each freed by the garbage collector; on a download, as many bytes of
 * garbage as the body: docs/PERFORMANCE.md, "Intercepted HTTPS, session 14").
 *
 * A piece is handed straight to the socket's one 'data' listener as a view of that buffer only
 * where Node's own read path would do the same (the socket flowing, nothing queued) and that
 * listener is Node's HTTP client parser, which copies body bytes out and keeps nothing of its
 * input once a call returns. The buffer is used again only if the same parser is still attached
 * afterwards: a response that ended with this piece, an upgrade or CONNECT (Node hands the
 * bytes after its head on as a view), or a parse error may keep the view, so the next read gets
 * a new buffer. Anything else (paused, queued, several listeners, an upgraded socket's relay) is
 * pushed as Node pushes it, the buffer given away with it: one allocation per read, as before.
 */
export function upstreamReadOptions(): OnReadOpts {
  let buffer: Buffer | undefined;
  return {
    buffer: () => (buffer ??= Buffer.allocUnsafeSlow(UPSTREAM_READ_BUFFER_BYTES)),
    callback(this: Socket, n: number, buf: Uint8Array): boolean {
      const socket = this as Socket & { parser?: unknown };
      const piece = Buffer.from(buf.buffer, buf.byteOffset, n);
      const parser = socket.parser;
      if (
        parser == null ||
        socket.readableFlowing !== true ||
        socket.readableLength !== 0 ||
        socket.listenerCount("data") !== 1
      ) {
        buffer = undefined; // Node asks for the next buffer as soon as this returns
        return socket.push(piece);
      }
      socket.emit("data", piece);
      if (socket.parser !== parser) buffer = undefined;
      return true;
    },
  };
}
