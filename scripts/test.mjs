#!/usr/bin/env node
// Runs the test suite with Node's built-in runner (TypeScript through tsx).
//   npm test             unit tests, then VM tests (VM tests one file at a time: TCG is CPU-bound)
//   npm run test:unit    unit tests only (no VM, seconds)
//   node scripts/test.mjs test/vm/exec.test.ts   selected files
import { spawnSync } from "node:child_process";
import { readdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const args = process.argv.slice(2);
const unitOnly = args.includes("--unit");
const explicit = args.filter((a) => !a.startsWith("--"));

function testFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".test.ts"))
    .sort()
    .map((f) => join(dir, f));
}

function run(files, concurrency) {
  if (files.length === 0) return 0;
  const res = spawnSync(
    process.execPath,
    ["--import", "tsx", "--test", `--test-concurrency=${concurrency}`, ...files],
    { stdio: "inherit" },
  );
  return res.status ?? 1;
}

// VM tests keep their sandboxes under /tmp/wheellock-test-* data dirs; anything of that name
// still around afterwards (a QEMU process or a directory) is a leak the suite must report.
const LEAK_MARK = "wheellock-test-";
const tmpEntriesBefore = new Set(readdirSync(tmpdir()).filter((f) => f.startsWith(LEAK_MARK)));

function leftovers() {
  const dirs = readdirSync(tmpdir()).filter(
    (f) => f.startsWith(LEAK_MARK) && !tmpEntriesBefore.has(f),
  );
  const ps = spawnSync("pgrep", ["-af", `qemu-system.*${LEAK_MARK}`], { encoding: "utf8" });
  const qemus = ps.status === 0 ? ps.stdout.trim().split("\n") : [];
  return { dirs, qemus };
}

let status;
if (explicit.length > 0) {
  status = run(explicit, 1);
} else {
  status = run(testFiles("test/unit"), 2);
  if (status === 0 && !unitOnly) status = run(testFiles("test/vm"), 1);
}
const left = leftovers();
if (left.dirs.length > 0 || left.qemus.length > 0) {
  console.error(
    `test run left things behind: dirs ${JSON.stringify(left.dirs)} qemu ${JSON.stringify(left.qemus)}`,
  );
  status = status || 1;
}
process.exit(status);
