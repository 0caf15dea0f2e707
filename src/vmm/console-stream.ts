import { createConnection, createServer, type Socket } from "node:net";
import type { Writable } from "node:stream";

/**
 * The serial console's way to the host: a socket QEMU writes and this process reads into a
 * ring log. QEMU's UART hands its chardev one byte per call, and a unix socket accounts each
 * such write as a whole buffer, so it holds only a few hundred bytes: a reader that polled
 * it would wake once per byte or two (a guest flooding /dev/ttyS0 cost the host process a
 * core). So after each read the host stops reading for BATCH_MS (the socket's high-water
 * mark is 1 byte, so paused means not polled): at most one wake-up per BATCH_MS, the guest's
 * console limited to what the socket holds per BATCH_MS (~100 KB/s, about what TCG's UART
 * manages anyway), and a guest that writes faster waits in its UART driver: slowed, never
 * buffered without end.
 */
const BATCH_MS = 2;

export interface ConsolePair {
  /** The end this process reads. */
  host: Socket;
  /** The end QEMU inherits (close this process's copy once it has). */
  qemu: Socket;
}

/** A connected socket pair through a listener at `path`, which is gone again on return. */
export async function consoleSocketPair(path: string): Promise<ConsolePair> {
  const server = createServer({ highWaterMark: 1, pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
  try {
    const accepted = new Promise<Socket>((resolve) => server.once("connection", resolve));
    const qemu = await new Promise<Socket>((resolve, reject) => {
      const socket = createConnection(path);
      // Never read here: this end is QEMU's.
      socket.pause();
      socket.once("connect", () => resolve(socket));
      socket.once("error", reject);
    });
    return { host: await accepted, qemu };
  } finally {
    server.close(); // also removes the socket file
  }
}

/** Copies the console into `log` in batches; resolves when QEMU's end is closed and all is written. */
export function drainConsole(host: Socket, log: Writable): Promise<void> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    host.on("data", (chunk: Buffer) => {
      host.pause();
      const later = (): void => {
        timer = setTimeout(() => host.resume(), BATCH_MS);
      };
      if (log.write(chunk)) later();
      else log.once("drain", later);
    });
    host.on("error", () => undefined); // "close" follows
    host.once("close", () => {
      clearTimeout(timer);
      log.end(() => resolve());
    });
    host.resume();
  });
}
