/**
 * The whole host end of the control port: the GuestAgent with operations open on it (exec, file
 * read/write, stat, list, port forward, ping) and the guest's bytes arriving in random chunks.
 * Oracles (the channel's contract, src/channel/channel.ts): at most one fatal error and it is
 * ErrProtocol; once the io ends every operation settles, rejecting only with the channel's
 * typed errors; nothing thrown out of an io event, no unhandled rejection.
 */
import { Duplex, type Readable } from "node:stream";
import { GuestAgent } from "../../src/channel/index.js";
import { FrameType, StartedTag } from "../../src/channel/contract.js";
import { encodeFrame } from "../../src/channel/frame.js";
import { encodeRecord, field } from "../../src/channel/record.js";
import { ErrProtocol, WheellockError } from "../../src/errors.js";
import { Random, chunked, hashBytes } from "../random.js";
import { check, type FuzzTarget } from "../target.js";
import { frameUnits, helloFrame, statRecord } from "./channel-frames.js";

const ALLOWED_CODES = new Set([
  "ErrProtocol",
  "ErrVMNotRunning",
  "ErrFile",
  "ErrExec",
  "ErrClosed",
]);

/** The host side's io: reads what the test pushes, swallows what the channel writes. */
function guestIo(): Duplex {
  return new Duplex({
    read() {},
    write(_chunk, _enc, cb) {
      cb();
    },
  });
}

/** Reads to the end; a reader the host itself destroyed just stops. */
async function drain(r: Readable): Promise<void> {
  try {
    for await (const _ of r) {
      // discard
    }
  } catch (err) {
    if ((err as { code?: string }).code !== "ERR_STREAM_PREMATURE_CLOSE") throw err;
  }
}

function i32pair(a: number, b: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeInt32BE(a, 0);
  out.writeInt32BE(b, 4);
  return out;
}

/** A guest transcript answering the operations `run` opens, in stream-id order 1..7. */
function transcript(): Buffer {
  const started = (id: number) =>
    encodeFrame(FrameType.Started, id, encodeRecord([field.u32(StartedTag.Pid, 40 + id)]));
  return Buffer.concat([
    helloFrame(),
    started(1),
    encodeFrame(FrameType.Stdout, 1, Buffer.from("hello")),
    encodeFrame(FrameType.Stderr, 1, Buffer.from("oops")),
    encodeFrame(FrameType.Credit, 1, Buffer.from([0, 0, 0, 100])),
    encodeFrame(FrameType.Ok, 2),
    encodeFrame(FrameType.Stdout, 3, Buffer.from("file data")),
    encodeFrame(FrameType.Ok, 3, encodeRecord([field.u64(1, 9)])),
    encodeFrame(FrameType.Error, 4, encodeRecord([field.string(1, "denied"), field.u32(2, 13)])),
    encodeFrame(FrameType.Ok, 5, statRecord("f")),
    encodeFrame(FrameType.Ok, 6, encodeRecord([field.record(1, [...fieldsOf(statRecord("a"))])])),
    started(7),
    encodeFrame(FrameType.Stdout, 7, Buffer.from("port data")),
    encodeFrame(FrameType.Eof, 7),
    encodeFrame(FrameType.Exit, 1, i32pair(0, 0)),
    encodeFrame(FrameType.Ok, 7),
  ]);
}

function fieldsOf(record: Buffer): ReturnType<typeof field.bytes>[] {
  const out: ReturnType<typeof field.bytes>[] = [];
  for (let at = 0; at < record.length;) {
    const len = record.readUInt32BE(at + 1);
    out.push(field.bytes(record[at] as number, record.subarray(at + 5, at + 5 + len)));
    at += 5 + len;
  }
  return out;
}

export const channelTarget: FuzzTarget = {
  name: "channel",
  description:
    "Channel: guest frames driving exec, file, list, stat and port streams (src/channel)",
  maxInputBytes: 64 * 1024,
  timeLimitMs: 2000,
  units: frameUnits,
  seeds: () => [transcript(), Buffer.concat([helloFrame(), Buffer.from("junk")])],
  async run(input) {
    const io = guestIo();
    const fatals: Error[] = [];
    const channel = GuestAgent.attach(io, {
      onFatal: (e: Error) => fatals.push(e),
      maxUnknownFrames: 8,
    });
    // Stream ids follow the order of opening: 1 exec, 2 ping, 3 read, 4 write, 5 stat,
    // 6 list, 7 port (the transcript's numbering).
    const exec = channel.exec({ argv: ["x"], env: [] });
    const ops: Promise<unknown>[] = [
      exec.exit,
      drain(exec.stdout),
      drain(exec.stderr),
      channel.ping(),
      drain(channel.readFile("/f")),
      channel.writeFile({ path: "/w" }, Buffer.alloc(1000, 1)),
      channel.stat("/f"),
      channel.listFiles("/"),
    ];
    const port = channel.forwardPort(8080);
    for (const s of [exec.stdin, port.writable, exec.stdout]) s.on("error", () => undefined);
    ops.push(port.connected, port.done, drain(port.readable));
    // What the host side does meanwhile (a user stopping a command, abandoning a reader,
    // writing stdin), at points chosen per input: paths the guest alone cannot reach.
    const stdout = exec.stdout;
    const hostActions: (() => void)[] = [
      () => exec.signal(15),
      () => exec.resize(24, 80),
      () => exec.close(),
      () => stdout.destroy(),
      () => port.close(),
      () => exec.stdin.write(Buffer.alloc(100_000, 0x61)),
      () => exec.stdin.end(),
      () => port.writable.write(Buffer.alloc(300_000, 0x62)),
    ];
    const host = new Random(hashBytes(input));
    for (const chunk of chunked(input)) {
      io.push(chunk);
      if (host.chance(0.2)) host.pick(hostActions)();
    }
    io.push(null);
    const results = await Promise.allSettled(ops);
    check(channel.closed, "channel still open after its io ended");
    check(fatals.length <= 1, `${fatals.length} fatal errors`);
    if (fatals[0] !== undefined)
      check(
        fatals[0] instanceof ErrProtocol,
        `fatal error is not ErrProtocol: ${String(fatals[0])}`,
      );
    for (const r of results) {
      if (r.status === "fulfilled") continue;
      const reason: unknown = r.reason;
      check(
        reason instanceof WheellockError && ALLOWED_CODES.has(reason.code),
        `operation rejected with ${String(reason)}`,
      );
    }
  },
};
