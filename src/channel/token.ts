/**
 * The session token (docs/PROTOCOL.md "Session token"): every guest frame carries the token
 * of the latest CONFIGURE the agent applied, 0 before the first. A frame with any other
 * token did not come from the agent — after guest root re-bound the virtio console driver,
 * say, anyone can open the recreated port — and ends the session.
 *
 * The host may have sent CONFIGUREs the agent has not applied yet; frames the agent sent
 * before applying one still carry the older token. So each new token is pending until a
 * frame carries it, and from then on the tokens before it are refused.
 */
import { randomBytes } from "node:crypto";
import { ErrProtocol } from "../errors.js";
import { frameTypeName } from "./contract.js";
import type { Frame } from "./frame.js";

export class TokenGate {
  /** undefined: no token is valid yet (a restored guest holds its snapshot's token). */
  private current: number | undefined;
  private readonly pending: number[] = [];

  /** `resumed`: the guest was restored from a snapshot; a fresh boot starts with token 0. */
  constructor(resumed: boolean) {
    this.current = resumed ? undefined : 0;
  }

  /** A fresh random token for the next CONFIGURE; accepted from now on, once the guest uses it. */
  next(): number {
    let token = 0;
    while (token === 0 || token === this.current || this.pending.includes(token)) {
      token = randomBytes(4).readUInt32BE(0);
    }
    this.pending.push(token);
    return token;
  }

  /** Throws ErrProtocol unless the frame carries the token in force or a newer one the host sent. */
  check(frame: Frame): void {
    if (frame.token === this.current) return;
    const index = this.pending.indexOf(frame.token);
    if (index < 0) {
      throw new ErrProtocol(
        `${frameTypeName(frame.type)} frame on stream ${frame.streamId} without the session ` +
          "token: something other than the agent wrote to the control port",
      );
    }
    this.current = frame.token;
    this.pending.splice(0, index + 1);
  }
}
