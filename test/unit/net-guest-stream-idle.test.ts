/**
 * The guest flow's idle timeout (what Node's HTTP server arms through `socket.setTimeout`):
 * it fires after that long with no bytes either way, never while bytes keep moving, and
 * `setTimeout(0)` turns it off.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { GuestStream } from "../../src/net/intercept/guest-stream.js";
import { waitUntil } from "../helpers/lifecycle.js";

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
  // The timeout is long next to the 20 ms between chunks, so that a loaded machine (which
  // can stall this loop for hundreds of milliseconds) never leaves a real quiet period.
  stream.setTimeout(1500, () => timeouts++);
  const started = performance.now();
  // Bytes both ways every 20 ms for 3 s: twice the timeout, never quiet for 1.5 s.
  while (performance.now() - started < 3000) {
    stream.fromGuest(Buffer.from("g"), () => undefined);
    stream.write(Buffer.from("h"));
    await sleep(20);
  }
  assert.equal(timeouts, 0, "no timeout while bytes flow");
  await waitUntil("the idle timeout fires", () => timeouts > 0);
  await sleep(200);
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
