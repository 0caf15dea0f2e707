/**
 * Runs inputs through a fuzz target with the fuzzer's own harness (its oracles, unhandled
 * rejections and leaked listeners count as findings), for deterministic unit tests.
 */
import assert from "node:assert/strict";
import { Engine } from "../../fuzz/engine.js";
import type { Finding } from "../../fuzz/findings.js";
import type { FuzzTarget } from "../../fuzz/target.js";

/** Replays every input once and fails with the findings, if any. */
export async function replayWithoutFindings(
  target: FuzzTarget,
  inputs: readonly Buffer[],
): Promise<void> {
  const findings: Finding[] = [];
  const engine = new Engine({
    target,
    seed: 1,
    deadlineMs: Date.now() + 60_000,
    coverage: "off",
    extraInputs: [],
    onInput: () => undefined,
    onFinding: (f) => findings.push(f),
  });
  const stats = await engine.replay(inputs);
  assert.equal(stats.execs, inputs.length);
  assert.deepEqual(
    findings.map((f) => `${f.kind}: ${f.message}`),
    [],
  );
}
