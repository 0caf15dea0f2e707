// What a guest can do to the host through writable mounts stays bounded (issue 19): a tree it
// builds in an overlay mount is removable whatever its depth, and `run` still reports the
// command's status; overlay and memory mounts have a byte and inode budget the guest's `df`
// shows; overlay mount roots show the overlaid directory, so non-root users can use them.
import { before, after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "../../src/index.js";
import { isolateDataDir, runDirEntries, scratchDir } from "../helpers/vm.js";

const dataDir = isolateDataDir();
const base = scratchDir();
const MIB = 1024 * 1024;

/** Bytes of regular files below `dir` (what a layer really holds on the host). */
function hostBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += statSync(join(e.parentPath, e.name)).size;
  }
  return total;
}

describe("writable mounts: budgets and owners", () => {
  let sb: Sandbox;
  const dirs = { ov: join(base, "ov"), small: join(base, "small"), owned: join(base, "owned") };
  before(async () => {
    for (const d of Object.values(dirs)) mkdirSync(d);
    writeFileSync(join(dirs.owned, "theirs"), "lower\n");
    // A host directory that belongs to uid 1000, as a user's checkout would (we run as root).
    chownSync(dirs.owned, 1000, 1000);
    chownSync(join(dirs.owned, "theirs"), 1000, 1000);
    sb = await Sandbox.create({
      diskSizeMb: 64,
      mounts: {
        "/mnt/ov": { type: "overlay", hostPath: dirs.ov },
        "/mnt/small": {
          type: "overlay",
          hostPath: dirs.small,
          quota: { sizeBytes: 16 * MIB, inodes: 100 },
        },
        "/mnt/owned": { type: "overlay", hostPath: dirs.owned },
        "/mnt/mem": { type: "memory", quota: { sizeBytes: 8 * MIB } },
      },
    });
  });
  after(async () => sb?.close());

  test("attack: dd past the disk size in an overlay mount gets ENOSPC; df shows the budget", async () => {
    const r = await sb.exec(
      [
        "df -P /mnt/ov | tail -1 | awk '{print $2}'",
        "df -Pi /mnt/ov | tail -1 | awk '{print $2}'",
        "dd if=/dev/zero of=/mnt/ov/big bs=1M count=256 2>&1 | grep -o 'No space left on device' | head -1",
        "echo size=$(stat -c %s /mnt/ov/big)",
        "df -P /mnt/ov | tail -1 | awk '{print $4}'",
      ].join("; "),
    );
    const [total, inodes, error, size, available] = r.stdout.trim().split("\n");
    assert.equal(total, "65536", "64 MiB in 1K blocks: the sandbox's --disk-size");
    assert.equal(inodes, "4096", "one inode per 16 KiB");
    assert.equal(error, "No space left on device", r.stdout + r.stderr);
    assert.equal(size, `size=${64 * MIB}`);
    assert.equal(available, "0");
    const upper = readdirSync(join(dataDir, "run", sb.id)).filter((n) =>
      n.startsWith("overlay-upper-"),
    );
    const stored = upper.reduce((sum, n) => sum + hostBytes(join(dataDir, "run", sb.id, n)), 0);
    assert.ok(stored <= 64 * MIB, `the host holds ${stored} bytes for the guest`);
    assert.deepEqual(readdirSync(dirs.ov), [], "the host directory itself is untouched");
    const freed = await sb.exec("rm /mnt/ov/big && df -P /mnt/ov | tail -1 | awk '{print $4}'");
    assert.equal(freed.stdout, "65536\n", freed.stderr);
  });

  test("per-mount quotas (SDK quota, -v size=/inodes=) and memory mounts: bytes and inodes", async () => {
    const r = await sb.exec(
      [
        "df -P /mnt/small | tail -1 | awk '{print $2}'",
        "df -Pi /mnt/small | tail -1 | awk '{print $2}'",
        "i=0; while touch /mnt/small/f$i 2>/dev/null; do i=$((i+1)); done; echo files=$i",
        "touch /mnt/small/one-more 2>&1 | grep -o 'No space left on device'",
        "df -P /mnt/mem | tail -1 | awk '{print $2}'",
        "dd if=/dev/zero of=/mnt/mem/big bs=1M count=16 2>&1 | grep -o 'No space left on device' | head -1",
        "stat -c %s /mnt/mem/big",
      ].join("; "),
    );
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "16384",
      "100",
      "files=100",
      "No space left on device",
      "8192",
      "No space left on device",
      String(8 * MIB),
    ]);
  });

  test("a non-root user uses an overlay mount of a directory it owns (finding 8)", async () => {
    const r = await sb.exec(
      [
        "stat -c '%a %u:%g' /mnt/owned",
        "echo hi > /mnt/owned/new && echo more >> /mnt/owned/new && cat /mnt/owned/new",
        "stat -c %u:%g /mnt/owned/new",
        "mkdir /mnt/owned/sub && touch /mnt/owned/sub/x && ls /mnt/owned/sub",
        "echo changed >> /mnt/owned/theirs && stat -c %u:%g /mnt/owned/theirs",
      ].join(" && "),
      { user: "1000:1000" },
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "755 1000:1000",
      "hi",
      "more",
      "1000:1000",
      "x",
      "1000:1000",
    ]);
    assert.deepEqual(readdirSync(dirs.owned), ["theirs"], "overlay writes never reach the host");
  });
});

test("attack: a tree deeper than PATH_MAX in an overlay mount is removed; run keeps the command's status (finding 1)", () => {
  const cli = ["--import", "tsx", join(import.meta.dirname, "../../src/cli/main.ts")];
  const host = join(base, "deep");
  mkdirSync(host);
  // No path argument can exceed PATH_MAX in the guest either: two 30-level chains of
  // 100-byte names, one moved to the bottom of the other, make 61 levels (over 6 KB of path
  // below the upper layer on the host).
  const deep = [
    'n=$(printf "%0100d" 0); p=$n; i=1',
    "while [ $i -lt 30 ]; do p=$p/$n; i=$((i+1)); done",
    "cd /workspace && mkdir -p a/$p b/$p && mv b a/$p/ && cd a/$p && echo leaf > b/$p/leaf && exit 7",
    "exit 9",
  ].join("; ");
  const run = spawnSync(
    process.execPath,
    [...cli, "run", "-v", `${host}:/workspace`, "--", "sh", "-c", deep],
    {
      encoding: "utf8",
    },
  );
  assert.equal(run.status, 7, `the command's own status, not a cleanup failure: ${run.stderr}`);
  assert.deepEqual(runDirEntries(dataDir), [], "no run dir is left behind");
  assert.deepEqual(readdirSync(host), []);
  const next = spawnSync(process.execPath, [...cli, "run", "--", "echo", "next"], {
    encoding: "utf8",
  });
  assert.equal(next.status, 0, next.stderr);
  assert.equal(next.stdout, "next\n");
  assert.ok(!existsSync(join(dataDir, "overlays")));
});
