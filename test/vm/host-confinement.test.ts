// QEMU on the host (finding 6): always under its own seccomp filter; run as root, each QEMU is
// a user of its own that can reach no sandbox's files but through the descriptors it was
// given. And a guest flooding its serial console cannot grow the host log without bound
// (finding 5). Two sandboxes are shared by all cases: A boots and saves a snapshot, B restores
// it, so both start paths and the save in between run confined.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync, rmSync, statSync, type Stats } from "node:fs";
import { join } from "node:path";
import { Sandbox, type VmSandbox } from "../../src/index.js";
import { cacheDir } from "../../src/paths.js";
import { CONSOLE_LOG_SEGMENT_BYTES, ringLogSegments } from "../../src/util/ring-log.js";
import { SNAPSHOT_RAM_GID } from "../../src/vmm/index.js";
import { childQemuPids, endWhenDone, isolateDataDir, runDirEntries } from "../helpers/vm.js";

const dataDir = isolateDataDir();
endWhenDone();
// A memory size no other test uses, so this file owns its snapshots (RAM files of this size).
const memoryMb = 352;
const asRoot = process.geteuid?.() === 0;
const NOT_ROOT = asRoot ? false : "QEMU is jailed only when wheellock runs as root";
// Never hang (this file runs under the shared VM lock): each sandbox stops itself, and each
// step gives up, well before anyone waits on the lock in vain.
const timeoutSeconds = 420;
const STEP_TIMEOUT_MS = 360_000;

const snapshotsDir = join(cacheDir(), "snapshots");

/** Removes this file's snapshots, so A boots and saves a new one. */
function removeOwnSnapshots(): void {
  let keys: string[] = [];
  try {
    keys = readdirSync(snapshotsDir);
  } catch {
    return; // none yet
  }
  for (const key of keys) {
    try {
      if (statSync(join(snapshotsDir, key, "ram")).size !== memoryMb * 1024 * 1024) continue;
    } catch {
      continue;
    }
    rmSync(join(snapshotsDir, key), { recursive: true, force: true });
  }
}

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

function procStatus(sb: Sandbox): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of readFileSync(`/proc/${qemuPidOf(sb)}/status`, "utf8").split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

/** Real, effective, saved and filesystem ids of `sb`'s QEMU (`Uid` or `Gid`). */
function ids(sb: Sandbox, which: "Uid" | "Gid"): number[] {
  return procStatus(sb).get(which)!.split(/\s+/).map(Number);
}

/** The snapshot RAM file a restored QEMU maps, found among its descriptors. */
function snapshotRamOf(sb: Sandbox): Stats {
  const pid = qemuPidOf(sb);
  const path = readdirSync(`/proc/${pid}/fd`)
    .map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`))
    .find((target) => target.startsWith(snapshotsDir) && target.endsWith("/ram"));
  assert.ok(path, "the restored QEMU holds the snapshot's RAM file");
  return statSync(path);
}

/** Runs a command as `uid`/`gid` with no supplementary groups (what a jailed QEMU could do). */
function asUser(uid: number, gid: number, command: string[]) {
  return spawnSync(
    "setpriv",
    ["--reuid", String(uid), "--regid", String(gid), "--clear-groups", "--", ...command],
    { encoding: "utf8", timeout: 10_000 },
  );
}

/** Closes every sandbox, even when one of the closes fails. */
async function closeAll(sandboxes: (Sandbox | undefined)[]): Promise<void> {
  const results = await Promise.allSettled(sandboxes.map((sb) => sb?.close()));
  for (const r of results) if (r.status === "rejected") throw r.reason;
}

const PLANTED_SECRET = `planted-${process.pid}-secret-value`;

describe("a confined QEMU per sandbox", () => {
  let a: VmSandbox;
  let b: VmSandbox;

  before(
    async () => {
      // What `--secret NAME` reads: a real value in the caller's environment.
      process.env.WHEELLOCK_TEST_PLANTED_SECRET = PLANTED_SECRET;
      removeOwnSnapshots();
      a = await Sandbox.create({ memoryMb, snapshot: true, timeoutSeconds });
      b = await Sandbox.create({ memoryMb, snapshot: true, timeoutSeconds });
    },
    { timeout: STEP_TIMEOUT_MS },
  );

  after(
    async () => {
      await closeAll([a, b]);
      assert.deepEqual(childQemuPids(), []);
      assert.deepEqual(runDirEntries(dataDir), []);
    },
    { timeout: 60_000 },
  );

  test("A booted and saved a snapshot, B restored it, both work", async () => {
    assert.equal(a.restoredFromSnapshot, false);
    assert.equal(b.restoredFromSnapshot, true);
    assert.equal((await a.exec("echo a", { timeoutMs: 60_000 })).stdout, "a\n");
    assert.equal((await b.exec("echo b", { timeoutMs: 60_000 })).stdout, "b\n");
  });

  test("QEMU's environment holds none of the caller's (a --secret's real value lives there)", () => {
    for (const sb of [a, b]) {
      const environ = readFileSync(`/proc/${qemuPidOf(sb)}/environ`, "utf8");
      assert.equal(environ.includes(PLANTED_SECRET), false, "the caller's secret reached QEMU");
    }
  });

  test("QEMU runs under its seccomp filter", () => {
    for (const sb of [a, b]) {
      const status = procStatus(sb);
      assert.equal(status.get("Seccomp"), "2", "QEMU's seccomp filter is installed");
      assert.equal(status.get("NoNewPrivs"), "1");
    }
  });

  test("as root, each QEMU is a user of its own with no capabilities", { skip: NOT_ROOT }, () => {
    for (const sb of [a, b]) {
      for (const id of [...ids(sb, "Uid"), ...ids(sb, "Gid")]) assert.notEqual(id, 0);
      const status = procStatus(sb);
      assert.equal(status.get("CapEff"), "0000000000000000");
      assert.equal(status.get("CapBnd"), "0000000000000000");
      // Network and IPC namespaces of its own: no loopback services, no metadata address.
      for (const ns of ["net", "ipc"]) {
        const host = readlinkSync(`/proc/self/ns/${ns}`);
        assert.notEqual(readlinkSync(`/proc/${qemuPidOf(sb)}/ns/${ns}`), host, ns);
      }
    }
    assert.notEqual(ids(a, "Uid")[0], ids(b, "Uid")[0], "two sandboxes never share a QEMU user");
  });

  test("as root, snapshot RAM is shared through one group only", { skip: NOT_ROOT }, () => {
    // A restored VM maps the snapshot's RAM through the snapshot group; a booted one has no
    // group at all.
    for (const sb of [a, b]) {
      const groups = procStatus(sb).get("Groups")!.split(/\s+/).filter(Boolean);
      assert.deepEqual(groups, sb.restoredFromSnapshot ? [String(SNAPSHOT_RAM_GID)] : []);
    }
    // That RAM file (found through B's descriptors) is root's, usable by that group alone, in
    // a directory only root can enter.
    const ram = snapshotRamOf(b);
    assert.deepEqual(
      { uid: ram.uid, gid: ram.gid, mode: ram.mode & 0o777 },
      { uid: 0, gid: SNAPSHOT_RAM_GID, mode: 0o660 },
    );
    assert.equal(statSync(snapshotsDir).mode & 0o777, 0o700);
  });

  test("as root, A's QEMU user reaches no sandbox's files or QEMU", { skip: NOT_ROOT }, () => {
    const [uidA, gidA] = [ids(a, "Uid")[0]!, ids(a, "Gid")[0]!];
    // No disk by path: not B's, not even its own (it has descriptors).
    for (const disk of [join(runDirOf(b), "upper.ext4"), join(runDirOf(a), "upper.ext4")]) {
      assert.ok(statSync(disk).size > 0, "the disk is there (the refusal is not ENOENT)");
      const read = asUser(uidA, gidA, ["head", "-c", "1", disk]);
      assert.notEqual(read.status, 0);
      assert.match(read.stderr, /Permission denied/);
    }
    // ...nor B's descriptors, nor signal B's QEMU.
    const pidB = qemuPidOf(b);
    assert.notEqual(asUser(uidA, gidA, ["ls", `/proc/${pidB}/fd`]).status, 0);
    assert.notEqual(asUser(uidA, gidA, ["kill", "-0", String(pidB)]).status, 0);
  });

  test(
    "a guest flooding its serial console leaves a bounded host log",
    { timeout: STEP_TIMEOUT_MS },
    async () => {
      // More than the ring holds (two segments), so an unbounded log fails. QEMU's UART moves
      // ~100 KB/s under TCG, so this is 4.25 MiB rather than 64 (a 64 MiB flood ran for many
      // minutes; test/unit/console-log.test.ts pushes 64 MiB through the ring itself).
      const floodBytes = 2 * CONSOLE_LOG_SEGMENT_BYTES + 256 * 1024;
      const flood = await a.exec(
        `yes 'console flood 0123456789abcdefghijklmnopqrstuvwxyz' | head -c ${floodBytes} > /dev/ttyS0 && echo flood-end > /dev/ttyS0`,
        { timeoutMs: STEP_TIMEOUT_MS - 30_000 },
      );
      assert.equal(flood.exitCode, 0, flood.stderr);
      assert.equal((await a.exec("echo still here", { timeoutMs: 60_000 })).stdout, "still here\n");
      const log = join(runDirOf(a), "console.log");
      // The last line reaches the log shortly after the guest wrote it.
      const deadline = Date.now() + 10_000;
      while (!readFileSync(log, "utf8").includes("flood-end") && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const onDisk = ringLogSegments(log).reduce((sum, path) => sum + statSync(path).size, 0);
      assert.ok(onDisk <= 2 * CONSOLE_LOG_SEGMENT_BYTES, `${onDisk} bytes of console log`);
      assert.ok(onDisk >= CONSOLE_LOG_SEGMENT_BYTES, `${onDisk} bytes: the newest are kept`);
      // The newest bytes are the flood's end (`head -c` may cut its last line short).
      const newest = readFileSync(log, "utf8");
      assert.match(newest, /console flood 0123/);
      assert.match(newest, /flood-end\r?\n$/);
    },
  );
});
