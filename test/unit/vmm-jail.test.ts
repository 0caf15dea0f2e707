// The QEMU jail's decisions without a VM: ids, groups for /dev/kvm, permission checks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { claimJailId, JAIL_ID_BASE, JAIL_SLOTS } from "../../src/vmm/jail-ids.js";
import {
  jailedCommand,
  kvmGroups,
  mayOpen,
  setprivJailArgs,
  SNAPSHOT_RAM_GID,
} from "../../src/vmm/jail.js";

test("jail ids are unique while claimed, from the reserved range, and never the snapshot group", () => {
  const claims = Array.from({ length: 300 }, () => claimJailId());
  try {
    const ids = claims.map((c) => c.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) {
      assert.ok(id > JAIL_ID_BASE && id < JAIL_ID_BASE + JAIL_SLOTS, String(id));
      assert.notEqual(id, SNAPSHOT_RAM_GID);
      assert.ok(id < 2 ** 31, "below the ids tools treat as negative");
    }
  } finally {
    for (const c of claims) c.release();
  }
  if (existsSync("/run/wheellock/jail-ids")) {
    for (const c of claims) assert.ok(!existsSync(`/run/wheellock/jail-ids/${c.id}`));
  }
});

test("/dev/kvm: no group when open to all, its group when group read-write, else a clear refusal", () => {
  assert.deepEqual(kvmGroups({ mode: 0o20666, gid: 108 }), []);
  assert.deepEqual(kvmGroups({ mode: 0o20660, gid: 108 }), [108]);
  assert.throws(() => kvmGroups({ mode: 0o20600, gid: 0 }), /--accel tcg/);
});

test("permission checks follow owner, then group, then others", () => {
  const jail = { uid: JAIL_ID_BASE + 7, gid: JAIL_ID_BASE + 7, groups: [SNAPSHOT_RAM_GID] };
  const file = (mode: number, uid = 0, gid = 0) => ({ mode: 0o100000 | mode, uid, gid });
  assert.equal(mayOpen(file(0o644), jail, false), true, "world-readable kernel");
  assert.equal(mayOpen(file(0o600), jail, false), false, "root-only file");
  assert.equal(mayOpen(file(0o660, 0, SNAPSHOT_RAM_GID), jail, true), true, "snapshot RAM");
  assert.equal(mayOpen(file(0o640, 0, SNAPSHOT_RAM_GID), jail, true), false);
  assert.equal(mayOpen(file(0o600, jail.uid, jail.gid), jail, true), true, "its own RAM file");
  // The owner class decides alone: an owner without rights gets none from "others".
  assert.equal(mayOpen(file(0o066, jail.uid), jail, false), false);
});

test("setpriv drops every capability and keeps only the groups asked for", () => {
  const jail = { uid: 1879048200, gid: 1879048200, groups: [], release: () => undefined };
  assert.deepEqual(setprivJailArgs(jail), [
    "--reuid",
    "1879048200",
    "--regid",
    "1879048200",
    "--clear-groups",
    "--inh-caps",
    "-all",
    "--bounding-set",
    "-all",
    "--no-new-privs",
  ]);
  const withKvm = setprivJailArgs({ ...jail, groups: [108, SNAPSHOT_RAM_GID] });
  assert.equal(withKvm[withKvm.indexOf("--groups") + 1], `108,${SNAPSHOT_RAM_GID}`);
  assert.ok(!withKvm.includes("--clear-groups"));
});

test("the jailed command: own namespaces, then the user switch, then the parent-death signal", () => {
  const jail = { uid: 1879048200, gid: 1879048200, groups: [], release: () => undefined };
  const argv = jailedCommand(jail, ["/usr/bin/qemu-system-x86_64", "-M", "microvm"]);
  assert.match(argv[0]!, /\/unshare$/);
  assert.deepEqual(argv.slice(1, 4), ["--net", "--ipc", "--"]);
  assert.match(argv[4]!, /\/setpriv$/);
  // A uid change clears the parent-death signal: setpriv applies it last, and unshare execs
  // without forking, so the signal is armed in the process we spawned.
  assert.ok(argv.indexOf("--reuid") < argv.indexOf("--pdeathsig"));
  assert.ok(!argv.includes("--fork"));
  assert.deepEqual(argv.slice(-3), ["/usr/bin/qemu-system-x86_64", "-M", "microvm"]);
});
