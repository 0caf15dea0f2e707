/**
 * The fuzzer finds what it claims to find: deliberately broken targets (fuzz/targets/
 * selftest.ts) run through the same supervisor as `npm run fuzz`, in worker threads.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Finding } from "../../fuzz/findings.js";
import { superviseTarget, type TargetRun } from "../../fuzz/supervisor.js";

async function replay(
  target: string,
  input: string | Buffer,
  over: Partial<TargetRun> = {},
): Promise<Finding[]> {
  const findings: Finding[] = [];
  await superviseTarget({
    target,
    seed: 1,
    timeMs: 30_000,
    coverage: "off",
    inputs: [Buffer.from(input)],
    replay: true,
    hangMs: 1000,
    onFinding: (f) => findings.push(f),
    ...over,
  });
  return findings;
}

test("an exception out of the target is a crash, with its stack and input", async () => {
  const [f, ...rest] = await replay("selftest-throw", "xxBUGxx");
  assert.deepEqual(rest, []);
  assert.equal(f?.kind, "crash");
  assert.match(f?.message ?? "", /^TypeError: found the bug/);
  assert.match(f?.stack ?? "", /selftest\.ts/);
  assert.equal(f?.input.toString(), "xxBUGxx");
  assert.deepEqual(await replay("selftest-throw", "fine"), []);
});

test("a broken invariant and an unhandled rejection are crashes", async () => {
  assert.match((await replay("selftest-invariant", "!x"))[0]?.message ?? "", /starts with !/);
  const [f] = await replay("selftest-unhandled", "?");
  assert.equal(f?.kind, "crash");
  assert.match(f?.message ?? "", /uncaught: RangeError: nobody listens/);
});

test("a synchronous hang is seen from outside the worker and reported with its input", async () => {
  const [f] = await replay("selftest-sync-hang", Buffer.from([0xff, 1, 2]));
  assert.equal(f?.kind, "hang");
  assert.deepEqual([...(f?.input ?? [])], [0xff, 1, 2]);
  // Seen by the no-progress watch (after hangMs), not by the fallback that kills a worker still
  // running long after the run's deadline: which of the two fired is in the message. (This
  // was a 15 s wall-clock bound, which a loaded machine's slow worker start could exceed.)
  assert.match(f?.message ?? "", /^no progress for \d+ ms: the input never returned/);
});

test("an input that never settles is a hang after the target's time limit", async () => {
  const [f] = await replay("selftest-async-hang", Buffer.from([0xfe]));
  assert.equal(f?.kind, "hang");
  assert.match(f?.message ?? "", /300 ms/);
});

test("an input that exhausts the worker's heap is an oom finding", async () => {
  // Hang detection off for this one: near its heap limit a loaded machine's worker can spend
  // seconds in GC before it dies.
  const [f] = await replay("selftest-oom", "#", { heapMb: 64, hangMs: 60_000 });
  assert.equal(f?.kind, "oom");
  assert.equal(f?.input.toString(), "#");
});

test("heap growth over a run is a memory finding; a clean target has none", async () => {
  const run = async (target: string, timeMs: number, stopOn?: Finding["kind"]) => {
    const findings: Finding[] = [];
    const stop = new AbortController();
    const result = await superviseTarget({
      target,
      seed: 1,
      timeMs,
      heapGrowthLimitMb: 16,
      coverage: "off",
      inputs: [],
      replay: false,
      heapMb: 4096,
      signal: stop.signal,
      onFinding: (f) => {
        findings.push(f);
        if (f.kind === stopOn) stop.abort();
      },
    });
    assert.ok(result.stats.execs > 10);
    return findings;
  };
  // The leak is found however slowly a loaded machine starts the worker and runs the heap
  // checks (at load ~25 a worker needed most of 8 s to start): the run may take up to two
  // minutes and ends as soon as the finding arrives. The clean target runs alongside for long
  // enough to have heap checks (the first after 1.5 s of fuzzing, then one a second) even
  // after such a start, with the same low threshold.
  const [leak, clean] = await Promise.all([
    run("selftest-leak", 120_000, "memory"),
    run("selftest-throw", 15_000),
  ]);
  assert.deepEqual(
    leak.map((f) => f.kind),
    ["memory"],
  );
  assert.deepEqual(clean, []);
});
