/**
 * Recognises the protocol of a guest TCP flow from its first bytes, not its port: a TLS
 * ClientHello (with its SNI and whether it offers HTTP/2 by ALPN), an HTTP/1.x request line,
 * the HTTP/2 connection preface (h2c with prior knowledge), or anything else. The bytes are
 * adversarial: every length is bounds-checked and nothing here throws.
 */

export type Sniffed =
  /**
   * Undecided. Fewer than `minBytes` can show the flow is not TLS (an answer that never
   * changes as bytes arrive), but never that it is: callers may wait for that many.
   */
  | { kind: "need-more"; minBytes: number }
  | { kind: "tls"; sni: string | undefined; offersH2: boolean }
  | { kind: "http" }
  | { kind: "h2c" }
  | { kind: "other" };

/** RFC 9113 §3.4: what a client speaking HTTP/2 without TLS sends first. */
export const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** A ClientHello larger than this (all records together) is not waited for. */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;
const TLS_HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;
const METHOD_MAX = 20;

export function sniff(buf: Buffer): Sniffed {
  if (buf.length === 0) return { kind: "need-more", minBytes: 1 };
  if (buf[0] === TLS_HANDSHAKE) return sniffTls(buf);
  return sniffHttp(buf);
}

/** `METHOD SP` with an upper-case token; the HTTP parser judges the rest. */
function sniffHttp(buf: Buffer): Sniffed {
  const preface = Math.min(buf.length, H2_PREFACE.length);
  if (buf.subarray(0, preface).equals(H2_PREFACE.subarray(0, preface)))
    return preface === H2_PREFACE.length
      ? { kind: "h2c" }
      : // The next byte may already leave the preface (an HTTP/1 method starting with "P").
        { kind: "need-more", minBytes: preface + 1 };
  const n = Math.min(buf.length, METHOD_MAX + 1);
  for (let i = 0; i < n; i++) {
    const c = buf[i] ?? 0;
    if (c === 0x20) return i > 0 ? { kind: "http" } : { kind: "other" };
    if (c < 0x41 || c > 0x5a) return { kind: "other" };
  }
  return buf.length > METHOD_MAX ? { kind: "other" } : { kind: "need-more", minBytes: n + 1 };
}

/**
 * Joins the handshake records' payloads until the whole ClientHello message is there. Linear
 * in the bytes held (TLS lets a client cut its hello into one-byte records), and when it
 * cannot decide yet it says how many bytes must be held first: the rest of an incomplete
 * record, or the missing handshake bytes plus at least one more record header.
 */
function sniffTls(buf: Buffer): Sniffed {
  const fragments: Buffer[] = [];
  let have = 0; // handshake bytes in complete records
  let at = 0; // where the complete records end
  let messageBytes: number | undefined; // the ClientHello with its 4-byte header, once known
  while (at + 5 <= buf.length) {
    if (buf[at] !== TLS_HANDSHAKE || buf[at + 1] !== 0x03) return { kind: "other" };
    const len = buf.readUInt16BE(at + 3);
    if (len === 0 || len > 16384 + 2048) return { kind: "other" };
    if (at + 5 + len > buf.length) break;
    fragments.push(buf.subarray(at + 5, at + 5 + len));
    have += len;
    at += 5 + len;
    if (messageBytes === undefined && have >= 4) {
      const head = firstBytes(fragments, 4);
      if (head[0] !== CLIENT_HELLO) return { kind: "other" };
      messageBytes = head.readUIntBE(1, 3) + 4;
      if (messageBytes > MAX_CLIENT_HELLO_BYTES) return { kind: "other" };
    }
    if (messageBytes !== undefined && have >= messageBytes) {
      const hs = Buffer.concat(fragments, have);
      const hello = clientHello(hs.subarray(4, messageBytes));
      return hello === null ? { kind: "other" } : { kind: "tls", ...hello };
    }
  }
  if (buf.length >= 3 && buf[1] !== 0x03) return { kind: "other" };
  if (buf.length >= MAX_CLIENT_HELLO_BYTES) return { kind: "other" };
  const missing = messageBytes === undefined ? 4 - have : messageBytes - have;
  const partialRecord = at + 5 <= buf.length ? buf.readUInt16BE(at + 3) : 0;
  return { kind: "need-more", minBytes: at + 5 + Math.max(missing, partialRecord) };
}

/** The first `n` bytes of the joined fragments, without joining them all. */
function firstBytes(fragments: readonly Buffer[], n: number): Buffer {
  const out = Buffer.alloc(n);
  let filled = 0;
  for (const f of fragments) {
    filled += f.copy(out, filled, 0, Math.min(f.length, n - filled));
    if (filled === n) break;
  }
  return out;
}

/** The host_name from a ClientHello body; undefined without SNI, null when malformed. */
export function serverName(body: Buffer): string | undefined | null {
  const hello = clientHello(body);
  return hello === null ? null : hello.sni;
}

/** SNI and the ALPN offer of a ClientHello body; null when malformed. */
function clientHello(body: Buffer): { sni: string | undefined; offersH2: boolean } | null {
  const r = new Reader(body);
  r.skip(2 + 32); // client_version, random
  r.skip(r.u8()); // session_id
  r.skip(r.u16()); // cipher_suites
  r.skip(r.u8()); // compression_methods
  if (r.failed) return null;
  if (r.remaining === 0) return { sni: undefined, offersH2: false }; // no extensions at all
  const extLen = r.u16();
  const extEnd = r.offset + extLen;
  let sni: string | undefined;
  let offersH2 = false;
  while (!r.failed && r.offset + 4 <= extEnd) {
    const type = r.u16();
    const len = r.u16();
    if (type === EXT_ALPN) {
      const protocols = alpnList(r.take(len));
      if (protocols === null) return null;
      offersH2 ||= protocols.includes("h2");
      continue;
    }
    if (type !== EXT_SERVER_NAME) {
      r.skip(len);
      continue;
    }
    const ext = new Reader(r.take(len));
    const listLen = ext.u16();
    const listEnd = ext.offset + listLen;
    while (!ext.failed && ext.offset + 3 <= listEnd) {
      const nameType = ext.u8();
      const name = ext.take(ext.u16());
      if (nameType === 0 && sni === undefined) sni = name.toString("latin1");
    }
    if (ext.failed) return null;
  }
  if (r.failed || r.offset > extEnd || extEnd > body.length) return null;
  return { sni, offersH2 };
}

/** The protocol names of an ALPN extension (RFC 7301 §3.1); null when malformed. */
function alpnList(ext: Buffer): string[] | null {
  const r = new Reader(ext);
  const listEnd = r.u16() + 2;
  const names: string[] = [];
  while (!r.failed && r.offset < listEnd) names.push(r.take(r.u8()).toString("latin1"));
  return r.failed || r.offset !== listEnd ? null : names;
}

/** Bounds-checked big-endian reads; a read past the end sets `failed` instead of throwing. */
class Reader {
  offset = 0;
  failed = false;
  constructor(private readonly buf: Buffer) {}
  get remaining(): number {
    return this.buf.length - this.offset;
  }
  private need(n: number): boolean {
    if (this.failed || this.offset + n > this.buf.length) {
      this.failed = true;
      return false;
    }
    return true;
  }
  u8(): number {
    if (!this.need(1)) return 0;
    return this.buf[this.offset++] ?? 0;
  }
  u16(): number {
    if (!this.need(2)) return 0;
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  skip(n: number): void {
    if (this.need(n)) this.offset += n;
  }
  take(n: number): Buffer {
    if (!this.need(n)) return Buffer.alloc(0);
    const out = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
}
