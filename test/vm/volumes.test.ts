// Named volumes and raw disks attached as block devices: data written in one sandbox is there
// in the next (SDK, then CLI), a read-only disk refuses writes, one writer at a time, a volume
// in use cannot be removed, and a kept overlay layer survives close with the guest's changes.
// Sandboxes with disks start from a memory snapshot and get their own disks after the restore:
// never another sandbox's data, and each disk as it is on the host now.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  ErrVolumeInUse,
  Sandbox,
  type VmSandbox,
  createVolume,
  listVolumes,
  removeVolume,
} from "../../src/index.js";
import {
  discardSnapshot,
  listSnapshotKeys,
  readSnapshotMeta,
  snapshotFiles,
} from "../../src/sandbox/snapshot-store.js";
import { isolateDataDir, scratchDir } from "../helpers/vm.js";

const dataDir = isolateDataDir();
const base = scratchDir();
const roImage = join(base, "ro.ext4");
/** An ext4 image of `size` holding `files` (name -> content), made afresh. */
function makeExt4(path: string, size: string, files: Record<string, string>, label = ""): void {
  const dir = `${path}.seed`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  const args = ["-q", "-F", "-L", label, "-d", dir, path, size];
  const mkfs = spawnSync("mkfs.ext4", args, { encoding: "utf8" });
  assert.equal(mkfs.status, 0, mkfs.stderr);
}
makeExt4(roImage, "16M", { "hello.txt": "from the host image\n" });
const ov = join(base, "ov");
mkdirSync(ov);
writeFileSync(join(ov, "base.txt"), "lower\n");
const files = join(base, "files");
mkdirSync(files);
writeFileSync(join(files, "app.json"), '{"v":1}\n');
writeFileSync(join(files, "ro.conf"), "read only\n");
writeFileSync(join(files, "ov.txt"), "lower\n");
writeFileSync(join(files, "secret"), "SIBLING");
const cli = ["--import", "tsx", join(import.meta.dirname, "../../src/cli/main.ts")];

let writtenSha = "";
let keptUpper = "";

describe("a sandbox with a named volume, a read-only disk and a kept overlay", () => {
  let sb: VmSandbox;
  before(async () => {
    await createVolume("work", 64);
    sb = await Sandbox.create({
      disks: [
        { volume: "work", guestPath: "/data" },
        { hostPath: roImage, guestPath: "/srv/ro", readonly: true },
      ],
      mounts: {
        "/mnt/ov": { type: "overlay", hostPath: ov, keepUpper: true },
        "/srv/app.json": { type: "host_fs", hostPath: join(files, "app.json") },
        "/etc/wl/ro.conf": { type: "host_fs", hostPath: join(files, "ro.conf"), readonly: true },
        "/srv/ov.txt": { type: "overlay", hostPath: join(files, "ov.txt") },
      },
    });
  });
  after(async () => sb?.close());

  test("the volume is an ext4 block device at the guest path and takes writes", async () => {
    const r = await sb.exec(
      [
        "set -e",
        "grep ' /data ' /proc/mounts | cut -d' ' -f3,4 | cut -d, -f1",
        "dd if=/dev/urandom of=/data/blob bs=1M count=4 2>/dev/null",
        "mkdir -p /data/dir && echo kept > /data/dir/note",
        "sha256sum /data/blob | cut -c1-64",
      ].join("\n"),
    );
    assert.equal(r.exitCode, 0, r.stderr);
    const [mountLine, sha] = r.stdout.trim().split("\n");
    assert.equal(mountLine, "ext4 rw");
    writtenSha = sha ?? "";
    assert.match(writtenSha, /^[0-9a-f]{64}$/);
  });

  test("a read-only disk shows the image's files and refuses writes", async () => {
    const r = await sb.exec(
      "cat /srv/ro/hello.txt; grep ' /srv/ro ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; " +
        "touch /srv/ro/new 2>&1; echo rc=$?",
    );
    assert.match(r.stdout, /^from the host image\nro\n/);
    assert.match(r.stdout, /Read-only file system/);
    assert.match(r.stdout, /rc=1$/m);
  });

  test("a second sandbox cannot attach the volume read-write or read-only while it is in use", async () => {
    for (const readonly of [false, true]) {
      await assert.rejects(
        Sandbox.create({ disks: [{ volume: "work", guestPath: "/data", readonly }] }),
        (err: Error) =>
          err instanceof ErrVolumeInUse && /attached read-write by sandbox/.test(err.message),
      );
    }
    await assert.rejects(removeVolume("work"), ErrVolumeInUse);
  });

  test("single-file mounts: read-write, read-only and overlay, and nothing beside them", async () => {
    const r = await sb.exec(
      [
        "cat /srv/app.json && echo '{\"v\":2}' >> /srv/app.json",
        "cat /etc/wl/ro.conf; echo x 2>&1 > /etc/wl/ro.conf | sed 's/.*: //'",
        "echo changed > /srv/ov.txt && cat /srv/ov.txt",
        "stat -c %F /srv/app.json; ls /etc/wl",
        "ls /run/wheellock/vfs/srv | sort | tr '\\n' ' '; echo",
      ].join("\n"),
    );
    assert.deepEqual(r.stdout.split("\n"), [
      '{"v":1}',
      "read only",
      "Read-only file system",
      "changed",
      "regular file",
      "ro.conf",
      "app.json ov.txt ",
      "",
    ]);
    assert.equal(readFileSync(join(files, "app.json"), "utf8"), '{"v":1}\n{"v":2}\n');
    assert.equal(readFileSync(join(files, "ro.conf"), "utf8"), "read only\n");
    assert.equal(readFileSync(join(files, "ov.txt"), "utf8"), "lower\n");
  });

  test("a file mount over a symbolic link in the image is refused, and says so", async () => {
    // /etc/os-release is a link to ../usr/lib/os-release in Debian: a mount must not follow it.
    await assert.rejects(
      Sandbox.create({
        mounts: { "/etc/os-release": { type: "host_fs", hostPath: join(files, "app.json") } },
      }),
      /mount \/etc\/os-release failed: the image has a symbolic link at that path/,
    );
  });

  test("a sandbox with disks resumes from a memory snapshot", () => {
    assert.equal(sb.restoredFromSnapshot, true);
  });

  test("the overlay's kept upper layer holds the guest's changes after close", async () => {
    const r = await sb.exec("echo changed > /mnt/ov/base.txt && echo new > /mnt/ov/added.txt");
    assert.equal(r.exitCode, 0, r.stderr);
    keptUpper = sb.keptOverlays["/mnt/ov"] ?? "";
    assert.ok(keptUpper.startsWith(join(dataDir, "overlays")), keptUpper);
    await sb.close();
    assert.equal(readFileSync(join(keptUpper, "added.txt"), "utf8"), "new\n");
    assert.equal(readFileSync(join(keptUpper, "base.txt"), "utf8"), "changed\n");
    assert.equal(readFileSync(join(ov, "base.txt"), "utf8"), "lower\n");
    assert.ok(!existsSync(join(ov, "added.txt")));
  });
});

describe("sandboxes restored from one snapshot, each with a disk of its own", () => {
  const diskA = join(base, "a.ext4");
  const diskB = join(base, "b.ext4");
  // In the ext4 superblock, which any probe of the drive reads (its first 4 KiB).
  const labelA = randomBytes(8).toString("hex");
  const create = (hostPath: string, snapshot = true): Promise<VmSandbox> =>
    Sandbox.create({ snapshot, disks: [{ hostPath, guestPath: "/data" }] });
  const show = [
    "ls /data | grep -v lost+found | tr '\\n' ' '; echo",
    "cat /data/*.txt",
    'df -k /data | awk \'NR==2 {print ($2 > 40000) ? "big" : "small"}\'',
  ].join("; ");
  const oneSlotSnapshots = (): string[] =>
    listSnapshotKeys().filter((k) => readSnapshotMeta(k)?.inputs?.diskSlots?.join() === "rw");

  test("the first sandbox saves the snapshot from placeholder drives, then restores it", async () => {
    for (const key of oneSlotSnapshots()) discardSnapshot(key);
    makeExt4(diskA, "16M", { "a.txt": "A\n" }, labelA);
    const a = await create(diskA);
    try {
      assert.equal(a.restoredFromSnapshot, true);
      const r = await a.exec(`echo secret > /data/secret.txt && sync; ${show}`);
      assert.equal(r.stdout, "a.txt secret.txt \nA\nsecret\nsmall\n");
    } finally {
      await a.close();
    }
    const [key, ...more] = oneSlotSnapshots();
    assert.ok(key !== undefined && more.length === 0, "one snapshot with one disk slot");
    const ram = snapshotFiles(key)!.memoryPath;
    const grep = spawnSync("grep", ["-c", "-a", "-F", labelA, ram], { encoding: "utf8" });
    assert.equal(grep.stdout, "0\n", "the saved memory holds nothing of the first sandbox's disk");
  });

  test("the next sees its own disk as the host wrote it just before, at its size", async () => {
    makeExt4(diskB, "64M", { "b.txt": "B\n" });
    const b = await create(diskB);
    try {
      assert.equal(b.restoredFromSnapshot, true);
      const r = await b.exec(show);
      assert.equal(r.stdout, "b.txt \nB\nbig\n", r.stderr);
    } finally {
      await b.close();
    }
  });

  test("a disk the host cannot open fails the start and leaves the shared snapshot", async () => {
    const [key] = oneSlotSnapshots();
    assert.ok(key !== undefined);
    const locked = join(base, "immutable.ext4");
    makeExt4(locked, "16M", {});
    assert.equal(spawnSync("chattr", ["+i", locked]).status, 0);
    try {
      await assert.rejects(create(locked), /EPERM|operation not permitted/);
    } finally {
      spawnSync("chattr", ["-i", locked]);
    }
    assert.deepEqual(oneSlotSnapshots(), [key], "the snapshot is not the disk's fault");
  });

  test("a disk path that leads into a reserved place (a symlink in the image) is refused at once", async () => {
    // /var/run -> /run in the image: into the mounts' own filesystem, whose INIT waits for
    // the relay (it used to hang the start), and into /run at all.
    const started = Date.now();
    await assert.rejects(
      Sandbox.create({
        disks: [{ hostPath: diskB, guestPath: "/var/run/wheellock/vfs" }],
        mounts: { "/workspace": { type: "memory" } },
      }),
      /disk 0 on \/var\/run\/wheellock\/vfs failed: Invalid argument/,
    );
    await assert.rejects(
      Sandbox.create({ disks: [{ hostPath: diskB, guestPath: "/var/run/data" }] }),
      /disk 0 on \/var\/run\/data failed: Invalid argument/,
    );
    // Cold, the agent mounts the disks at boot: the same check, and the agent's reason.
    await assert.rejects(
      Sandbox.create({ snapshot: false, disks: [{ hostPath: diskB, guestPath: "/var/run/data" }] }),
      /disk path \/var\/run\/data leads to \/run\/data, where no disk may be mounted/,
    );
    assert.ok(Date.now() - started < 40_000, "refused, not timed out");
  });

  test("restored, a small file that is no file system says it did not mount as ext4 (review rev19)", async () => {
    // What `--disk /etc/passwd:/d` attached: the kernel's ENOMEM read as the guest being short
    // of memory.
    const small = join(base, "small.txt");
    writeFileSync(small, "root:x:0:0:root:/root:/bin/sh\n".repeat(40));
    await assert.rejects(
      create(small),
      /disk 0 on \/data failed: the image could not be mounted as an ext4 file system \(is it one\? mount said: [^)\n]+\)$/,
    );
  });

  test("cold (snapshot: false), a disk that is no file system fails with the agent's reason", async () => {
    const junk = join(base, "junk.img");
    writeFileSync(junk, Buffer.alloc(8 << 20, 0x5a));
    await assert.rejects(
      Sandbox.create({ snapshot: false, disks: [{ hostPath: junk, guestPath: "/data" }] }),
      /disk wl-disk0 \(\/dev\/vd[a-z]\) on \/data: mount as ext4: Invalid argument\n.*FATAL: mounting a disk/,
    );
  });

  test("cold (snapshot: false), the agent mounts the disks at boot", async () => {
    const again = await create(diskA, false);
    try {
      assert.equal(again.restoredFromSnapshot, false);
      const r = await again.exec(show);
      assert.equal(r.stdout, "a.txt secret.txt \nA\nsecret\nsmall\n");
    } finally {
      await again.close();
    }
  });
});

test("CLI: the volume's data is there in the next sandbox; ls and rm once it is free", () => {
  assert.ok(writtenSha !== "", "the first sandbox wrote the volume");
  const run = spawnSync(
    process.execPath,
    [
      ...cli,
      "run",
      "--disk",
      "@work:/other",
      "--",
      "sh",
      "-c",
      "sha256sum /other/blob | cut -c1-64; cat /other/dir/note",
    ],
    { encoding: "utf8" },
  );
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, `${writtenSha}\nkept\n`);
  const ls = spawnSync(process.execPath, [...cli, "volume", "ls"], { encoding: "utf8" });
  assert.match(ls.stdout, /^NAME\s+SIZE\nwork\s+64\.0 MB\n$/);
  const rm = spawnSync(process.execPath, [...cli, "volume", "rm", "work"], { encoding: "utf8" });
  assert.equal(rm.stdout, "Removed volume work\n", rm.stderr);
  assert.equal(readdirSync(join(dataDir, "volumes")).length, 0);
});

test("CLI: bad --disk specs and missing volumes are one clear line, before any VM starts", async () => {
  for (const [spec, message] of [
    ["nope", /invalid disk mount "nope": expected format/],
    ["@missing:/d", /named volume not found: missing/],
    [`${roImage}:/d:rw`, /unknown disk option "rw" \(use "ro"\)/],
    [`${roImage}:relative`, /invalid guest mount path "relative"/],
    [`${roImage}:/proc/x`, /cannot mount a disk on \/proc\/x/],
  ] as const) {
    const r = spawnSync(process.execPath, [...cli, "run", "--disk", spec, "--", "true"], {
      encoding: "utf8",
    });
    assert.notEqual(r.status, 0, spec);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  assert.deepEqual(await listVolumes(), []);
});
