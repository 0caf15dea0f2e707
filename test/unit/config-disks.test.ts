import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkDisks, parseDiskSpec } from "../../src/config/disks.js";
import { resolveSandboxOptions } from "../../src/config/index.js";
import { SandboxDisks } from "../../src/sandbox/disks.js";
import { ErrVolumeInUse, diskHolders, lockDisk } from "../../src/volumes/index.js";
import { planQemuLaunch } from "../../src/vmm/qemu-args.js";

const dir = mkdtempSync(join(tmpdir(), "wheellock-disks-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
process.env.WHEELLOCK_DATA_DIR = join(dir, "data");
const image = join(dir, "d.ext4");
writeFileSync(image, "");
mkdirSync(join(dir, "data", "volumes"), { recursive: true });
writeFileSync(join(dir, "data", "volumes", "cache.ext4"), "");

test("--disk: host paths, @volumes and :ro, with the reference's error texts", () => {
  assert.deepEqual(parseDiskSpec("d.ext4:/mnt", dir), {
    hostPath: image,
    guestPath: "/mnt",
    readonly: false,
  });
  assert.deepEqual(parseDiskSpec("@cache:/c:RO"), {
    volume: "cache",
    guestPath: "/c",
    readonly: true,
  });
  assert.throws(() => parseDiskSpec("x"), /invalid disk mount "x": expected format host_path/);
  assert.throws(() => parseDiskSpec(":/m"), /expected format/);
  assert.throws(() => parseDiskSpec("a:/m:ro:x"), /expected format/);
  assert.throws(() => parseDiskSpec("a:/m:rw"), /unknown disk option "rw" \(use "ro"\)/);
});

test("disks: resolved to image paths; bad paths, duplicates and shadowed disks refused", () => {
  const [a, b] = checkDisks(
    [
      { hostPath: image, guestPath: "/data/" },
      { volume: " cache ", guestPath: "/cache", readonly: true },
    ],
    [],
  );
  assert.deepEqual(a, {
    hostPath: image,
    guestPath: "/data",
    readonly: false,
    volume: undefined,
    hostIdentity: undefined,
  });
  assert.equal(b?.hostPath, join(dir, "data", "volumes", "cache.ext4"));
  assert.equal(b?.readonly, true);
  const bad = (disks: unknown, re: RegExp, mounts: string[] = []) =>
    assert.throws(() => checkDisks(disks, mounts), re);
  bad({}, /disks must be an array/);
  bad([{ volume: "nope", guestPath: "/x" }], /named volume not found: nope/);
  bad([{ hostPath: join(dir, "missing"), guestPath: "/x" }], /disk image not found/);
  bad([{ hostPath: dir, guestPath: "/x" }], /must be a file/);
  bad(
    [{ hostPath: image, volume: "cache", guestPath: "/x" }],
    /exactly one of hostPath and volume/,
  );
  bad([{ guestPath: "/x" }], /exactly one of hostPath and volume/);
  bad([{ hostPath: image, guestPath: "x" }], /invalid guest mount path "x"/);
  bad([{ hostPath: image, guestPath: "/a b" }], /invalid guest mount path/);
  bad([{ hostPath: image, guestPath: "/a/../etc" }], /invalid guest mount path/);
  bad([{ hostPath: image, guestPath: "/" }], /invalid guest mount path "\/"/);
  bad([{ hostPath: image, guestPath: "/dev/x" }], /cannot mount a disk on \/dev\/x/);
  bad(
    [
      { hostPath: image, guestPath: "/x" },
      { volume: "cache", guestPath: "/x/" },
    ],
    /two disks are mounted at \/x/,
  );
  bad([{ hostPath: image, guestPath: "/w/sub" }], /shadowed by the VFS mount at \/w/, ["/w"]);
  // Mounted in list order: a disk inside one listed after it would be hidden (not the reverse).
  bad(
    [
      { hostPath: image, guestPath: "/a/b" },
      { volume: "cache", guestPath: "/a", readonly: true },
    ],
    /disks\[1\]: disk at \/a\/b would be hidden by this one at \/a: list \/a first/,
  );
  assert.equal(
    checkDisks(
      [
        { hostPath: image, guestPath: "/a" },
        { volume: "cache", guestPath: "/a/b", readonly: true },
        { volume: "cache", guestPath: "/ab", readonly: true },
      ],
      [],
    ).length,
    3,
  );
  bad([{ volume: "../x", guestPath: "/x" }], /invalid volume name/);
  bad(
    Array.from({ length: 9 }, (_, i) => ({ hostPath: image, guestPath: `/d${i}` })),
    /at most 8/,
  );
  // Through the SDK options: mounts are taken into account.
  assert.throws(
    () =>
      resolveSandboxOptions({
        mounts: { "/w": { type: "memory" } },
        disks: [{ hostPath: image, guestPath: "/w" }],
      }),
    /invalid configuration: disks\[0\]: disk at \/w will be shadowed/,
  );
  assert.deepEqual(resolveSandboxOptions({}).disks, []);
});

test("the guest is told where disk i goes; persistent disks honour guest flushes", () => {
  const disks = checkDisks(
    [
      { hostPath: image, guestPath: "/a" },
      { volume: "cache", guestPath: "/b", readonly: true },
    ],
    [],
  );
  const attached = SandboxDisks.attach("vm-00000001", disks);
  try {
    assert.deepEqual(attached.kernelArgs, ["wheellock.disks=/a,/b:ro"]);
    const plan = planQemuLaunch({
      accel: "tcg",
      cpus: 1,
      memoryMb: 256,
      kernelPath: "/k",
      initramfsPath: "/i",
      kernelArgs: [],
      disks: attached.vmDisks,
      controlSocketPath: "/c",
      consoleLogPath: "/l",
      consoleSocketPath: "/s",
    });
    const args = plan.args.join(" ");
    // Disks reach QEMU as descriptors (an fdset each), the writable one both ways.
    assert.deepEqual(
      plan.descriptors.flatMap((d) => (d.kind === "file" ? [[d.path, d.write]] : [])),
      [
        [attached.vmDisks[0]!.path, false],
        [attached.vmDisks[0]!.path, true],
        [attached.vmDisks[1]!.path, false],
      ],
    );
    assert.match(attached.vmDisks[0]!.path, /d\.ext4$/);
    assert.match(
      args,
      /file=\/dev\/fdset\/1,file\.locking=off,format=raw,if=none,readonly=off,cache=writeback/,
    );
    assert.match(
      args,
      /readonly=on,cache=writeback -device virtio-blk-device,drive=disk1,serial=wl-disk1/,
    );
  } finally {
    attached.release();
  }
  assert.deepEqual(diskHolders(image), []);
});

test("attach locks: one writer or many readers; all-or-nothing; dead holders swept", () => {
  const r1 = lockDisk(image, "vm-r1", true);
  const r2 = lockDisk(image, "vm-r2", true);
  assert.throws(() => lockDisk(image, "vm-w", false), ErrVolumeInUse);
  r1.release();
  r2.release();
  const w = lockDisk(image, "vm-w", false);
  assert.throws(() => lockDisk(image, "vm-r3", true), /attached read-write by sandbox vm-w/);
  assert.throws(() => lockDisk(image, "vm-w2", false), /only one sandbox may attach it/);
  // A failed multi-disk attach releases what it took.
  const other = join(dir, "other.ext4");
  writeFileSync(other, "");
  const both = checkDisks(
    [
      { hostPath: other, guestPath: "/o" },
      { hostPath: image, guestPath: "/i" },
    ],
    [],
  );
  assert.throws(() => SandboxDisks.attach("vm-multi", both), ErrVolumeInUse);
  assert.deepEqual(diskHolders(other), []);
  w.release();
  w.release();
  // An entry left by a process that no longer exists does not block anyone.
  const locks = join(dir, "data", "disk-locks");
  const probe = lockDisk(image, "vm-probe", false);
  const imageDir = readdirSync(locks)
    .map((k) => join(locks, k))
    .find((d) => readdirSync(d).some((e) => e.endsWith(".vm-probe.rw")));
  probe.release();
  assert.ok(imageDir !== undefined);
  writeFileSync(join(imageDir, "999999999-1.vm-dead.rw"), "");
  lockDisk(image, "vm-alive", false).release();
  assert.deepEqual(readdirSync(imageDir), []);
});
