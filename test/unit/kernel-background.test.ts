// The minimal kernel built in the background (issue 16 item 4): progress shared through a
// status file, a detached builder that outlives `setup`, and the CLI's one-line notices.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  BuildProgress,
  buildStatusPath,
  describeBuild,
  readBuildStatus,
} from "../../src/setup/kernel-build-status.js";
import {
  backgroundBuildLog,
  kernelSwitchNotice,
  noteKernelSwitch,
  startBackgroundKernelBuild,
} from "../../src/setup/kernel-background.js";
import { guestKernelNotice } from "../../src/setup/index.js";
import { removeDeadBuilds } from "../../src/setup/min-kernel.js";

const freshCache = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "wl-kbg-"));
  mkdirSync(join(dir, "kernel-min"));
  return dir;
};

const MAKE_OUTPUT = [
  "make[1]: Entering directory '/build/out'",
  "  GEN     Makefile",
  "  CC      kernel/fork.o",
  "  AS      arch/x86/entry/entry_64.o",
  "  HOSTCC  scripts/basic/fixdep",
  "  CC      mm/slub.o",
  "  LD      vmlinux.o",
  "  AR      lib/lib.a",
  "warning: CC something",
];

test("counts make's compile, assemble, link and archive steps, nothing else", () => {
  const dir = freshCache();
  const progress = new BuildProgress(dir, () => undefined, 0);
  for (const line of MAKE_OUTPUT) progress.onLine(line, 1);
  assert.equal(progress.compiledFiles, 5);
  progress.end();
});

test("another process reads the running build's status; it is gone when the build ends", () => {
  const dir = freshCache();
  const start = Date.now();
  const progress = new BuildProgress(dir, () => undefined, start);
  // Status is written at most every 3 s: the step 4 s later lands in the file.
  progress.onLine("  CC      a.o", start + 1000);
  progress.onLine("  CC      b.o", start + 4000);
  const seen = readBuildStatus(dir);
  assert.equal(seen?.pid, process.pid);
  assert.equal(seen?.compiledFiles, 2);
  assert.equal(describeBuild(seen, start + 130_000), "2 files compiled in 2 min 10 s");
  progress.end();
  assert.equal(readBuildStatus(dir), undefined);
});

test("logs a progress line every 30 s, so a long build never looks hung", () => {
  const lines: string[] = [];
  const progress = new BuildProgress(freshCache(), (m) => lines.push(m), 0);
  for (let s = 1; s <= 65; s++) progress.onLine("  CC      x.o", s * 1000);
  assert.deepEqual(lines, [
    "minimal guest kernel: 30 files compiled in 30 s",
    "minimal guest kernel: 60 files compiled in 1 min 0 s",
  ]);
  progress.end();
});

test("a status left by a dead builder, or a garbled one, means no build runs", () => {
  const dir = freshCache();
  writeFileSync(
    buildStatusPath(dir),
    JSON.stringify({ pid: 2 ** 22 + 17, startedAtMs: 0, compiledFiles: 3 }),
  );
  assert.equal(readBuildStatus(dir), undefined);
  writeFileSync(buildStatusPath(dir), "{not json");
  assert.equal(readBuildStatus(dir), undefined);
  writeFileSync(buildStatusPath(dir), JSON.stringify({ pid: -1, startedAtMs: 0 }));
  assert.equal(readBuildStatus(dir), undefined);
});

test("run's notice: progress while building, then once that sandboxes switched", () => {
  const dir = freshCache();
  assert.equal(kernelSwitchNotice(dir), undefined);
  const progress = new BuildProgress(dir, () => undefined);
  assert.match(kernelSwitchNotice(dir) ?? "", /still building in the background \(0 files/);
  progress.end();
  noteKernelSwitch(dir, "6.1.0-wheellock-abc");
  assert.match(kernelSwitchNotice(dir) ?? "", /sandboxes boot it from now on/);
  assert.equal(kernelSwitchNotice(dir), undefined, "the switch is announced once");
});

test("no notice when the user forced a kernel", () => {
  const saved = process.env.WHEELLOCK_GUEST_KERNEL;
  process.env.WHEELLOCK_GUEST_KERNEL = "debian";
  try {
    assert.equal(guestKernelNotice(), undefined);
  } finally {
    if (saved === undefined) delete process.env.WHEELLOCK_GUEST_KERNEL;
    else process.env.WHEELLOCK_GUEST_KERNEL = saved;
  }
  assert.equal(guestKernelNotice({ kernel: "/boot/vmlinuz" }), undefined);
});

/** Polls until `check` holds (the detached builder runs on its own schedule). */
async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("setup starts the builder detached, its output in the build log; not twice", async () => {
  const dir = freshCache();
  const marker = join(dir, "builder-ran");
  // A stand-in builder: holds a status (as the real one does while compiling), then finishes.
  const script = [
    "const fs = require('node:fs');",
    `fs.writeFileSync(${JSON.stringify(buildStatusPath(dir))}, JSON.stringify({ pid: process.pid, startedAtMs: Date.now(), compiledFiles: 7 }));`,
    "console.log('building');",
    `setTimeout(() => { fs.rmSync(${JSON.stringify(buildStatusPath(dir))}); fs.writeFileSync(${JSON.stringify(marker)}, String(process.ppid)); }, 1500);`,
  ].join("\n");
  const logs: string[] = [];
  const opts = { entry: ["-e", script], whyCannotBuild: async () => undefined };
  await startBackgroundKernelBuild(dir, (m) => logs.push(m), opts);
  assert.match(logs[0] ?? "", /building in the background \(pid \d+/);
  await eventually(() => readBuildStatus(dir) !== undefined, "the builder's status");
  await startBackgroundKernelBuild(dir, (m) => logs.push(m), opts);
  assert.match(logs[1] ?? "", /still building in the background .*7 files compiled/);
  await eventually(() => existsSync(marker), "the builder to finish");
  assert.match(readFileSync(backgroundBuildLog(dir), "utf8"), /^building$/m);
});

test("a host that cannot build the kernel gets one line and no builder", async () => {
  const dir = freshCache();
  const logs: string[] = [];
  await startBackgroundKernelBuild(dir, (m) => logs.push(m), {
    entry: ["-e", "process.exit(3)"],
    whyCannotBuild: async () => "missing bc",
  });
  assert.deepEqual(logs, [
    "minimal guest kernel skipped (missing bc); sandboxes boot Debian's kernel",
  ]);
  assert.equal(existsSync(backgroundBuildLog(dir)), false);
});

test("a build that died leaves no work dir behind the next build; a live one is left alone", async () => {
  const root = join(freshCache(), "kernel-min");
  const dead = join(root, `.build-${2 ** 22 + 17}-1`);
  const live = join(root, `.build-${process.pid}-2`);
  mkdirSync(join(dead, "out"), { recursive: true });
  mkdirSync(live);
  mkdirSync(join(root, "0123abcd"));
  await removeDeadBuilds(root);
  assert.equal(existsSync(dead), false);
  assert.equal(existsSync(live), true);
  assert.equal(existsSync(join(root, "0123abcd")), true, "built kernels stay");
});
