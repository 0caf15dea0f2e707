/** Just enough DNS (RFC 1035) to answer a guest's A/AAAA queries from the host. */

export const DNS_TYPE_A = 1;
export const DNS_TYPE_AAAA = 28;
const DNS_CLASS_IN = 1;
const HEADER_BYTES = 12;
const MAX_NAME_BYTES = 255;

export const RCODE_OK = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;

export interface DnsQuestion {
  id: number;
  recursionDesired: boolean;
  /** Lower-case, no trailing dot. */
  name: string;
  type: number;
  qclass: number;
  /** The raw question section, echoed in the answer. */
  questionBytes: Buffer;
}

export type DnsParseResult =
  | { ok: true; question: DnsQuestion }
  /** `id` is set when the header was readable, so an error can be answered. */
  | { ok: false; id?: number; rcode: number };

/** Hostname characters a resolver may be asked about; anything else (NUL, spaces) is refused. */
const LABEL_RE = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

export function parseDnsQuery(msg: Buffer): DnsParseResult {
  if (msg.length < HEADER_BYTES) return { ok: false, rcode: RCODE_FORMERR };
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000) return { ok: false, rcode: RCODE_FORMERR }; // a response, not a query
  if (((flags >> 11) & 0xf) !== 0) return { ok: false, id, rcode: RCODE_NOTIMP };
  if (msg.readUInt16BE(4) !== 1) return { ok: false, id, rcode: RCODE_FORMERR };
  const labels: string[] = [];
  let i = HEADER_BYTES;
  let nameBytes = 0;
  for (;;) {
    if (i >= msg.length) return { ok: false, id, rcode: RCODE_FORMERR };
    const len = msg.readUInt8(i);
    i += 1;
    if (len === 0) break;
    // Compression pointers (0xC0) are not valid in a lone question; other high bits are unused.
    if (len > 63 || i + len > msg.length) return { ok: false, id, rcode: RCODE_FORMERR };
    nameBytes += len + 1;
    if (nameBytes > MAX_NAME_BYTES) return { ok: false, id, rcode: RCODE_FORMERR };
    const label = msg
      .subarray(i, i + len)
      .toString("latin1")
      .toLowerCase();
    if (!LABEL_RE.test(label)) return { ok: false, id, rcode: RCODE_REFUSED };
    labels.push(label);
    i += len;
  }
  if (i + 4 > msg.length) return { ok: false, id, rcode: RCODE_FORMERR };
  return {
    ok: true,
    question: {
      id,
      recursionDesired: (flags & 0x0100) !== 0,
      name: labels.join("."),
      type: msg.readUInt16BE(i),
      qclass: msg.readUInt16BE(i + 2),
      questionBytes: msg.subarray(HEADER_BYTES, i + 4),
    },
  };
}

export function isInternetClass(q: DnsQuestion): boolean {
  return q.qclass === DNS_CLASS_IN;
}

/** An answer to `q` with `ipv4s` as A records (pass none for NODATA or an error rcode). */
export function buildDnsResponse(
  q: Pick<DnsQuestion, "id" | "recursionDesired" | "questionBytes">,
  rcode: number,
  ipv4s: readonly number[] = [],
  ttlSeconds = 60,
): Buffer {
  const answers = ipv4s.slice(0, 16);
  const out = Buffer.alloc(HEADER_BYTES + q.questionBytes.length + answers.length * 16);
  out.writeUInt16BE(q.id, 0);
  out.writeUInt16BE(0x8000 | (q.recursionDesired ? 0x0100 : 0) | 0x0080 | (rcode & 0xf), 2);
  out.writeUInt16BE(q.questionBytes.length > 0 ? 1 : 0, 4);
  out.writeUInt16BE(answers.length, 6);
  q.questionBytes.copy(out, HEADER_BYTES);
  let o = HEADER_BYTES + q.questionBytes.length;
  for (const ip of answers) {
    out.writeUInt16BE(0xc00c, o); // pointer to the question's name
    out.writeUInt16BE(DNS_TYPE_A, o + 2);
    out.writeUInt16BE(DNS_CLASS_IN, o + 4);
    out.writeUInt32BE(ttlSeconds, o + 6);
    out.writeUInt16BE(4, o + 10);
    out.writeUInt32BE(ip >>> 0, o + 12);
    o += 16;
  }
  return out;
}

/** A query message, for tests and tools. */
export function buildDnsQuery(id: number, name: string, type: number): Buffer {
  const labels = name.split(".").filter((l) => l.length > 0);
  const parts: Buffer[] = [Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])];
  for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l, "latin1"));
  parts.push(Buffer.from([0, type >> 8, type & 0xff, 0, DNS_CLASS_IN]));
  return Buffer.concat(parts);
}
