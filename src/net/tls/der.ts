/**
 * The few DER encodings (X.690) an X.509 certificate needs, written directly into Buffers.
 * A leaf certificate is issued on the first TLS connection to each intercepted name, while the
 * guest waits: building it through a generic ASN.1 object model cost ~10 ms a leaf here (up to
 * 200 ms on a loaded machine); this costs microseconds. Only encoding, never parsing: nothing
 * here reads untrusted input.
 */

/** Tag bytes used by the certificate builder (universal, or context-specific as noted). */
export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  oid: 0x06,
  utf8String: 0x0c,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

function lengthBytes(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV: `tag`, the definite length, then the concatenated contents. */
export function tlv(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

export const sequence = (...items: Buffer[]): Buffer => tlv(TAG.sequence, ...items);
export const set = (...items: Buffer[]): Buffer => tlv(TAG.set, ...items);
export const octetString = (bytes: Buffer): Buffer => tlv(TAG.octetString, bytes);
export const utf8String = (text: string): Buffer => tlv(TAG.utf8String, Buffer.from(text, "utf8"));
export const booleanTrue = (): Buffer => tlv(TAG.boolean, Buffer.from([0xff]));

/** `[n] EXPLICIT`: a constructed context-specific wrapper around one encoding. */
export const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);

/** `[n] IMPLICIT` of a primitive type: its contents under a context-specific tag. */
export const implicitPrimitive = (n: number, contents: Buffer): Buffer => tlv(0x80 | n, contents);

/** A non-negative INTEGER from its big-endian magnitude (minimal, with a sign byte if needed). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  const needsSignByte = ((trimmed[0] ?? 0) & 0x80) !== 0;
  return tlv(TAG.integer, needsSignByte ? Buffer.from([0]) : Buffer.alloc(0), trimmed);
}

export const smallInteger = (value: number): Buffer =>
  unsignedInteger(
    Buffer.from([(value >> 24) & 0xff, (value >> 16) & 0xff, (value >> 8) & 0xff, value & 0xff]),
  );

/** A BIT STRING whose last `unusedBits` bits are padding. */
export const bitString = (bytes: Buffer, unusedBits = 0): Buffer =>
  tlv(TAG.bitString, Buffer.from([unusedBits]), bytes);

function base128(value: number): number[] {
  const out = [value & 0x7f];
  for (let n = Math.floor(value / 128); n > 0; n = Math.floor(n / 128))
    out.unshift(0x80 | (n & 0x7f));
  return out;
}

/** An OBJECT IDENTIFIER from dotted form ("1.2.840.10045.4.3.2"). */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  const [first = 0, second = 0, ...rest] = arcs;
  const bytes = [...base128(first * 40 + second), ...rest.flatMap(base128)];
  return tlv(TAG.oid, Buffer.from(bytes));
}

const two = (n: number): string => String(n).padStart(2, "0");

/**
 * RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, both in UTC to the
 * second (milliseconds dropped).
 */
export function time(date: Date): Buffer {
  const year = date.getUTCFullYear();
  const rest =
    two(date.getUTCMonth() + 1) +
    two(date.getUTCDate()) +
    two(date.getUTCHours()) +
    two(date.getUTCMinutes()) +
    two(date.getUTCSeconds()) +
    "Z";
  return year < 2050
    ? tlv(TAG.utcTime, Buffer.from(two(year % 100) + rest, "ascii"))
    : tlv(TAG.generalizedTime, Buffer.from(String(year).padStart(4, "0") + rest, "ascii"));
}

/** Where one TLV's contents lie in `der` (trusted input: encodings Node itself produced). */
export function readTlv(der: Buffer, offset: number): { tag: number; start: number; end: number } {
  const tag = der[offset] ?? 0;
  let length = der[offset + 1] ?? 0;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (der[start + i] ?? 0);
    start += count;
  }
  if (start + length > der.length) throw new Error("DER: truncated element");
  return { tag, start, end: start + length };
}
