import { execFileSync } from "node:child_process";
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
