import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { checkFragmentApplied, fragmentPath } from "../../src/setup/min-kernel.js";
import { ErrSetup } from "../../src/errors.js";

const FRAGMENT = "# comment\nCONFIG_VIRTIO_BLK=y\nCONFIG_NR_CPUS=64\n# CONFIG_PCI is not set\n";

test("a config that kept every fragment line passes", () => {
  checkFragmentApplied(
    FRAGMENT,
    "CONFIG_VIRTIO_BLK=y\nCONFIG_NR_CPUS=64\n# CONFIG_PCI is not set\n",
  );
});

test("an option olddefconfig dropped (unmet dependency) fails the build by name", () => {
  assert.throws(
    () => checkFragmentApplied(FRAGMENT, "CONFIG_NR_CPUS=64\n# CONFIG_VIRTIO_BLK is not set\n"),
    (err: unknown) => err instanceof ErrSetup && /CONFIG_VIRTIO_BLK=y/.test(err.message),
  );
  assert.throws(
    () => checkFragmentApplied(FRAGMENT, "CONFIG_VIRTIO_BLK=y\nCONFIG_NR_CPUS=8\n"),
    /CONFIG_NR_CPUS=64/,
  );
});

test("an option wanted off but selected by another fails the build", () => {
  assert.throws(
    () => checkFragmentApplied(FRAGMENT, "CONFIG_VIRTIO_BLK=y\nCONFIG_NR_CPUS=64\nCONFIG_PCI=y\n"),
    /CONFIG_PCI \(wanted off\)/,
  );
});

test("the shipped fragment builds in what the guest agent cannot boot without", () => {
  const text = readFileSync(fragmentPath(), "utf8");
  for (const opt of [
    "VIRTIO_MMIO",
    "VIRTIO_BLK",
    "VIRTIO_CONSOLE",
    "VIRTIO_NET",
    "EXT4_FS",
    "OVERLAY_FS",
    "FUSE_FS",
    "DEVTMPFS",
    "BLK_DEV_INITRD",
    "UNIX98_PTYS",
    "SECCOMP_FILTER",
  ])
    assert.match(text, new RegExp(`^CONFIG_${opt}=y$`, "m"), opt);
  assert.match(text, /^# CONFIG_MODULES is not set$/m);
});
