// MOUNT after a boot or restore: a failure or a guest that never answers fails the start with
// one clear error (the agent binds on its main thread, with no timeout of its own).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { GuestAgent } from "../../src/channel/index.js";
import { mountDisksWithin, mountWithin } from "../../src/sandbox/guest-apply.js";

function agentWhoseMount(result: () => Promise<void>): GuestAgent {
  return { mount: () => result() } as unknown as GuestAgent;
}

test("a MOUNT that is never answered fails the start after the timeout", async () => {
  const started = Date.now();
  await assert.rejects(
    mountWithin(
      agentWhoseMount(() => new Promise<void>(() => undefined)),
      ["/w"],
      50,
    ),
    { code: "ErrInvalidConfig", message: /mounts: mounts did not finish/ },
  );
  assert.ok(Date.now() - started >= 45);
});

test("a MOUNT error names itself; an answered MOUNT passes", async () => {
  await assert.rejects(
    mountWithin(
      agentWhoseMount(() => Promise.reject(new Error("mount /w failed"))),
      ["/w"],
      1000,
    ),
    { code: "ErrInvalidConfig", message: "invalid configuration: mounts: mount /w failed" },
  );
  await mountWithin(
    agentWhoseMount(() => Promise.resolve()),
    ["/w"],
    1000,
  );
});

function agentWhoseDiskMount(result: () => Promise<void>): GuestAgent {
  return { mountDisks: () => result() } as unknown as GuestAgent;
}

// A DISK_MOUNT that never returned (a disk path into the FUSE filesystem before its relay ran,
// `/var/run/wheellock/vfs` through the image's /var/run symlink) hung the start for good.
test("a DISK_MOUNT that is never answered fails the start after the timeout", async () => {
  const started = Date.now();
  await assert.rejects(
    mountDisksWithin(
      agentWhoseDiskMount(() => new Promise<void>(() => undefined)),
      [{ guestPath: "/d", readonly: false }],
      50,
    ),
    { code: "ErrInvalidConfig", message: /disks: disks did not finish mounting/ },
  );
  assert.ok(Date.now() - started >= 45);
  await assert.rejects(
    mountDisksWithin(
      agentWhoseDiskMount(() => Promise.reject(new Error("DISK_MOUNT: disk 0 on /d failed"))),
      [{ guestPath: "/d", readonly: false }],
      1000,
    ),
    { message: "invalid configuration: disks: DISK_MOUNT: disk 0 on /d failed" },
  );
  await mountDisksWithin(
    agentWhoseDiskMount(() => Promise.resolve()),
    [{ guestPath: "/d", readonly: false }],
    1000,
  );
});
