// QEMU on the host (finding 6): always under its own seccomp filter; run as root, each QEMU is
// a user of its own that can reach no sandbox's files but through the descriptors it was
// given. And a guest flooding its serial console cannot grow the host log without bound
// (finding 5).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync, statSync, type Stats } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "../../src/index.js";
import { cacheDir } from "../../src/paths.js";
import { CONSOLE_LOG_SEGMENT_BYTES } from "../../src/util/ring-log.js";
import { SNAPSHOT_RAM_GID } from "../../src/vmm/index.js";
import { childQemuPids, isolateDataDir, runDirEntries } from "../helpers/vm.js";

const dataDir = isolateDataDir();
// A memory size no other test uses, so this file owns its snapshot key.
const memoryMb = 352;
const asRoot = process.geteuid?.() === 0;

function runDirOf(sb: Sandbox): string {
  return join(dataDir, "run", sb.id);
}

/** The QEMU of `sb`: our child whose command line names its run dir. */
function qemuPidOf(sb: Sandbox): number {
  const pid = childQemuPids().find((p) =>
    readFileSync(`/proc/${p}/cmdline`, "utf8").includes(runDirOf(sb)),
  );
  assert.ok(pid, `no QEMU for ${sb.id}`);
  return pid;
}

function procStatus(pid: number): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of readFileSync(`/proc/${pid}/status`, "utf8").split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

/** The snapshot RAM file a restored QEMU maps, found among its descriptors. */
function snapshotRamOf(pid: number): { file: Stats; dir: Stats } {
  const snapshots = join(cacheDir(), "snapshots");
  const path = readdirSync(`/proc/${pid}/fd`)
    .map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`))
    .find((target) => target.startsWith(snapshots) && target.endsWith("/ram"));
  assert.ok(path, "the restored QEMU holds the snapshot's RAM file");
  return { file: statSync(path), dir: statSync(snapshots) };
}

/** Runs a command as `uid`/`gid` with no supplementary groups (what a jailed QEMU could do). */
function asUser(uid: number, gid: number, command: string[]) {
  return spawnSync(
    "setpriv",
    ["--reuid", String(uid), "--regid", String(gid), "--clear-groups", "--", ...command],
    { encoding: "utf8" },
  );
}

test("QEMU runs under seccomp, and as root as a user of its own per sandbox", async () => {
  // The first start boots and saves a snapshot (unless one exists), the second restores it:
  // both paths, and the save in between, work confined.
  const a = await Sandbox.create({ memoryMb, snapshot: true });
  const b = await Sandbox.create({ memoryMb, snapshot: true });
  try {
    assert.equal(b.restoredFromSnapshot, true);
    assert.equal((await a.exec("echo a")).stdout, "a\n");
    assert.equal((await b.exec("echo b")).stdout, "b\n");
    const [statusA, statusB] = [qemuPidOf(a), qemuPidOf(b)].map(procStatus);
    for (const status of [statusA!, statusB!]) {
      assert.equal(status.get("Seccomp"), "2", "QEMU's seccomp filter is installed");
      assert.equal(status.get("NoNewPrivs"), "1");
    }
    if (!asRoot) return;
    const [uidA, uidB] = [statusA!, statusB!].map((s) => Number(s.get("Uid")!.split(/\s+/)[0]));
    const gidA = Number(statusA!.get("Gid")!.split(/\s+/)[0]);
    for (const status of [statusA!, statusB!]) {
      // real, effective, saved and filesystem ids: none of them root.
      assert.ok(
        status
          .get("Uid")!
          .split(/\s+/)
          .every((id) => id !== "0"),
        status.get("Uid"),
      );
      assert.ok(
        status
          .get("Gid")!
          .split(/\s+/)
          .every((id) => id !== "0"),
        status.get("Gid"),
      );
      assert.equal(status.get("CapEff"), "0000000000000000");
      assert.equal(status.get("CapBnd"), "0000000000000000");
    }
    assert.notEqual(uidA, uidB, "two sandboxes never share a QEMU user");
    // Network and IPC namespaces of its own: no loopback services, no metadata address.
    for (const ns of ["net", "ipc"]) {
      const host = readlinkSync(`/proc/self/ns/${ns}`);
      assert.notEqual(readlinkSync(`/proc/${qemuPidOf(a)}/ns/${ns}`), host, ns);
      assert.notEqual(readlinkSync(`/proc/${qemuPidOf(b)}/ns/${ns}`), host, ns);
    }
    // A restored VM maps the snapshot's RAM through the snapshot group; a booted one has no
    // group at all.
    for (const [sb, status] of [
      [a, statusA!],
      [b, statusB!],
    ] as const) {
      const groups = status.get("Groups")!.split(/\s+/).filter(Boolean);
      assert.deepEqual(groups, sb.restoredFromSnapshot ? [String(SNAPSHOT_RAM_GID)] : []);
    }
    // That RAM file (found through B's descriptors) is root's, usable by that group alone, in
    // a directory only root can enter.
    const ram = snapshotRamOf(qemuPidOf(b));
    assert.deepEqual(
      { uid: ram.file.uid, gid: ram.file.gid, mode: ram.file.mode & 0o777 },
      { uid: 0, gid: SNAPSHOT_RAM_GID, mode: 0o660 },
    );
    assert.equal(ram.dir.mode & 0o777, 0o700);

    // A's QEMU user can open no disk by path: not B's, not even its own (it has descriptors).
    for (const disk of [join(runDirOf(b), "upper.ext4"), join(runDirOf(a), "upper.ext4")]) {
      assert.ok(statSync(disk).size > 0, "the disk is there (the refusal is not ENOENT)");
      const read = asUser(uidA!, gidA, ["head", "-c", "1", disk]);
      assert.notEqual(read.status, 0);
      assert.match(read.stderr, /Permission denied/);
    }
    // ...nor B's descriptors, nor signal B's QEMU.
    const pidB = qemuPidOf(b);
    assert.notEqual(asUser(uidA!, gidA, ["ls", `/proc/${pidB}/fd`]).status, 0);
    assert.notEqual(asUser(uidA!, gidA, ["kill", "-0", String(pidB)]).status, 0);
  } finally {
    await a.close();
    await b.close();
  }
  assert.deepEqual(childQemuPids(), []);
  assert.deepEqual(runDirEntries(dataDir), []);
});

test("a guest flooding its serial console leaves a bounded host log", async () => {
  const sb = await Sandbox.create({ memoryMb, snapshot: true, timeoutSeconds: 0 });
  try {
    // More than the ring holds (two segments). QEMU's UART moves ~100 KB/s under TCG, so this
    // is 5 MiB rather than 64 (test/unit/console-log.test.ts pushes 64 MiB through the ring).
    const floodBytes = 2 * CONSOLE_LOG_SEGMENT_BYTES + 1024 * 1024;
    const flood = await sb.exec(
      `yes 'console flood 0123456789abcdefghijklmnopqrstuvwxyz' | head -c ${floodBytes} > /dev/ttyS0 && echo flood-end > /dev/ttyS0`,
    );
    assert.equal(flood.exitCode, 0, flood.stderr);
    assert.equal((await sb.exec("echo still here")).stdout, "still here\n");
    const log = join(runDirOf(sb), "console.log");
    // The last line reaches the log shortly after the guest wrote it.
    const deadline = Date.now() + 10_000;
    while (!readFileSync(log, "utf8").includes("flood-end") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(readFileSync(log, "utf8"), /console flood 0123.*flood-end/);
    const onDisk = statSync(log).size + statSync(`${log}.1`).size;
    assert.ok(onDisk <= 2 * CONSOLE_LOG_SEGMENT_BYTES, `${onDisk} bytes of console log`);
    assert.ok(onDisk >= CONSOLE_LOG_SEGMENT_BYTES, `${onDisk} bytes: the newest are kept`);
  } finally {
    await sb.close();
  }
});
