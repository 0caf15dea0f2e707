#!/usr/bin/env node
// Runs the test suite with Node's built-in runner (TypeScript through tsx).
//   npm test             unit tests, then VM tests (VM tests one file at a time: TCG is CPU-bound)
//   npm run test:unit    unit tests only (no VM, seconds)
//   node scripts/test.mjs test/vm/exec.test.ts   selected files
import { spawnSync } from "node:child_process";
import { readdirSync, existsSync } from "node:fs";
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

let status;
if (explicit.length > 0) {
  status = run(explicit, 1);
} else {
  status = run(testFiles("test/unit"), 2);
  if (status === 0 && !unitOnly) status = run(testFiles("test/vm"), 1);
}
process.exit(status);
