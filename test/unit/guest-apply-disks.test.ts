// After a boot or restore the agent gets the sandbox's disks by DISK_MOUNT: after CONFIGURE
// (a restore sends it first: `configured`), before MOUNT, one entry per disk in slot order, read-only ones tagged as such.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DiskMountTag, FrameType } from "../../src/channel/contract.js";
import { applyGuestSettings } from "../../src/sandbox/guest-apply.js";
import { setup } from "./channel-setup.js";

const settings = {
  hostname: "sb",
  mountPaths: ["/workspace"],
  networkSetup: { caPem: undefined, addHosts: {} },
  configured: true,
};

test("DISK_MOUNT precedes MOUNT, disk i as entry i", async () => {
  const { channel, guest } = setup();
  await applyGuestSettings(channel, {
    ...settings,
    disks: [
      { guestPath: "/data", readonly: false },
      { guestPath: "/srv/ro", readonly: true },
      { guestPath: "/b", readonly: false },
    ],
  });
  assert.deepEqual(
    guest.requests.map((r) => r.type),
    [FrameType.DiskMount, FrameType.Mount],
  );
  const entries = guest.requests[0]!.record.fields.map((f) => [f.tag, f.value.toString()]);
  assert.deepEqual(entries, [
    [DiskMountTag.Path, "/data"],
    [DiskMountTag.ReadonlyPath, "/srv/ro"],
    [DiskMountTag.Path, "/b"],
  ]);
  channel.close();
});

test("no disks (or a VM that boots with them on its command line): no DISK_MOUNT", async () => {
  const { channel, guest } = setup();
  await applyGuestSettings(channel, { ...settings, disks: [] });
  assert.deepEqual(
    guest.requests.map((r) => r.type),
    [FrameType.Mount],
  );
  channel.close();
});
