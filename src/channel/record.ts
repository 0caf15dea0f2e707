/**
 * Record (TLV) payloads: `u8 tag, u32 length, value`, big-endian. Decoding only splits the
 * entries (and fails on truncation); typed accessors validate widths, UTF-8 and NUL when a
 * field is read, so the channel reads every field it relies on while handling the frame and
 * a bad value becomes a protocol error there.
 */
import { ErrProtocol } from "../errors.js";
import { MAX_PAYLOAD, RECORD_ENTRY_HEADER_BYTES } from "./contract.js";

export interface RecordField {
  readonly tag: number;
  readonly value: Uint8Array;
}

const U32_MAX = 0xffffffff;
const U64_MAX = (1n << 64n) - 1n;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function checkTag(tag: number): void {
  if (!Number.isInteger(tag) || tag < 0 || tag > 0xff)
    throw new RangeError(`record tag out of range: ${tag}`);
}

/** Builders for outgoing fields; they throw RangeError on values the wire cannot carry. */
export const field = {
  u8(tag: number, value: number): RecordField {
    checkTag(tag);
    if (!Number.isInteger(value) || value < 0 || value > 0xff)
      throw new RangeError(`u8 out of range: ${value}`);
    return { tag, value: Buffer.from([value]) };
  },
  u32(tag: number, value: number): RecordField {
    checkTag(tag);
    if (!Number.isInteger(value) || value < 0 || value > U32_MAX)
      throw new RangeError(`u32 out of range: ${value}`);
    const out = Buffer.allocUnsafe(4);
    out.writeUInt32BE(value);
    return { tag, value: out };
  },
  u64(tag: number, value: number | bigint): RecordField {
    checkTag(tag);
    if (typeof value === "number" && (!Number.isSafeInteger(value) || value < 0)) {
      throw new RangeError(`u64 out of range: ${value}`);
    }
    const big = BigInt(value);
    if (big < 0n || big > U64_MAX) throw new RangeError(`u64 out of range: ${value}`);
    const out = Buffer.allocUnsafe(8);
    out.writeBigUInt64BE(big);
    return { tag, value: out };
  },
  /** The spec forbids NUL in strings (the agent passes them to C APIs). */
  string(tag: number, value: string): RecordField {
    checkTag(tag);
    if (value.includes("\0")) throw new RangeError("string contains NUL");
    return { tag, value: Buffer.from(value, "utf8") };
  },
  bytes(tag: number, value: Uint8Array): RecordField {
    checkTag(tag);
    return { tag, value };
  },
  record(tag: number, fields: readonly RecordField[]): RecordField {
    checkTag(tag);
    return { tag, value: encodeRecord(fields) };
  },
};

export function encodeRecord(fields: readonly RecordField[]): Buffer {
  let total = 0;
  for (const f of fields) total += RECORD_ENTRY_HEADER_BYTES + f.value.length;
  if (total > MAX_PAYLOAD) throw new RangeError(`record of ${total} bytes exceeds ${MAX_PAYLOAD}`);
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const f of fields) {
    out[offset] = f.tag;
    out.writeUInt32BE(f.value.length, offset + 1);
    out.set(f.value, offset + RECORD_ENTRY_HEADER_BYTES);
    offset += RECORD_ENTRY_HEADER_BYTES + f.value.length;
  }
  return out;
}

/** Splits a record payload; values are views into `payload`. Throws ErrProtocol when truncated. */
export function decodeRecord(payload: Buffer, what = "record"): DecodedRecord {
  const fields: { tag: number; value: Buffer }[] = [];
  let offset = 0;
  while (offset < payload.length) {
    if (payload.length - offset < RECORD_ENTRY_HEADER_BYTES) {
      throw new ErrProtocol(`${what}: truncated entry header at byte ${offset}`);
    }
    const tag = payload[offset] ?? 0;
    const length = payload.readUInt32BE(offset + 1);
    const start = offset + RECORD_ENTRY_HEADER_BYTES;
    if (length > payload.length - start) {
      throw new ErrProtocol(
        `${what}: entry ${tag} claims ${length} bytes, ${payload.length - start} left`,
      );
    }
    fields.push({ tag, value: payload.subarray(start, start + length) });
    offset = start + length;
  }
  return new DecodedRecord(fields, what);
}

/**
 * A decoded record. Accessors return undefined for an absent tag and throw ErrProtocol for a
 * malformed value, or for a repeated tag where the spec defines a single value (we refuse to
 * guess which of two PIDs or sizes is meant).
 */
export class DecodedRecord {
  constructor(
    readonly fields: readonly { readonly tag: number; readonly value: Buffer }[],
    private readonly what = "record",
  ) {}

  has(tag: number): boolean {
    return this.fields.some((f) => f.tag === tag);
  }

  all(tag: number): Buffer[] {
    const out: Buffer[] = [];
    for (const f of this.fields) if (f.tag === tag) out.push(f.value);
    return out;
  }

  bytes(tag: number): Buffer | undefined {
    const values = this.all(tag);
    if (values.length > 1) throw new ErrProtocol(`${this.what}: field ${tag} repeated`);
    return values[0];
  }

  u8(tag: number): number | undefined {
    const v = this.fixed(tag, 1);
    return v === undefined ? undefined : (v[0] ?? 0);
  }

  u32(tag: number): number | undefined {
    return this.fixed(tag, 4)?.readUInt32BE(0);
  }

  /** u64 as a number; values past 2^53 are rejected rather than silently rounded. */
  u64(tag: number): number | undefined {
    const v = this.u64BigInt(tag);
    if (v === undefined) return undefined;
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw new ErrProtocol(`${this.what}: field ${tag} too large: ${v}`);
    return Number(v);
  }

  u64BigInt(tag: number): bigint | undefined {
    return this.fixed(tag, 8)?.readBigUInt64BE(0);
  }

  string(tag: number): string | undefined {
    const v = this.bytes(tag);
    return v === undefined ? undefined : this.decodeString(tag, v);
  }

  strings(tag: number): string[] {
    return this.all(tag).map((v) => this.decodeString(tag, v));
  }

  record(tag: number): DecodedRecord | undefined {
    const v = this.bytes(tag);
    return v === undefined ? undefined : decodeRecord(v, `${this.what} field ${tag}`);
  }

  records(tag: number): DecodedRecord[] {
    return this.all(tag).map((v, i) => decodeRecord(v, `${this.what} field ${tag}[${i}]`));
  }

  /** For required fields: turns "absent" into a protocol error naming the field. */
  require<T>(value: T | undefined, name: string): T {
    if (value === undefined) throw new ErrProtocol(`${this.what}: missing ${name}`);
    return value;
  }

  private fixed(tag: number, width: number): Buffer | undefined {
    const v = this.bytes(tag);
    if (v !== undefined && v.length !== width) {
      throw new ErrProtocol(`${this.what}: field ${tag} is ${v.length} bytes, expected ${width}`);
    }
    return v;
  }

  private decodeString(tag: number, value: Buffer): string {
    if (value.includes(0)) throw new ErrProtocol(`${this.what}: field ${tag} contains NUL`);
    try {
      return utf8.decode(value);
    } catch {
      throw new ErrProtocol(`${this.what}: field ${tag} is not valid UTF-8`);
    }
  }
}
