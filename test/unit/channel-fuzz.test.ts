/**
 * Hostile-guest fuzzing: random bytes and mutated valid transcripts, fed in random chunk
 * sizes. Whatever arrives, the channel must end in one of two ways — fine, or exactly one
 * fatal ErrProtocol — with every operation settled, and nothing thrown or left unhandled.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestAgent } from "../../src/channel/index.js";
import { FrameType } from "../../src/channel/contract.js";
import { encodeFrame } from "../../src/channel/frame.js";
import { encodeRecord, field } from "../../src/channel/record.js";
import { ErrProtocol, WheellockError } from "../../src/errors.js";
import { duplexPair, helloFrame, i32pair, u32 } from "./channel-fake-guest.js";
import { collect, until } from "./channel-setup.js";
import { mulberry32 } from "../helpers/seeded-random.js";

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const randomBytes = (r: Rand, n: number): Buffer =>
  Buffer.from(Array.from({ length: n }, () => int(r, 256)));

const stat = encodeRecord([
  field.string(1, "f"),
  field.u64(2, 1),
  field.u32(3, 0o100644),
  field.u32(4, 0),
  field.u32(5, 0),
  field.u64(6, 0),
]);

/** A valid guest transcript for the operations `drive` opens (stream ids 1-5). */
function transcript(): Buffer[] {
  return [
    helloFrame(),
    encodeFrame(FrameType.Started, 1, encodeRecord([field.u32(1, 7)])),
    encodeFrame(FrameType.Stdout, 1, Buffer.from("hello")),
    encodeFrame(FrameType.Stderr, 1, Buffer.from("oops")),
    encodeFrame(FrameType.Credit, 1, u32(100)),
    encodeFrame(FrameType.Ok, 2),
    encodeFrame(FrameType.Stdout, 3, Buffer.from("file data")),
    encodeFrame(FrameType.Ok, 3, encodeRecord([field.u64(1, 9)])),
    encodeFrame(FrameType.Exit, 1, i32pair(0, 0)),
    encodeFrame(FrameType.Ok, 5, stat),
    encodeFrame(FrameType.Error, 4, encodeRecord([field.string(1, "denied"), field.u32(2, 13)])),
  ];
}

function mutate(r: Rand, frames: Buffer[]): Buffer {
  const list = [...frames];
  for (let m = 1 + int(r, 3); m > 0; m--) {
    const i = int(r, list.length);
    const f = list[i] ?? Buffer.alloc(0);
    switch (int(r, 5)) {
      case 0: // duplicate a frame (HELLO twice, EXIT twice, ...)
        list.splice(i, 0, f);
        break;
      case 1: // drop a frame
        list.splice(i, 1);
        break;
      case 2: // swap with a neighbour
        if (i + 1 < list.length) [list[i], list[i + 1]] = [list[i + 1] ?? f, f];
        break;
      case 3: {
        // flip bytes
        const copy = Buffer.from(f);
        for (let k = 1 + int(r, 3); k > 0 && copy.length > 0; k--)
          copy[int(r, copy.length)] = int(r, 256);
        list[i] = copy;
        break;
      }
      default: // insert garbage
        list.splice(i, 0, randomBytes(r, 1 + int(r, 20)));
    }
  }
  const all = Buffer.concat(list);
  return r() < 0.3 ? all.subarray(0, int(r, all.length + 1)) : all; // truncate
}

const ALLOWED_CODES = new Set([
  "ErrProtocol",
  "ErrVMNotRunning",
  "ErrFile",
  "ErrExec",
  "ErrClosed",
]);

async function drive(seed: number, bytes: (r: Rand) => Buffer): Promise<void> {
  const r = mulberry32(seed);
  const [hostIo, guestIo] = duplexPair();
  guestIo.resume();
  const fatals: Error[] = [];
  const channel = GuestAgent.attach(hostIo, {
    onFatal: (e) => fatals.push(e),
    maxUnknownFrames: 8,
  });
  const p = channel.exec({ argv: ["x"], env: [] });
  // `hello` and `started` are deliberately not awaited: a user who ignores them must not get
  // an unhandled rejection when the guest misbehaves.
  const ops: Promise<unknown>[] = [
    p.exit,
    collect(p.stdout),
    collect(p.stderr),
    channel.ping(),
    collect(channel.readFile("/f")),
    channel.writeFile({ path: "/w" }, Buffer.alloc(1000, 1)),
    channel.stat("/f"),
  ];
  const input = bytes(r);
  for (let off = 0; off < input.length;) {
    const n = 1 + int(r, r() < 0.5 ? 16 : 4096);
    guestIo.write(input.subarray(off, off + n));
    off += n;
  }
  guestIo.end();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`seed ${seed}: operations still pending`)), 5000);
  });
  const results = await Promise.race([Promise.allSettled(ops), timeout]);
  // Every operation may have completed before the io's end reached the host: wait for it.
  await Promise.race([until(() => channel.closed, `seed ${seed}: close after io end`), timeout]);
  clearTimeout(timer);
  assert.ok(fatals.length <= 1, `seed ${seed}: ${fatals.length} fatal errors`);
  if (fatals.length === 1)
    assert.ok(fatals[0] instanceof ErrProtocol, `seed ${seed}: fatal ${String(fatals[0])}`);
  assert.equal(channel.closed, true, `seed ${seed}: channel should be closed after the io ended`);
  for (const res of results) {
    if (res.status === "fulfilled") continue;
    const reason: unknown = res.reason;
    assert.ok(
      reason instanceof WheellockError && ALLOWED_CODES.has(reason.code),
      `seed ${seed}: unexpected rejection ${String(reason)}`,
    );
  }
}

function watchProcess(): { problems: unknown[]; stop: () => void } {
  const problems: unknown[] = [];
  const onProblem = (err: unknown): void => {
    problems.push(err);
  };
  process.on("unhandledRejection", onProblem);
  process.on("uncaughtException", onProblem);
  return {
    problems,
    stop: () => {
      process.off("unhandledRejection", onProblem);
      process.off("uncaughtException", onProblem);
    },
  };
}

async function runMany(count: number, baseSeed: number, bytes: (r: Rand) => Buffer): Promise<void> {
  const watch = watchProcess();
  try {
    const batch = 25;
    for (let i = 0; i < count; i += batch) {
      await Promise.all(
        Array.from({ length: Math.min(batch, count - i) }, (_, k) =>
          drive(baseSeed + i + k, bytes),
        ),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(watch.problems, []);
  } finally {
    watch.stop();
  }
}

test("fuzz: random bytes, raw and behind a valid HELLO", async () => {
  await runMany(1500, 1_000_000, (r) => {
    const junk = randomBytes(r, int(r, 600));
    return r() < 0.5 ? junk : Buffer.concat([helloFrame(), junk]);
  });
});

test("fuzz: valid transcripts, mutated and truncated", async () => {
  await runMany(2500, 2_000_000, (r) => mutate(r, transcript()));
});

test("fuzz sanity: the unmutated transcript completes every operation", async () => {
  const [hostIo, guestIo] = duplexPair();
  guestIo.resume();
  const fatals: Error[] = [];
  const channel = GuestAgent.attach(hostIo, { onFatal: (e) => fatals.push(e) });
  const p = channel.exec({ argv: ["x"], env: [] });
  const out = collect(p.stdout);
  const ping = channel.ping();
  const file = collect(channel.readFile("/f"));
  const write = channel.writeFile({ path: "/w" }, Buffer.alloc(10));
  const st = channel.stat("/f");
  for (const f of transcript()) guestIo.write(f);
  assert.equal((await out).toString(), "hello");
  assert.deepEqual(await p.exit, { exitCode: 0, signal: 0 });
  await ping;
  assert.equal((await file).toString(), "file data");
  await assert.rejects(write, /denied/);
  await st;
  assert.deepEqual(fatals, []);
  channel.close();
});
