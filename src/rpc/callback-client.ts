/**
 * The client side of the reference's network-hook callback channel (reference/matchlock-rpc.md
 * §7.1): per invocation, dial the SDK's Unix socket, write one JSON line, read one JSON value
 * back (ended by a newline, by EOF, or simply complete). Every failure — no socket, a refused
 * or reset connection, a deadline, a malformed or oversized reply, a reply carrying `error` —
 * resolves to undefined: the reference ignores a failed callback (fail-open).
 */
import { createConnection } from "node:net";
import { encodeLine } from "./wire.js";

/** A reply may carry a replacement body (base64); wheellock buffers bodies up to 16 MiB. */
export const MAX_CALLBACK_REPLY_BYTES = 24 * 1024 * 1024;

export type CallbackReply = Readonly<Record<string, unknown>>;

/** The reply, if the bytes so far hold a complete one (undefined: wait for more). */
function parseReply(text: string, final: boolean): CallbackReply | null | undefined {
  const nl = text.indexOf("\n");
  const candidate = nl >= 0 ? text.slice(0, nl) : text.trimEnd();
  // Go's decoder returns as soon as the value is complete, newline or not.
  if (nl < 0 && !final && !candidate.endsWith("}")) return undefined;
  try {
    const value: unknown = JSON.parse(candidate);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as CallbackReply)
      : null;
  } catch {
    return nl >= 0 || final ? null : undefined;
  }
}

function endsWithBrace(chunk: Buffer): boolean {
  let i = chunk.length - 1;
  while (i >= 0 && (chunk[i] === 0x20 || chunk[i] === 0x09 || chunk[i] === 0x0d)) i--;
  return i >= 0 && chunk[i] === 0x7d;
}

export function invokeCallback(
  socketPath: string,
  request: object,
  timeoutMs: number,
): Promise<CallbackReply | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection(socketPath);
    const chunks: Buffer[] = [];
    let bytes = 0;
    let settled = false;
    const finish = (reply: CallbackReply | null | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const error = reply?.error;
      resolve(reply && !(typeof error === "string" && error.trim() !== "") ? reply : undefined);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.once("connect", () => socket.write(encodeLine(request)));
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      bytes += chunk.length;
      if (bytes > MAX_CALLBACK_REPLY_BYTES) return finish(undefined);
      // Only a newline or a closing brace can complete a reply: parse only then.
      if (!chunk.includes(0x0a) && !endsWithBrace(chunk)) return;
      const reply = parseReply(Buffer.concat(chunks).toString("utf8"), false);
      if (reply !== undefined) finish(reply);
    });
    socket.once("end", () => finish(parseReply(Buffer.concat(chunks).toString("utf8"), true)));
    socket.once("error", () => finish(undefined));
    socket.once("close", () => finish(undefined));
  });
}
