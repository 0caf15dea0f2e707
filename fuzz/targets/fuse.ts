/**
 * The FUSE port: the guest kernel's request stream through FuseServer.attach (framer, bounded
 * body reader, dispatch, in-flight accounting) against a memory provider behind a router with
 * a read-only subtree. Oracles: the server never throws; it answers every request that takes
 * a reply exactly once, with its `unique`, a correct length field and an errno in range,
 * unless it declared the stream corrupt (and then it stops); it goes idle (no hang).
 */
import { Duplex } from "node:stream";
import {
  FuseFramer,
  FuseServer,
  MemoryProvider,
  ReadOnlyProvider,
  RouterProvider,
  encodeRequest,
} from "../../src/vfs/index.js";
import {
  Opcode,
  RELAY_ANSWERED_FLAG,
  RELAY_BEHIND_DONE,
  RELAY_NODE_ATTR,
  RELAY_SYNC_WRITES,
  RelayCode,
} from "../../src/vfs/fuse-constants.js";
import { chunked, hashBytes } from "../random.js";
import { check, splitByLength, type FuzzTarget, type UnitCodec } from "../target.js";

const NO_REPLY = new Set<number>([Opcode.FORGET, Opcode.BATCH_FORGET, Opcode.INTERRUPT]);
const IN_HEADER_BYTES = 40;
const OUT_HEADER_BYTES = 16;
const ROOT = 1n;

let unique = 1n;
function req(opcode: number, nodeid: bigint, ...body: Buffer[]): Buffer {
  return encodeRequest(
    { opcode, unique: unique++, nodeid, uid: 0, gid: 0, pid: 1 },
    Buffer.concat(body),
  );
}
const cstr = (s: string): Buffer => Buffer.from(`${s}\0`);
function u32(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32LE(v >>> 0, i * 4));
  return b;
}
function u64(...values: (number | bigint)[]): Buffer {
  const b = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => b.writeBigUInt64LE(BigInt(v), i * 8));
  return b;
}

/** A session as the kernel would run it; node ids and handles as the server hands them out. */
function session(): Buffer {
  unique = 1n;
  const dir = 2n; // first node id the server gives out
  const file = 3n;
  const fh = 1n; // first handle
  return Buffer.concat([
    req(Opcode.INIT, 0n, u32(7, 31, 1 << 20, 0xffffffff), Buffer.alloc(48)),
    req(Opcode.MKDIR, ROOT, u32(0o755, 0), cstr("d")),
    req(Opcode.CREATE, dir, u32(2, 0o644, 0, 0), cstr("f")),
    req(Opcode.WRITE, 0n, u64(fh, 0), u32(5, 0), u64(0), u32(0, 0), Buffer.from("hello")),
    req(Opcode.READ, 0n, u64(fh, 0), u32(4096, 0), u64(0), u32(0, 0)),
    req(
      Opcode.SETATTR,
      file,
      u32(1 << 3, 0),
      u64(fh, 2, 0, 0, 0, 0),
      u32(0, 0, 0, 0o600, 0, 0, 0, 0),
    ),
    req(Opcode.GETATTR, file, u32(0, 0), u64(0)),
    req(Opcode.LOOKUP, dir, cstr("f")),
    req(Opcode.SYMLINK, dir, cstr("l"), cstr("../f")),
    req(Opcode.READLINK, 4n),
    req(Opcode.LINK, dir, u64(file), cstr("h")),
    req(Opcode.RENAME2, dir, u64(ROOT), u32(0, 0), cstr("h"), cstr("moved")),
    req(Opcode.OPENDIR, dir, u32(0, 0)),
    req(Opcode.READDIR, dir, u64(2n, 0), u32(4096, 0), u64(0), u32(0, 0)),
    req(Opcode.READDIRPLUS, dir, u64(2n, 0), u32(4096, 0), u64(0), u32(0, 0)),
    req(Opcode.RELEASEDIR, dir, u64(2n), u32(0, 0), u64(0)),
    req(Opcode.STATFS, ROOT),
    req(Opcode.ACCESS, file, u32(4, 0)),
    req(Opcode.FSYNC, 0n, u64(fh), u32(0, 0)),
    req(Opcode.FLUSH, file, u64(fh), u32(0, 0), u64(0)),
    req(Opcode.RELEASE, 0n, u64(fh), u32(0, 0), u64(0)),
    req(Opcode.OPEN, file, u32(0, 0)),
    req(Opcode.LOOKUP, ROOT, cstr("ro")),
    req(Opcode.MKNOD, dir, u32(0o10644, 0, 0, 0), cstr("fifo")),
    req(Opcode.UNLINK, dir, cstr("f")),
    req(Opcode.RMDIR, ROOT, cstr("d")),
    req(Opcode.FORGET, file, u64(1)),
    req(Opcode.BATCH_FORGET, 0n, u32(2, 0), u64(dir, 1, 4n, 1)),
    req(Opcode.INTERRUPT, 0n, u64(5)),
    req(Opcode.GETXATTR, ROOT, u32(0, 0), cstr("user.x")),
    req(Opcode.DESTROY, 0n),
  ]);
}

/** What the server may write to the guest's relay with unique 0 (never a kernel reply). */
const RELAY_PUSH_CODES = new Set<number>([
  RELAY_BEHIND_DONE,
  RELAY_NODE_ATTR,
  RELAY_SYNC_WRITES,
  ...Object.values(RelayCode),
]);

export const fuseUnits: UnitCodec = {
  split: (input) => splitByLength(input, IN_HEADER_BYTES, (b, at) => b.readUInt32LE(at)),
  fix: (unit) => {
    if (unit.length < 4) return unit;
    const out = Buffer.from(unit);
    out.writeUInt32LE(unit.length, 0);
    return out;
  },
};

interface Expected {
  uniques: Map<bigint, number>;
}

/** What the server should answer, from an independent framing of the same bytes. */
function expectedReplies(input: Buffer): Expected {
  const uniques = new Map<bigint, number>();
  const framer = new FuseFramer(
    (r) => {
      if (NO_REPLY.has(r.header.opcode)) return;
      // Marked as answered by the relay (write-behind): the host reports it in a
      // RELAY_BEHIND_DONE message instead of a reply of its own.
      if (((r.header.relayFlags ?? 0) & RELAY_ANSWERED_FLAG) !== 0) return;
      uniques.set(r.header.unique, (uniques.get(r.header.unique) ?? 0) + 1);
    },
    () => undefined,
  );
  framer.push(input);
  return { uniques };
}

async function settle(server: FuseServer): Promise<void> {
  let idleTurns = 0;
  while (idleTurns < 3) {
    await new Promise((resolve) => setImmediate(resolve));
    idleTurns = server.counts.inFlight === 0 ? idleTurns + 1 : 0;
  }
}

export const fuseTarget: FuzzTarget = {
  name: "fuse",
  description: "FUSE request stream into FuseServer over a memory provider (src/vfs)",
  maxInputBytes: 256 * 1024,
  timeLimitMs: 2000,
  units: fuseUnits,
  dictionary: [cstr("ro"), cstr(".."), cstr("a/b"), u64(1), u64(2), u64(3), u64(1n << 63n)],
  seeds: () => [session()],
  async run(input) {
    const replies: Buffer[] = [];
    let corrupt: Error | undefined;
    const io = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        replies.push(chunk);
        cb();
      },
    });
    const server = new FuseServer({
      provider: new RouterProvider({
        "/": new MemoryProvider({ maxBytes: 4 * 1024 * 1024 }),
        "/ro": new ReadOnlyProvider(new MemoryProvider()),
      }),
      maxHandles: 64,
      onError: (err) => (corrupt = err),
    });
    server.attach(io);
    // Half the inputs arrive as one burst (requests served concurrently, flow control);
    // the rest request by request, each after the previous was answered, as a kernel sends
    // requests that depend on earlier replies.
    if (hashBytes(input) % 2 === 0) {
      for (const chunk of chunked(input)) io.push(chunk);
      await settle(server);
    } else {
      for (const unit of fuseUnits.split(input)) {
        io.push(unit);
        await settle(server);
      }
    }
    await server.close();
    if (corrupt !== undefined) return;
    const expected = expectedReplies(input).uniques;
    const stream = Buffer.concat(replies);
    for (let at = 0; at < stream.length;) {
      check(stream.length - at >= OUT_HEADER_BYTES, "truncated reply header");
      const length = stream.readUInt32LE(at);
      const error = stream.readInt32LE(at + 4);
      const id = stream.readBigUInt64LE(at + 8);
      check(length >= OUT_HEADER_BYTES && at + length <= stream.length, `reply length ${length}`);
      if (id === 0n && RELAY_PUSH_CODES.has(error)) {
        // A message for the guest's relay (written before a reply), never for the kernel.
        at += length;
        continue;
      }
      check(error <= 0 && error > -4096, `errno ${error} out of range`);
      check(error === 0 || length === OUT_HEADER_BYTES, "an error reply carries a payload");
      const left = expected.get(id) ?? 0;
      check(left > 0, `reply for unique ${id}, which no request (still) awaits`);
      expected.set(id, left - 1);
      at += length;
    }
    for (const [id, left] of expected) check(left === 0, `request ${id} never answered`);
  },
};
