import { test } from "node:test";
import assert from "node:assert/strict";
import { SyncGate } from "../../src/vfs/providers/sync-gate.js";

/** A gate on a fake clock; each `fast` call advances the clock by `took` ms. */
function gateWith(options: { slowCalls?: number; stallMs?: number } = {}) {
  let now = 0;
  const gate = new SyncGate({ ...options, slowMs: 1, backoffMs: 1000, now: () => now });
  const run = async (took: number): Promise<"sync" | "pool"> =>
    gate.call(
      () => {
        now += took;
        return "sync" as const;
      },
      async () => "pool" as const,
    );
  return { gate, run, advance: (ms: number) => (now += ms) };
}

test("sync gate: fast calls stay on the loop; a few preempted ones do not close it", async () => {
  const { run } = gateWith();
  for (let i = 0; i < 100; i++) assert.equal(await run(i % 10 === 0 ? 30 : 0.01), "sync");
});

test("sync gate: 8 slow calls of the last 32 close it for the backoff, then it opens again", async () => {
  const { gate, run, advance } = gateWith();
  for (let i = 0; i < 7; i++) assert.equal(await run(5), "sync");
  assert.equal(gate.open, true);
  assert.equal(await run(5), "sync", "the eighth still ran");
  assert.equal(gate.open, false);
  assert.equal(await run(0), "pool");
  advance(1001);
  assert.equal(gate.open, true);
  assert.equal(await run(0.01), "sync", "the count starts afresh");
});

test("sync gate: one stalled call closes it at once", async () => {
  const { gate, run } = gateWith({ stallMs: 100 });
  assert.equal(await run(150), "sync");
  assert.equal(gate.open, false);
  assert.equal(await run(0), "pool");
});

test("sync gate: an error of the synchronous call rejects like the pool's would", async () => {
  const gate = new SyncGate();
  await assert.rejects(
    gate.call(
      () => {
        throw Object.assign(new Error("x"), { code: "ENOENT" });
      },
      async () => 1,
    ),
    { code: "ENOENT" },
  );
});
