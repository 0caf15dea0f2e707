/**
 * Every committed fuzz input (fuzz/corpus/<target>/) and every target's generated seeds run
 * clean: the corpus doubles as a regression suite for the host parsers, in seconds. Inputs
 * that once crashed a parser are added there when their bug is fixed.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { TARGET_NAMES, loadTarget } from "../../fuzz/targets/index.js";
import { replayWithoutFindings } from "../helpers/fuzz-replay.js";

const CORPUS = join(import.meta.dirname, "../../fuzz/corpus");

function committed(target: string): Buffer[] {
  let names: string[] = [];
  try {
    names = readdirSync(join(CORPUS, target));
  } catch {
    // no corpus yet
  }
  return names.sort().map((n) => readFileSync(join(CORPUS, target, n)));
}

for (const name of TARGET_NAMES) {
  test(`fuzz corpus of ${name} replays without findings`, async () => {
    const target = await loadTarget(name);
    const inputs = [...(await target.seeds()), ...committed(name)];
    await replayWithoutFindings(target, inputs);
  });
}
