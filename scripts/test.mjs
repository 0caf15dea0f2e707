#!/usr/bin/env node
// Runs the test suite with Node's built-in runner (TypeScript through tsx).
//   npm test             unit tests, then VM tests (VM tests one file at a time: TCG is CPU-bound)
//   npm run test:unit    unit tests only (no VM, seconds)
//   node scripts/test.mjs test/vm/exec.test.ts   selected files
import { spawn, spawnSync } from "node:child_process";
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

// Each file runs in its own `node --test` process group with a time limit, so a file that hangs
// (a VM that never answers, a handle that keeps the process alive) fails on its own, killed with
// everything it started, and the run goes on: it cannot eat a CI job's whole time. (Node 20's
// --test-timeout is no per-file limit: it starts counting for every file at once.) The limits
// are generous for a loaded 2-core machine running VMs under TCG; WHEELLOCK_TEST_FILE_LIMIT_S
// overrides both.
const FILE_LIMIT_MS = {
  unit: 10 * 60_000,
  vm: 25 * 60_000,
};
const limitOverrideS = Number(process.env.WHEELLOCK_TEST_FILE_LIMIT_S);
const running = new Set();

function runFile(file, limitMs, stream) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--test", file], {
      stdio: stream ? "inherit" : ["ignore", "pipe", "pipe"],
      detached: true,
    });
    running.add(child);
    const output = [];
    // With files in parallel, each file's report is printed whole when it ends.
    child.stdout?.on("data", (d) => output.push(d));
    child.stderr?.on("data", (d) => output.push(d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, limitMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      if (output.length > 0) process.stdout.write(Buffer.concat(output));
      if (timedOut) console.error(`not ok - ${file}: killed after its ${limitMs / 1000} s limit`);
      resolve(timedOut || signal ? 1 : (code ?? 1));
    });
  });
}

function killGroup(child) {
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
}

// The files' process groups do not see a terminal's Ctrl-C: pass it on.
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    for (const child of running) killGroup(child);
    process.exit(1);
  });
}

async function run(files, concurrency, kind) {
  const limitMs = limitOverrideS > 0 ? limitOverrideS * 1000 : FILE_LIMIT_MS[kind];
  const queue = [...files];
  const failed = [];
  const lane = async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      if ((await runFile(file, limitMs, concurrency === 1)) !== 0) failed.push(file);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  if (failed.length > 0) console.error(`failed test files:\n  ${failed.join("\n  ")}`);
  return failed.length > 0 ? 1 : 0;
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
  status = await run(explicit, 1, explicit.some((f) => f.includes("test/vm/")) ? "vm" : "unit");
} else {
  status = await run(testFiles("test/unit"), 2, "unit");
  if (status === 0 && !unitOnly) status = await run(testFiles("test/vm"), 1, "vm");
}
const left = leftovers();
if (left.dirs.length > 0 || left.qemus.length > 0) {
  console.error(
    `test run left things behind: dirs ${JSON.stringify(left.dirs)} qemu ${JSON.stringify(left.qemus)}`,
  );
  status = status || 1;
}
process.exit(status);
