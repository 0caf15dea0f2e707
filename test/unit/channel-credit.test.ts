import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { FrameType, GUEST_WINDOW, INITIAL_WINDOW } from "../../src/channel/contract.js";
import { collect, pattern, setup, tick, until } from "./channel-setup.js";
import { PROMPTLY_MS } from "../helpers/timing.js";

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/** Waits until the guest has sent nothing new for `quietMs`. */
async function settle(read: () => number, quietMs = 60): Promise<number> {
  let last = -1;
  while (read() !== last) {
    last = read();
    await tick(quietMs);
  }
  return last;
}

test("a flooding guest gets one window through while nobody reads, the rest once the reader reads", async () => {
  const { channel, guest } = setup();
  const total = 4 * GUEST_WINDOW;
  const p = channel.exec({ argv: ["flood", String(total), "10000"], env: [] });
  await p.started;
  assert.equal(await settle(() => guest.bytesSentToHost), GUEST_WINDOW);
  assert.equal(p.stdout.readableLength, GUEST_WINDOW, "host buffers exactly one window");
  assert.equal(
    guest.received.filter((f) => f.type === FrameType.Credit).length,
    0,
    "no CREDIT without a reader",
  );

  // Reading a little returns credit only for what was read (batched), not for the whole window.
  p.stdout.read(GUEST_WINDOW / 2);
  const afterHalf = await settle(() => guest.bytesSentToHost);
  assert.ok(
    afterHalf > GUEST_WINDOW && afterHalf <= GUEST_WINDOW + GUEST_WINDOW / 2,
    `sent ${afterHalf}`,
  );

  const out = await collect(p.stdout);
  assert.equal(out.length + GUEST_WINDOW / 2, total);
  assert.deepEqual(await p.exit, { exitCode: 0, signal: 0 });
  assert.ok(
    Buffer.concat([pattern(total, 1).subarray(0, GUEST_WINDOW / 2), out]).equals(pattern(total, 1)),
  );
  channel.close();
});

test("host stdin never exceeds the window; write callbacks wait for credit", async () => {
  const { channel, guest } = setup();
  guest.autoCredit = false;
  const p = channel.exec({ argv: ["cat"], env: [] });
  await p.started;
  const chunk = Buffer.alloc(100_000, 9);
  let callbacks = 0;
  for (let i = 0; i < 5; i++) p.stdin.write(chunk, () => callbacks++);
  p.stdin.end();
  const sentToGuest = (): number => guest.stream(1).stdin.reduce((n, b) => n + b.length, 0);
  assert.equal(await settle(sentToGuest), INITIAL_WINDOW);
  assert.equal(callbacks, 2, "only writes fully inside the window completed");
  assert.ok(p.stdin.writableLength > 0, "the rest waits in the Writable");
  assert.equal(p.stdin.writableFinished, false);
  assert.deepEqual(guest.violations, []);

  for (let round = 0; sentToGuest() < 500_000; round++) {
    assert.ok(round < 20, "stdin stalled");
    guest.releaseStdin(1);
    await settle(sentToGuest, 20);
    assert.ok(guest.stream(1).stdinOutstanding <= INITIAL_WINDOW);
  }
  guest.releaseStdin(1);
  const out = await collect(p.stdout);
  assert.equal(out.length, 500_000);
  assert.equal(callbacks, 5);
  assert.deepEqual(guest.violations, []);
  channel.close();
});

test("writeFile and readFile move 20 MB intact within the windows", async () => {
  const { channel, guest } = setup();
  const data = pattern(20 * 1024 * 1024, 5);
  await channel.writeFile({ path: "/data/big.bin", mode: 0o600 }, data);
  assert.equal(sha256(guest.files.get("/data/big.bin") ?? Buffer.alloc(0)), sha256(data));

  // Same again from a Readable in odd-sized chunks.
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let off = 0; off < data.length; off += 777_777) yield data.subarray(off, off + 777_777);
  }
  await channel.writeFile({ path: "/data/big2.bin" }, Readable.from(chunks()));
  assert.equal(sha256(guest.files.get("/data/big2.bin") ?? Buffer.alloc(0)), sha256(data));

  const started = Date.now();
  const back = await collect(channel.readFile("/data/big.bin"));
  assert.equal(sha256(back), sha256(data));
  assert.deepEqual(guest.violations, []);
  // A credit stall is a hang (nothing in the channel recovers by timer); the bound catches it
  // without measuring a loaded machine.
  assert.ok(Date.now() - started < 6 * PROMPTLY_MS);
  channel.close();
});

test("a failing writeFile source abandons the stream with CLOSE", async () => {
  const { channel, guest } = setup();
  async function* broken(): AsyncGenerator<Buffer> {
    yield Buffer.from("partial");
    throw new Error("source broke");
  }
  await assert.rejects(channel.writeFile({ path: "/x" }, broken()), /source broke/);
  await until(() => guest.received.some((f) => f.type === FrameType.Close), "CLOSE");
  assert.equal(
    guest.received.some((f) => f.type === FrameType.Eof),
    false,
    "no EOF for a broken source",
  );
  channel.close();
});

test("destroying a readFile stream early sends CLOSE", async () => {
  const { channel, guest } = setup();
  guest.files.set("/f", pattern(2_000_000, 3));
  const r = channel.readFile("/f");
  await new Promise((resolve) => r.once("readable", resolve));
  r.destroy();
  await until(() => guest.received.some((f) => f.type === FrameType.Close), "CLOSE");
  assert.equal(channel.closed, false);
  await channel.ping();
  channel.close();
});
