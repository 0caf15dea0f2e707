/**
 * Hostile-guest fuzzing, deterministic for the unit suite: random bytes and seeded mutations of
 * valid transcripts, through the channel fuzz target (fuzz/targets/channel.ts: its oracles are
 * the channel's contract — at most one fatal ErrProtocol, every operation settled with a typed
 * error, nothing thrown or left unhandled). `npm run fuzz` explores the same target further.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { GuestAgent } from "../../src/channel/index.js";
import { FrameType } from "../../src/channel/contract.js";
import { encodeFrame } from "../../src/channel/frame.js";
import { encodeRecord, field } from "../../src/channel/record.js";
import { mutate } from "../../fuzz/mutate.js";
import { Random } from "../../fuzz/random.js";
import { channelTarget } from "../../fuzz/targets/channel.js";
import { duplexPair, helloFrame, i32pair, u32 } from "./channel-fake-guest.js";
import { collect } from "./channel-setup.js";
import { replayWithoutFindings } from "../helpers/fuzz-replay.js";

const stat = encodeRecord([
  field.string(1, "f"),
  field.u64(2, 1),
  field.u32(3, 0o100644),
  field.u32(4, 0),
  field.u32(5, 0),
  field.u64(6, 0),
]);

/** A valid guest transcript for the operations the sanity test opens (stream ids 1-5). */
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

test("fuzz: random bytes, raw and behind a valid HELLO", async () => {
  const r = new Random(1_000_000);
  const inputs = Array.from({ length: 1500 }, () => {
    const junk = r.bytes(r.int(600));
    return r.chance(0.5) ? junk : Buffer.concat([helloFrame(), junk]);
  });
  await replayWithoutFindings(channelTarget, inputs);
});

test("fuzz: valid transcripts, mutated and truncated", async () => {
  const seeds = await channelTarget.seeds();
  const ctx = { target: channelTarget, random: new Random(2_000_000), corpus: seeds };
  const inputs = Array.from({ length: 2500 }, () => {
    let input = ctx.random.pick(seeds);
    for (let m = 1 + ctx.random.int(3); m > 0; m--) input = mutate(input, ctx);
    return ctx.random.chance(0.3) ? input.subarray(0, ctx.random.int(input.length + 1)) : input;
  });
  await replayWithoutFindings(channelTarget, inputs);
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
