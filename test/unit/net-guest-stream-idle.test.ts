/**
 * The guest flow's idle timeout (what Node's HTTP server arms through `socket.setTimeout`):
 * it fires after that long with no bytes either way, never while bytes keep moving, and
 * `setTimeout(0)` turns it off.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { GuestStream } from "../../src/net/intercept/guest-stream.js";

const quietEvents = {
  onConnect: () => undefined,
  onData: () => undefined,
  onEnd: () => undefined,
  onDrain: () => undefined,
  onError: () => undefined,
};

test("the idle timeout fires after a quiet period, not while bytes flow, and 0 disables it", async () => {
  const stream = new GuestStream(quietEvents);
  stream.on("data", () => undefined);
  let timeouts = 0;
  stream.setTimeout(400, () => timeouts++);
  const started = performance.now();
  // Bytes both ways every 20 ms for 1.2 s: three times the timeout, never quiet for 400 ms.
  while (performance.now() - started < 1200) {
    stream.fromGuest(Buffer.from("g"), () => undefined);
    stream.write(Buffer.from("h"));
    await sleep(20);
  }
  assert.equal(timeouts, 0, "no timeout while bytes flow");
  await sleep(1000);
  assert.equal(timeouts, 1, "one timeout after a quiet period");

  const off = new GuestStream(quietEvents);
  let offTimeouts = 0;
  off.setTimeout(50, () => offTimeouts++);
  off.setTimeout(0);
  await sleep(150);
  assert.equal(offTimeouts, 0);
  stream.destroy();
  off.destroy();
});
