import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { snapshotKey, type SnapshotInputs } from "../../src/sandbox/snapshot-store.js";

const dir = mkdtempSync(join(tmpdir(), "wl-snapkey-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
for (const f of ["vmlinuz", "initrd", "image"]) writeFileSync(join(dir, f), f);

const base: SnapshotInputs = {
  kernelPath: join(dir, "vmlinuz"),
  initramfsPath: join(dir, "initrd"),
  imagePath: join(dir, "image"),
  accel: "tcg",
  vcpus: 1,
  memoryMb: 512,
  diskSizeMb: 5120,
  kernelArgs: [],
  networkMtu: 65520,
};

test("the snapshot key changes with everything the saved state depends on", () => {
  const key = snapshotKey(base);
  assert.equal(snapshotKey({ ...base }), key, "stable for the same inputs");
  const variants: Partial<SnapshotInputs>[] = [
    { accel: "kvm" },
    { vcpus: 2 },
    { memoryMb: 1024 },
    { diskSizeMb: 1024 },
    { kernelArgs: ["wheellock.privileged=1"] },
    { networkMtu: undefined },
    { imagePath: join(dir, "initrd") },
  ];
  for (const v of variants) assert.notEqual(snapshotKey({ ...base, ...v }), key, JSON.stringify(v));
});

test("a rebuilt kernel, agent or image (same path, new content) changes the key", () => {
  const key = snapshotKey(base);
  writeFileSync(join(dir, "initrd"), "a rebuilt agent");
  assert.notEqual(snapshotKey(base), key);
  const key2 = snapshotKey(base);
  const later = new Date(Date.now() + 5000);
  utimesSync(join(dir, "vmlinuz"), later, later);
  assert.notEqual(snapshotKey(base), key2);
});

test("extra disks: the key names each disk slot's read-only flag, never the disk itself", async () => {
  const { snapshotKeyFor } = await import("../../src/sandbox/snapshot-policy.js");
  const { resolveSandboxOptions } = await import("../../src/config/index.js");
  for (const f of ["disk1.ext4", "disk2.ext4"]) writeFileSync(join(dir, f), "");
  const req = {
    runDir: dir,
    accel: "tcg" as const,
    cpus: 1,
    memoryMb: 512,
    kernelPath: base.kernelPath,
    initramfsPath: base.initramfsPath,
    kernelArgs: [],
    imagePath: base.imagePath,
    upperDiskPath: join(dir, "upper"),
    bootTimeoutMs: 1000,
    onFatal: () => undefined,
  };
  const keyWith = (disks: { file: string; at: string; readonly?: boolean }[]) =>
    snapshotKeyFor(
      resolveSandboxOptions({
        snapshot: true,
        noNetwork: true,
        disks: disks.map((d) => ({
          hostPath: join(dir, d.file),
          guestPath: d.at,
          readonly: d.readonly ?? false,
        })),
      }),
      req,
      {},
    );
  const plain = keyWith([]);
  const one = keyWith([{ file: "disk1.ext4", at: "/data" }]);
  assert.notEqual(one, undefined, "a sandbox with a disk may use a snapshot");
  assert.notEqual(one, plain, "a snapshot with a disk slot is not the plain one");
  assert.equal(keyWith([{ file: "disk2.ext4", at: "/other" }]), one, "another disk, same slot");
  assert.notEqual(keyWith([{ file: "disk1.ext4", at: "/data", readonly: true }]), one);
  const two = keyWith([
    { file: "disk1.ext4", at: "/a" },
    { file: "disk2.ext4", at: "/b", readonly: true },
  ]);
  assert.notEqual(two, one);
  assert.notEqual(
    two,
    keyWith([
      { file: "disk1.ext4", at: "/a", readonly: true },
      { file: "disk2.ext4", at: "/b" },
    ]),
    "slot order counts",
  );
});

test("mounts are not in the key: a sandbox with a host-dir workspace restores the plain snapshot", async () => {
  const { snapshotKeyFor } = await import("../../src/sandbox/snapshot-policy.js");
  const { resolveSandboxOptions } = await import("../../src/config/index.js");
  const req = {
    runDir: dir,
    accel: "tcg" as const,
    cpus: 1,
    memoryMb: 512,
    kernelPath: base.kernelPath,
    initramfsPath: base.initramfsPath,
    kernelArgs: [],
    imagePath: base.imagePath,
    upperDiskPath: join(dir, "upper"),
    bootTimeoutMs: 1000,
    onFatal: () => undefined,
  };
  const plain = resolveSandboxOptions({ snapshot: true, noNetwork: true });
  const mounted = resolveSandboxOptions({
    snapshot: true,
    noNetwork: true,
    mounts: { "/workspace": { type: "host_fs", hostPath: dir }, "/scratch": { type: "memory" } },
  });
  assert.equal(snapshotKeyFor(mounted, req, {}), snapshotKeyFor(plain, req, {}));
  assert.equal(snapshotKeyFor(plain, req, { rawPorts: [{}] }), undefined, "bench raw ports boot");
});
