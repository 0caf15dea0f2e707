// A client that does not read its exec output pauses the connection (so the node pauses the
// guest), once: messages already read when it paused are queued, not answered with another
// pause and 'drain' listener each (with many small frames that was a
// MaxListenersExceededWarning in bench/remote.ts), and reading again resumes it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { deliverOrPause } from "../../src/remote/protocol.js";

test("a full reader pauses the source once and resumes it when drained", async () => {
  const target = new PassThrough({ highWaterMark: 4 });
  const calls: string[] = [];
  const source = { pause: () => calls.push("pause"), resume: () => calls.push("resume") };
  for (let i = 0; i < 50; i++) deliverOrPause(target, Buffer.from("0123456789"), source);
  assert.equal(target.listenerCount("drain"), 1);
  assert.ok(!calls.includes("resume"));
  let read = 0;
  target.on("data", (c: Buffer) => (read += c.length));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(read, 500, "nothing delivered is dropped");
  assert.equal(calls.at(-1), "resume");
  assert.equal(target.listenerCount("drain"), 0);
  // Full again later: a new pause, a new single waiter.
  const slow = new PassThrough({ highWaterMark: 4 });
  deliverOrPause(slow, Buffer.from("0123456789"), source);
  deliverOrPause(slow, Buffer.from("0123456789"), source);
  assert.equal(slow.listenerCount("drain"), 1);
});

test("without a connection yet, data is only queued", () => {
  const target = new PassThrough({ highWaterMark: 4 });
  deliverOrPause(target, Buffer.from("0123456789"), undefined);
  assert.equal(target.listenerCount("drain"), 0);
  assert.equal(target.readableLength, 10);
});
