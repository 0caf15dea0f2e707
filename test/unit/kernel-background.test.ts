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
  EXPECTED_BUILD_STEPS,
  readBuildStatus,
  writeBuildStatus,
} from "../../src/setup/kernel-build-status.js";
import {
  backgroundBuildLog,
  kernelSwitchNotice,
  noteKernelSwitch,
  startBackgroundKernelBuild,
} from "../../src/setup/kernel-background.js";
import { runKernelBuilder } from "../../src/setup/kernel-builder.js";
import { guestKernelNotice } from "../../src/setup/index.js";
import { removeDeadBuilds } from "../../src/setup/min-kernel.js";

const freshCache = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "wl-kbg-"));
  mkdirSync(join(dir, "kernel-min"));
  return dir;
};

const pct = (files: number): number => Math.floor((100 * files) / EXPECTED_BUILD_STEPS);

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
  assert.equal(describeBuild(seen, start + 130_000), "about 0 % (2 files compiled in 2 min 10 s)");
  progress.end();
  assert.equal(readBuildStatus(dir), undefined);
});

test("logs a progress line every 30 s, so a long build never looks hung", () => {
  const lines: string[] = [];
  const progress = new BuildProgress(freshCache(), (m) => lines.push(m), 0);
  for (let s = 1; s <= 65; s++) progress.onLine("  CC      x.o", s * 1000);
  assert.deepEqual(lines, [
    `minimal guest kernel: about ${pct(30)} % (30 files compiled in 30 s)`,
    `minimal guest kernel: about ${pct(60)} % (60 files compiled in 1 min 0 s)`,
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

test("run's notice: progress while building, then once that sandboxes switched", async () => {
  const dir = freshCache();
  assert.equal(await kernelSwitchNotice(dir), undefined);
  const progress = new BuildProgress(dir, () => undefined);
  assert.match(
    (await kernelSwitchNotice(dir)) ?? "",
    /building in the background, unpacking and configuring the source \(\d+ s\); this sandbox boots Debian's kernel/,
  );
  // Another version's build (two installs on one machine) while this one's kernel is there.
  assert.equal(
    await kernelSwitchNotice(dir, { ownKernelBuilt: () => Promise.resolve(true) }),
    undefined,
  );
  progress.end();
  noteKernelSwitch(dir, "6.1.0-wheellock-abc");
  assert.match((await kernelSwitchNotice(dir)) ?? "", /sandboxes boot it from now on/);
  assert.equal(await kernelSwitchNotice(dir), undefined, "the switch is announced once");
});

test("no notice when the user forced a kernel", async () => {
  const saved = process.env.WHEELLOCK_GUEST_KERNEL;
  process.env.WHEELLOCK_GUEST_KERNEL = "debian";
  try {
    assert.equal(await guestKernelNotice(), undefined);
  } finally {
    if (saved === undefined) delete process.env.WHEELLOCK_GUEST_KERNEL;
    else process.env.WHEELLOCK_GUEST_KERNEL = saved;
  }
  assert.equal(await guestKernelNotice({ kernel: "/boot/vmlinuz" }), undefined);
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
  assert.match(logs[0] ?? "", /building in the background .*\(pid \d+/);
  await eventually(() => readBuildStatus(dir)?.compiledFiles === 7, "the builder's own status");
  await startBackgroundKernelBuild(dir, (m) => logs.push(m), opts);
  assert.match(logs[1] ?? "", /still building in the background, about 0 % \(7 files compiled/);
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

test("progress: unpacking first, then a percentage that stays below 100 until the end", () => {
  const at = (compiledFiles: number): string =>
    describeBuild({ pid: 1, startedAtMs: 0, compiledFiles }, 75_000);
  assert.equal(at(0), "unpacking and configuring the source (1 min 15 s)");
  assert.equal(
    at(EXPECTED_BUILD_STEPS / 2),
    `about 50 % (${EXPECTED_BUILD_STEPS / 2} files compiled in 1 min 15 s)`,
  );
  assert.match(at(EXPECTED_BUILD_STEPS * 2), /^about 99 % /);
});

/** A stand-in builder that records that it started, then runs for `ms` without a status of its own. */
const slowBuilder = (startedFile: string, ms: number): string[] => [
  "-e",
  `require('node:fs').appendFileSync(${JSON.stringify(startedFile)}, process.pid + '\\n'); setTimeout(() => {}, ${ms});`,
];

test("two setups at once start one builder, and the status names it before it has loaded", async () => {
  const dir = freshCache();
  const started = join(dir, "started");
  const logs: string[] = [];
  const opts = { entry: slowBuilder(started, 1500), whyCannotBuild: async () => undefined };
  await Promise.all([
    startBackgroundKernelBuild(dir, (m) => logs.push(m), opts),
    startBackgroundKernelBuild(dir, (m) => logs.push(m), opts),
  ]);
  assert.equal(
    logs.filter((l) => /: building in the background/.test(l)).length,
    1,
    logs.join("\n"),
  );
  assert.equal(logs.filter((l) => /still building in the background/.test(l)).length, 1);
  const pid = Number(/pid (\d+)/.exec(logs.find((l) => /: building/.test(l)) ?? "")?.[1]);
  assert.equal(readBuildStatus(dir)?.pid, pid, "a run right after setup sees the build");
  await eventually(() => existsSync(started), "the builder to start");
  assert.equal(readFileSync(started, "utf8"), `${pid}\n`);
});

test("a builder that died mid-build is reported once, and the next setup starts a new one", async () => {
  const dir = freshCache();
  writeBuildStatus(dir, { pid: 2 ** 22 + 17, startedAtMs: 0, compiledFiles: 300 });
  assert.match(
    (await kernelSwitchNotice(dir)) ?? "",
    /stopped before it finished .*`wheellock setup` starts it again/,
  );
  assert.equal(await kernelSwitchNotice(dir), undefined, "said once");
  writeBuildStatus(dir, { pid: 2 ** 22 + 17, startedAtMs: 0, compiledFiles: 300 });
  const logs: string[] = [];
  const started = join(dir, "started");
  const opts = { entry: slowBuilder(started, 200), whyCannotBuild: async () => undefined };
  await startBackgroundKernelBuild(dir, (m) => logs.push(m), opts);
  assert.equal(
    logs[0],
    "minimal guest kernel: the previous background build stopped before it finished",
  );
  assert.match(logs[1] ?? "", /: building in the background/);
  await eventually(() => existsSync(started), "the new builder to start");
});

test("the builder: a switch note when built, a failure note otherwise, each said once", async () => {
  const dir = freshCache();
  const lines: string[] = [];
  await runKernelBuilder(
    dir,
    (m) => lines.push(m),
    async () => ({
      version: "6.1.0-wheellock-abc",
      vmlinuzPath: "/nonexistent",
      moduleFiles: [],
    }),
  );
  assert.match((await kernelSwitchNotice(dir)) ?? "", /sandboxes boot it from now on/);
  assert.equal(await kernelSwitchNotice(dir), undefined);

  const saved = process.exitCode;
  await runKernelBuilder(
    dir,
    (m) => lines.push(m),
    async () => {
      throw new Error("make bzImage exited with 2");
    },
  );
  process.exitCode = saved;
  assert.match(lines.at(-1) ?? "", /build failed: make bzImage exited with 2/);
  assert.match(
    (await kernelSwitchNotice(dir)) ?? "",
    /build of the minimal guest kernel failed: make bzImage exited with 2 \(log: .*build\.log\); sandboxes boot Debian's kernel/,
  );
  assert.equal(await kernelSwitchNotice(dir), undefined);
  assert.equal(process.listenerCount("SIGTERM"), 0, "no signal handlers left behind");
});

test("kill PID stops the background builder and what it started, and run says so once", async () => {
  const dir = freshCache();
  const childPidFile = join(dir, "child.pid");
  // The real builder body with a fake build: a child that would compile for a minute.
  const builder = join(process.cwd(), "src", "setup", "kernel-builder.ts");
  const script = [
    `const { runKernelBuilder } = await import(${JSON.stringify(builder)});`,
    "const { spawn } = await import('node:child_process');",
    "const fs = await import('node:fs');",
    `await runKernelBuilder(${JSON.stringify(dir)}, console.log, () => new Promise((resolve) => {`,
    `  fs.mkdirSync(${JSON.stringify(join(dir, "kernel-min"))} + '/.build-' + process.pid + '-1/out', { recursive: true });`,
    "  const c = spawn('sleep', ['60'], { stdio: 'ignore' });",
    `  fs.writeFileSync(${JSON.stringify(childPidFile)}, String(c.pid));`,
    "  c.on('close', () => resolve(undefined));",
    "}));",
  ].join("\n");
  const logs: string[] = [];
  await startBackgroundKernelBuild(dir, (m) => logs.push(m), {
    entry: ["--import", "tsx", "--input-type=module", "-e", script],
    whyCannotBuild: async () => undefined,
  });
  const builderPid = readBuildStatus(dir)?.pid;
  assert.ok(builderPid !== undefined);
  await eventually(() => existsSync(childPidFile), "the fake compile to start");
  const childPid = Number(readFileSync(childPidFile, "utf8"));
  process.kill(builderPid, "SIGTERM");
  await eventually(() => !alive(childPid), "the fake compile to stop");
  await eventually(() => !alive(builderPid), "the builder to stop");
  assert.match((await kernelSwitchNotice(dir)) ?? "", /failed: stopped by SIGTERM/);
  assert.equal(await kernelSwitchNotice(dir), undefined);
  assert.match(readFileSync(backgroundBuildLog(dir), "utf8"), /build stopped \(SIGTERM\)/);
  assert.equal(
    existsSync(join(dir, "kernel-min", `.build-${builderPid}-1`)),
    false,
    "work dir removed",
  );
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("no second builder while another process holds the build lock (a foreground setup --wait)", async () => {
  const dir = freshCache();
  const lock = join(dir, "kernel-min", `.${"ab".repeat(16)}.lock`);
  writeFileSync(lock, String(process.pid));
  const logs: string[] = [];
  const started = join(dir, "started");
  const opts = { entry: slowBuilder(started, 100), whyCannotBuild: async () => undefined };
  await startBackgroundKernelBuild(dir, (m) => logs.push(m), opts);
  assert.deepEqual(logs, [
    `minimal guest kernel: another process (pid ${process.pid}) is building it; sandboxes boot Debian's kernel until it is ready`,
  ]);
  writeFileSync(lock, String(2 ** 22 + 17)); // its holder died: a new build starts
  await startBackgroundKernelBuild(dir, (m) => logs.push(m), opts);
  assert.match(logs[1] ?? "", /: building in the background/);
  await eventually(() => existsSync(started), "the builder to start");
});
