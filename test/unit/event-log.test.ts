// The VM tests' event recorder: waiting for an event that never comes must end, with a clear
// failure, when the stream ends (the fork test once spun at 100% CPU on an ended stream).
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventHub, type SandboxEvent } from "../../src/sandbox/events.js";
import { recordEvents, waitForEvent } from "../helpers/event-log.js";

const exec: SandboxEvent = {
  type: "exec",
  timestamp: new Date(),
  exec: { execId: 1, command: ["true"], exitCode: 0, durationMs: 1 },
};
const isNetwork = (e: SandboxEvent): boolean => e.type === "network";

test("a stream that ends without the event fails at once, naming what it carried", async () => {
  const hub = new EventHub();
  const log = recordEvents({ events: () => hub.subscribe() });
  hub.emit(exec);
  setTimeout(() => hub.end(), 50);
  const started = Date.now();
  await assert.rejects(
    waitForEvent(log, "a network event", isNetwork, 10_000),
    /event stream ended before a network event; it carried: exec/,
  );
  assert.ok(Date.now() - started < 5000, "failed at the end, not at the deadline");
  assert.equal(log.ended, true);
});

test("an event that comes later is found; one that never comes fails at the deadline", async () => {
  const hub = new EventHub();
  const log = recordEvents({ events: () => hub.subscribe() });
  setTimeout(() => hub.emit(exec), 50);
  assert.equal(await waitForEvent(log, "an exec", (e) => e.type === "exec", 10_000), exec);
  await assert.rejects(waitForEvent(log, "a network event", isNetwork, 300), /timed out/);
  await log.stop();
  assert.equal(log.ended, true);
});
