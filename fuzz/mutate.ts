/**
 * Mutations: byte-level ones (AFL's havoc set: flips, interesting values, arithmetic, block
 * moves, dictionary tokens, splicing) and unit-level ones for framed inputs (drop, duplicate,
 * swap, splice whole frames, then repair lengths and checksums so changes reach past them).
 */
import type { Random } from "./random.js";
import type { FuzzTarget } from "./target.js";

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x40, 0x64];
const INTERESTING_16 = [0, 0x80, 0xff, 0x100, 0x200, 0x3e8, 0x400, 0x7fff, 0x8000, 0xffff];
const INTERESTING_32 = [
  0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 0x40000, 0x40001, 0x100000, 0x100fff,
];

export interface MutationContext {
  readonly target: FuzzTarget;
  readonly random: Random;
  /** Other corpus entries, for splicing. */
  readonly corpus: readonly Buffer[];
}

type Mutator = (input: Buffer, ctx: MutationContext) => Buffer;

function writeInt(buf: Buffer, at: number, value: number, bytes: 1 | 2 | 4, le: boolean): void {
  if (at + bytes > buf.length) return;
  if (bytes === 1) buf[at] = value & 0xff;
  else if (bytes === 2) {
    if (le) buf.writeUInt16LE(value & 0xffff, at);
    else buf.writeUInt16BE(value & 0xffff, at);
  } else if (le) buf.writeUInt32LE(value >>> 0, at);
  else buf.writeUInt32BE(value >>> 0, at);
}

const byteMutators: Mutator[] = [
  // bit flip
  (b, { random: r }) => {
    if (b.length === 0) return b;
    const out = Buffer.from(b);
    const at = r.int(out.length);
    out[at] = (out[at] as number) ^ (1 << r.int(8));
    return out;
  },
  // random byte
  (b, { random: r }) => {
    if (b.length === 0) return b;
    const out = Buffer.from(b);
    out[r.int(out.length)] = r.int(256);
    return out;
  },
  // interesting value at a random offset, either endianness
  (b, { random: r }) => {
    if (b.length === 0) return b;
    const out = Buffer.from(b);
    const width = r.pick([1, 2, 4] as const);
    const pool = width === 1 ? INTERESTING_8 : width === 2 ? INTERESTING_16 : INTERESTING_32;
    writeInt(out, r.int(out.length), r.pick(pool), width, r.chance(0.5));
    return out;
  },
  // arithmetic on a byte, word or dword
  (b, { random: r }) => {
    if (b.length < 4) return b;
    const out = Buffer.from(b);
    const at = r.int(out.length - 3);
    const delta = (1 + r.int(35)) * (r.chance(0.5) ? 1 : -1);
    const width = r.int(3);
    if (width === 0) out[at] = ((out[at] as number) + delta) & 0xff;
    else if (width === 1) out.writeUInt16BE((out.readUInt16BE(at) + delta) & 0xffff, at);
    else out.writeUInt32LE((out.readUInt32LE(at) + delta) >>> 0, at);
    return out;
  },
  // delete a block
  (b, { random: r }) => {
    if (b.length < 2) return b;
    const n = 1 + r.size(b.length - 1);
    const at = r.int(b.length - n + 1);
    return Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
  },
  // insert random bytes or a repeated byte
  (b, { random: r }) => {
    const n = 1 + r.size(64);
    const block = r.chance(0.5) ? r.bytes(n) : Buffer.alloc(n, r.int(256));
    const at = r.int(b.length + 1);
    return Buffer.concat([b.subarray(0, at), block, b.subarray(at)]);
  },
  // copy a block of the input elsewhere (overwrite or insert)
  (b, { random: r }) => {
    if (b.length < 2) return b;
    const n = 1 + r.size(b.length - 1);
    const from = r.int(b.length - n + 1);
    const block = Buffer.from(b.subarray(from, from + n));
    const to = r.int(b.length + 1);
    if (r.chance(0.5)) return Buffer.concat([b.subarray(0, to), block, b.subarray(to)]);
    const out = Buffer.from(b);
    block.copy(out, Math.min(to, out.length - 1));
    return out;
  },
  // dictionary token (insert or overwrite)
  (b, { random: r, target }) => {
    const dict = target.dictionary;
    if (!dict || dict.length === 0) return b;
    const token = r.pick(dict);
    const at = r.int(b.length + 1);
    if (r.chance(0.5)) return Buffer.concat([b.subarray(0, at), token, b.subarray(at)]);
    const out = Buffer.from(b);
    token.copy(out, Math.min(at, Math.max(0, out.length - token.length)));
    return out;
  },
  // splice with another corpus entry
  (b, { random: r, corpus }) => {
    if (corpus.length === 0) return b;
    const other = r.pick(corpus);
    return Buffer.concat([
      b.subarray(0, r.int(b.length + 1)),
      other.subarray(r.int(other.length + 1)),
    ]);
  },
  // truncate
  (b, { random: r }) => b.subarray(0, r.int(b.length + 1)),
];

type UnitMutator = (units: Buffer[], ctx: MutationContext) => Buffer[];

const unitMutators: UnitMutator[] = [
  (u, { random: r }) => (u.length === 0 ? u : u.filter((_, i) => i !== r.int(u.length))),
  (u, { random: r }) => {
    if (u.length === 0) return u;
    const i = r.int(u.length);
    return [...u.slice(0, i), u[i] as Buffer, ...u.slice(i)];
  },
  (u, { random: r }) => {
    if (u.length < 2) return u;
    const out = [...u];
    const i = r.int(out.length);
    const j = r.int(out.length);
    [out[i], out[j]] = [out[j] as Buffer, out[i] as Buffer];
    return out;
  },
  // a unit from another input
  (u, ctx) => {
    const codec = ctx.target.units;
    if (!codec || ctx.corpus.length === 0) return u;
    const donor = codec.split(ctx.random.pick(ctx.corpus));
    if (donor.length === 0) return u;
    const at = ctx.random.int(u.length + 1);
    return [...u.slice(0, at), ctx.random.pick(donor), ...u.slice(at)];
  },
  // mutate inside one unit, then repair it
  (u, ctx) => {
    if (u.length === 0) return u;
    const i = ctx.random.int(u.length);
    let unit = ctx.random.pick(byteMutators.slice(0, 8))(u[i] as Buffer, ctx);
    if (ctx.target.units?.fix) unit = ctx.target.units.fix(unit);
    const out = [...u];
    out[i] = unit;
    return out;
  },
];

/** One child of `parent`: a stack of 1-8 mutations, capped to the target's input size. */
export function mutate(parent: Buffer, ctx: MutationContext): Buffer {
  const { random: r, target } = ctx;
  let out = parent;
  const stack = 1 + r.size(7);
  for (let i = 0; i < stack; i++) {
    if (target.units && r.chance(0.4)) {
      out = Buffer.concat(r.pick(unitMutators)(target.units.split(out), ctx));
    } else {
      out = r.pick(byteMutators)(out, ctx);
    }
  }
  return out.length > target.maxInputBytes ? out.subarray(0, target.maxInputBytes) : out;
}
