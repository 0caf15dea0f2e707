import { Socket } from "node:net";
import type { GuestStream } from "./guest-stream.js";
import type { RequestEvent } from "./request-event.js";
import { DialRefused, type HostDialer } from "./upstream-dial.js";

/**
 * A raw TCP flow a rule allowed: the destination resolved and checked on the host like any
 * dial, then bytes piped both ways with stream backpressure. Reports one event at close.
 */
export async function relayRaw(
  dialer: HostDialer,
  guest: GuestStream,
  host: string,
  port: number,
  event: RequestEvent,
): Promise<void> {
  let address: string;
  try {
    address = await dialer.resolveChecked(host);
  } catch (err) {
    const refused = err instanceof DialRefused;
    event.finish({
      blocked: refused,
      code: refused ? err.code : "upstream_error",
      reason: (err as Error).message,
    });
    guest.destroy();
    return;
  }
  if (guest.destroyed) return event.finish({ reason: "guest closed before the dial" });
  const socket = new Socket({ allowHalfOpen: true });
  socket.setNoDelay(true);
  const timer = setTimeout(
    () => socket.destroy(new Error(`connect to ${host}:${port} timed out`)),
    dialer.connectTimeoutMs,
  );
  let failure: string | undefined;
  socket.once("connect", () => {
    clearTimeout(timer);
    // Listeners go on only now: a data listener starts the flow, and nothing may be lost.
    guest.on("data", (c: Buffer) => (event.bytesOut += c.length));
    socket.on("data", (c: Buffer) => (event.bytesIn += c.length));
    guest.pipe(socket);
    socket.pipe(guest);
  });
  socket.on("error", (err) => (failure = err.message));
  guest.on("error", () => socket.destroy());
  const done = () => {
    clearTimeout(timer);
    event.finish(failure ? { code: "upstream_error", reason: failure } : {});
    // A clean close after both sides ended; otherwise the guest sees a reset.
    if (!socket.readableEnded || failure) guest.destroy();
    socket.destroy();
  };
  socket.once("close", done);
  guest.once("close", () => socket.destroy());
  socket.connect({ host: address, port, family: 4 });
}
