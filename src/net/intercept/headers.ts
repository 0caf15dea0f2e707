import type { Duplex, Readable } from "node:stream";
import type { ByteBudget } from "../byte-budget.js";
import type { BodyAccess, HeaderList } from "./contract.js";

/** Hop-by-hop headers (RFC 9110 §7.6.1) and proxy-only ones: never forwarded either way. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "proxy-authenticate",
  "te",
  "trailer",
  "upgrade",
]);

export function pairs(raw: readonly string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i] ?? "", raw[i + 1] ?? ""]);
  return out;
}

export function flat(headers: HeaderList): string[] {
  return headers.flatMap(([k, v]) => [k, v]);
}

export function headerValue(headers: HeaderList, name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find(([k]) => k.toLowerCase() === lower)?.[1];
}

/** Drops hop-by-hop headers, those the Connection header names, and any in `alsoDrop`. */
export function endToEnd(headers: HeaderList, alsoDrop: readonly string[] = []): HeaderList {
  const drop = new Set([...HOP_BY_HOP, ...alsoDrop]);
  for (const [k, v] of headers)
    if (k.toLowerCase() === "connection")
      for (const token of v.split(",")) drop.add(token.trim().toLowerCase());
  return headers.filter(([k]) => !drop.has(k.toLowerCase()));
}

/** The headers for a body the proxy sends whole: its own length, no transfer coding. */
export function withLength(headers: HeaderList, length: number): HeaderList {
  return [
    ...headers.filter(([k]) => !["content-length", "transfer-encoding"].includes(k.toLowerCase())),
    ["Content-Length", String(length)],
  ];
}

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Writes a whole response on a socket the HTTP server has handed over (upgrade, CONNECT, parse
 * errors). Headers that could split the response (CR, LF, bad names) are dropped.
 */
export function writeRawResponse(
  socket: Duplex,
  status: number,
  reason: string,
  headers: HeaderList,
  body: Buffer = Buffer.alloc(0),
  end = true,
): void {
  if (socket.destroyed || !socket.writable) return;
  const safeReason = reason.replace(/[^\x20-\x7e]/g, "");
  const lines = [`HTTP/1.1 ${status} ${safeReason}`];
  for (const [k, v] of headers) if (TOKEN_RE.test(k) && VALUE_RE.test(v)) lines.push(`${k}: ${v}`);
  const head = Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
  if (end) socket.end(Buffer.concat([head, body]));
  else socket.write(Buffer.concat([head, body]));
}

/**
 * What the bodies a sandbox's policy reads may hold together (all flows, both HTTP versions).
 * Each read is bounded (MAX_BUFFERED_BODY_BYTES), but a guest opening many requests at once to
 * a host whose hooks read bodies would multiply that bound by its flows and streams.
 */
export const BODY_BUDGET_BYTES = 256 * 1024 * 1024;

/**
 * The bodies one exchange (a request and its response) buffers for the policy, counted
 * against the sandbox's budget until the exchange calls `end()` from its own close handler.
 */
export class ExchangeBodies {
  private held = 0;
  private over = false;

  constructor(private readonly budget?: ByteBudget) {}

  /** Counts `n` more bytes; false when the budget cannot take them (nothing is counted). */
  take(n: number): boolean {
    if (this.budget === undefined || this.over) return true;
    if (this.budget.free < n) return false;
    this.budget.take(n);
    this.held += n;
    return true;
  }

  /** Gives back bytes a failed read had counted. */
  giveBack(n: number): void {
    const back = Math.min(n, this.held);
    this.budget?.release(back);
    this.held -= back;
  }

  /** The exchange is over: everything is given back, and nothing more is counted. */
  end(): void {
    this.giveBack(this.held);
    this.over = true;
  }

  /** Why a read was refused, in one line. */
  get refusal(): string {
    const mib = Math.round((this.budget?.limitBytes ?? 0) / 1024 / 1024);
    return `the sandbox's bodies under inspection hold ${mib} MiB already`;
  }

  /** A body of this exchange that the policy may read. */
  buffer(stream: Readable): BodyBuffer {
    return new BodyBuffer(stream, this);
  }
}

/**
 * A body a policy may read (bounded). Once read, `buffered` holds it and the stream is spent;
 * a read that went over the limit, or past what the sandbox's budget has left (`bodies`),
 * leaves the stream spent with nothing to forward.
 */
export class BodyBuffer {
  buffered: Buffer | undefined;
  /** Consumed by a read that failed; the body can no longer be forwarded. */
  spent = false;
  private reading: Promise<Buffer> | undefined;

  constructor(
    private readonly stream: Readable,
    private readonly bodies?: ExchangeBodies,
  ) {}

  readonly access: BodyAccess = {
    readBody: (limitBytes) => {
      if (this.buffered) {
        if (this.buffered.length > limitBytes)
          return Promise.reject(new Error(`body larger than ${limitBytes} bytes`));
        return Promise.resolve(this.buffered);
      }
      this.reading ??= this.read(limitBytes);
      return this.reading;
    },
  };

  private read(limitBytes: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let counted = 0;
      const cleanup = () => {
        this.stream.off("data", onData);
        this.stream.off("end", onEnd);
        this.stream.off("error", onError);
        this.stream.off("close", onClose);
      };
      const fail = (err: Error) => {
        cleanup();
        this.spent = true;
        this.bodies?.giveBack(counted);
        reject(err);
      };
      const onData = (c: Buffer) => {
        size += c.length;
        if (size > limitBytes) {
          this.stream.pause();
          fail(new Error(`body larger than ${limitBytes} bytes`));
        } else if (this.bodies && !this.bodies.take(c.length)) {
          this.stream.pause();
          fail(new Error(this.bodies.refusal));
        } else {
          counted += c.length;
          chunks.push(c);
        }
      };
      const onEnd = () => {
        cleanup();
        this.buffered = Buffer.concat(chunks, size);
        resolve(this.buffered);
      };
      const onError = (err: Error) => fail(err);
      const onClose = () => fail(new Error("body stream closed"));
      this.stream.on("data", onData);
      this.stream.once("end", onEnd);
      this.stream.once("error", onError);
      this.stream.once("close", onClose);
    });
  }
}
