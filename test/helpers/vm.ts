import { execFileSync } from "node:child_process";
import { after } from "node:test";
import { mkdtempSync, readdirSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * VM tests run with their own data dir (so run dirs left behind are visible to the test) and
 * the normal cache dir (kernel, agent and image are expensive to rebuild and shared).
 */
export function isolateDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "wheellock-test-"));
  process.env.WHEELLOCK_DATA_DIR = dir;
  // Tests leave nothing behind: the whole data dir goes when the test process ends.
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A temp dir for one test file's scratch files, removed when the test process ends. */
export function scratchDir(prefix = "wheellock-scratch-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** QEMU processes whose parent is this process (the sandboxes we started). */
export function childQemuPids(): number[] {
  let out = "";
  try {
    out = execFileSync("pgrep", ["-P", String(process.pid), "-f", "qemu-system"], {
      encoding: "utf8",
    });
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
  return out
    .split("\n")
    .filter((l) => l.trim())
    .map(Number);
}

export function runDirEntries(dataDir: string): string[] {
  const run = join(dataDir, "run");
  return existsSync(run) ? readdirSync(run) : [];
}

/**
 * A VM test file holds the shared VM lock while it runs, so it must end whatever happens. Give
 * each test a `timeout` and its sandboxes a `timeoutSeconds`; this covers the rest. A timed-out
 * test's body is abandoned, never awaited, so its `finally` may not have closed its sandboxes:
 * after the file's tests this kills every QEMU of ours still running (a failure: a leak or an
 * abandoned test) and, should anything else still keep the process alive `graceMs` later,
 * ends it with status 1.
 */
export function endWhenDone(graceMs = 20_000): void {
  after(() => {
    const left = childQemuPids();
    for (const pid of left) process.kill(pid, "SIGKILL");
    if (left.length > 0) {
      console.error(`# killed QEMU ${left.join(", ")}: still running after the last test`);
      process.exitCode = 1;
    }
    setTimeout(() => {
      console.error(`# still alive ${graceMs} ms after the last test: exiting`);
      process.exit(1);
    }, graceMs).unref();
  });
}
