// Attacks: a sandbox given a host path that holds, is, or lies inside wheellock's own data,
// run or cache dir (mounting $HOME with the default data dir) would let its guest read and
// write its own run dir, other sandboxes' records, checkpoints and their key. Refused when
// the sandbox is planned (the SDK, the CLI and a serve node all plan through planSandbox).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { planSandbox, type SandboxOptions } from "../../src/config/index.js";
import { ErrInvalidConfig } from "../../src/errors.js";
import { nodeOptions } from "../../src/serve/create-options.js";
import { wheellockSync } from "../helpers/lifecycle.js";

const scratch = mkdtempSync(join(tmpdir(), "wheellock-own-dirs-"));
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));
const home = join(scratch, "home");
const data = join(home, ".local", "share", "wheellock");
const cache = join(scratch, "cache", "wheellock");
const runs = join(scratch, "runs");
process.env.WHEELLOCK_DATA_DIR = data;
process.env.WHEELLOCK_CACHE_DIR = cache;
process.env.WHEELLOCK_RUN_DIR = runs;
for (const d of [join(data, "checkpoints"), join(data, "volumes"), cache, join(runs, "sb1")])
  mkdirSync(d, { recursive: true });
writeFileSync(join(data, "checkpoints", "key"), "secret");
writeFileSync(join(data, "checkpoints", "snap.ext4"), "");
writeFileSync(join(data, "volumes", "v.ext4"), "");
writeFileSync(join(runs, "sb1", "upper.ext4"), "");
const work = join(home, "project");
mkdirSync(work);
writeFileSync(join(scratch, "image.ext4"), "");

const plan = (o: SandboxOptions) => planSandbox(o, {}, 4);

function refused(o: SandboxOptions, re: RegExp): void {
  assert.throws(
    () => plan(o),
    (err: unknown) => {
      assert.ok(err instanceof ErrInvalidConfig, String(err));
      assert.match(err.message, re);
      assert.ok(!err.message.includes("\n"), "one line");
      return true;
    },
  );
}

test("a host_fs or overlay mount holding, equal to or inside a wheellock dir is refused", () => {
  const hostFs = (hostPath: string): SandboxOptions => ({
    mounts: { "/h": { type: "host_fs", hostPath } },
  });
  refused(hostFs(home), /mounts\["\/h"\]: host path .* holds wheellock's data dir/);
  refused(hostFs(scratch), /holds wheellock's data dir/);
  refused(hostFs("/"), /holds wheellock's data dir/);
  refused(hostFs(data), /holds wheellock's data dir/);
  refused(hostFs(join(data, "checkpoints")), /is inside wheellock's data dir/);
  refused(hostFs(join(data, "checkpoints", "key")), /is inside wheellock's data dir/);
  refused(hostFs(join(runs, "sb1")), /is inside wheellock's run dir/);
  refused(hostFs(join(scratch, "cache")), /holds wheellock's cache dir/);
  refused(
    { mounts: { "/o": { type: "overlay", hostPath: home, readonly: true } } },
    /mounts\["\/o"\]: .* holds wheellock's data dir/,
  );
});

test("a hard link of a file in the data dir is refused as a file mount and as a disk", () => {
  const links = mkdtempSync(join(tmpdir(), "wheellock-own-dirs-hardlinks-"));
  try {
    linkSync(join(data, "checkpoints", "key"), join(links, "key"));
    linkSync(join(data, "volumes", "v.ext4"), join(links, "v.ext4"));
    refused(
      { mounts: { "/k": { type: "host_fs", hostPath: join(links, "key"), readonly: true } } },
      /is a hard link of wheellock's .*checkpoints\/key/,
    );
    refused(
      { disks: [{ hostPath: join(links, "v.ext4"), guestPath: "/d" }] },
      /is a hard link of wheellock's .*volumes\/v.ext4/,
    );
    // A file with other names outside the data dir is fine.
    writeFileSync(join(links, "a"), "x");
    linkSync(join(links, "a"), join(links, "b"));
    plan({ mounts: { "/a": { type: "host_fs", hostPath: join(links, "a"), readonly: true } } });
  } finally {
    rmSync(links, { recursive: true, force: true });
  }
});

test("a symlink does not hide a wheellock dir from the check", () => {
  const links = mkdtempSync(join(tmpdir(), "wheellock-own-dirs-links-"));
  try {
    symlinkSync(home, join(links, "to-home"));
    symlinkSync(join(data, "checkpoints"), join(links, "to-checkpoints"));
    refused(
      { mounts: { "/h": { type: "host_fs", hostPath: join(links, "to-home") } } },
      /holds wheellock's data dir/,
    );
    refused(
      { mounts: { "/h": { type: "host_fs", hostPath: join(links, "to-checkpoints") } } },
      /is inside wheellock's data dir/,
    );
    // The data dir itself reached through a symlink: the mount of its real parent is refused.
    process.env.WHEELLOCK_DATA_DIR = join(links, "to-home", ".local", "share", "wheellock");
    refused({ mounts: { "/h": { type: "host_fs", hostPath: home } } }, /holds wheellock's data/);
  } finally {
    process.env.WHEELLOCK_DATA_DIR = data;
    rmSync(links, { recursive: true, force: true });
  }
});

test("a data dir not made yet is protected where it will be made", () => {
  process.env.WHEELLOCK_DATA_DIR = join(work, "not-yet", "wheellock");
  try {
    refused({ mounts: { "/h": { type: "host_fs", hostPath: work } } }, /holds wheellock's data/);
  } finally {
    process.env.WHEELLOCK_DATA_DIR = data;
  }
});

test("a disk image inside a wheellock dir is refused; a named volume and others are not", () => {
  refused(
    { disks: [{ hostPath: join(data, "checkpoints", "snap.ext4"), guestPath: "/d" }] },
    /disks\[0\]: disk image .* is inside wheellock's data dir/,
  );
  refused(
    { disks: [{ hostPath: join(data, "volumes", "v.ext4"), guestPath: "/d", readonly: true }] },
    /is inside wheellock's data dir/,
  );
  refused(
    { disks: [{ hostPath: join(runs, "sb1", "upper.ext4"), guestPath: "/d" }] },
    /is inside wheellock's run dir/,
  );
  assert.equal(plan({ disks: [{ volume: "v", guestPath: "/d" }] }).disks.length, 1);
  assert.equal(
    plan({ disks: [{ hostPath: join(scratch, "image.ext4"), guestPath: "/d" }] }).disks.length,
    1,
  );
});

test("what wheellock itself shares with guests stays mountable: kept overlays, build cache mounts", () => {
  const kept = join(data, "overlays", "sb1-work");
  const buildMount = join(cache, "build", "mounts", "0123abcd");
  const stepSecrets = join(cache, "images", "oci", "tmp", "build-1-x", "run-y", "secrets-z");
  for (const d of [kept, buildMount, stepSecrets]) mkdirSync(d, { recursive: true });
  const p = plan({
    mounts: {
      "/k": { type: "host_fs", hostPath: kept },
      "/c": { type: "host_fs", hostPath: buildMount },
      "/s": { type: "host_fs", hostPath: stepSecrets, readonly: true },
    },
  });
  assert.equal(Object.keys(p.mounts).length, 3);
  // Not the places themselves: all sandboxes' kept layers, all build caches.
  refused(
    { mounts: { "/k": { type: "host_fs", hostPath: join(data, "overlays") } } },
    /is inside wheellock's data dir/,
  );
  refused(
    { mounts: { "/c": { type: "host_fs", hostPath: join(cache, "build", "mounts") } } },
    /is inside wheellock's cache dir/,
  );
});

test("mounts beside the wheellock dirs are fine", () => {
  const p = plan({
    mounts: {
      "/w": { type: "host_fs", hostPath: work },
      "/o": { type: "overlay", hostPath: work },
      "/m": { type: "memory" },
    },
  });
  assert.equal(Object.keys(p.mounts).length, 3);
});

test("attack: `wheellock run -v $HOME:/workspace` and `-d` are refused with one line, before any VM", () => {
  for (const args of [
    ["run", "-v", `${home}:/workspace`, "--", "true"],
    ["run", "-d", "--disk", `${join(data, "checkpoints", "snap.ext4")}:/d`],
  ]) {
    const r = wheellockSync(args, { ...process.env });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^wheellock: invalid configuration: .* wheellock's data dir .*\n$/);
  }
});

test("a serve node refuses callers what wheellock shares with its own guests", () => {
  const kept = join(data, "overlays", "sb1-work");
  const buildMount = join(cache, "build", "mounts", "0123abcd");
  for (const d of [kept, buildMount]) mkdirSync(d, { recursive: true });
  for (const [hostPath, re] of [
    [kept, /mounts\["\/k"\]\.hostPath: .* is inside wheellock's data dir/],
    [buildMount, /mounts\["\/k"\]\.hostPath: .* is inside wheellock's cache dir/],
  ] as const)
    assert.throws(
      () => nodeOptions({ mounts: { "/k": { type: "host_fs", hostPath } } }, [scratch]),
      (err: unknown) => err instanceof ErrInvalidConfig && re.test(err.message),
    );
});

test("proc, sys and dev paths are refused as mounts and disks", () => {
  const links = mkdtempSync(join(tmpdir(), "wheellock-own-dirs-proc-"));
  try {
    symlinkSync("/proc/self", join(links, "self"));
    for (const hostPath of ["/proc/1", "/sys/kernel", "/dev", join(links, "self")])
      refused(
        { mounts: { "/p": { type: "host_fs", hostPath, readonly: true } } },
        /mounts\["\/p"\]: host path .* is on a proc\/sys pseudo file system: a guest must not reach it$/,
      );
    refused(
      { disks: [{ hostPath: "/proc/1/environ", guestPath: "/d", readonly: true }] },
      /disks\[0\]: host path \/proc\/1\/environ is on a proc\/sys pseudo file system: a guest/,
    );
  } finally {
    rmSync(links, { recursive: true, force: true });
  }
});

describe("mounts below a host path (root: real bind mounts)", { skip: rootOnly() }, () => {
  const outside = join(scratch, "outside");
  const mounted: string[] = [];
  const bind = (from: string, to: string, fsType?: string) => {
    mkdirSync(to, { recursive: true });
    execFileSync("mount", fsType ? ["-t", fsType, fsType, to] : ["--bind", from, to]);
    mounted.push(to);
  };
  after(() => {
    for (const m of mounted.reverse()) execFileSync("umount", ["-l", m]);
  });

  test("a directory holding a bind mount of $HOME (which holds the data dir) is refused", () => {
    bind(home, join(outside, "a", "home"));
    refused(
      { mounts: { "/h": { type: "host_fs", hostPath: join(outside, "a") } } },
      /host path .* has .*\/a\/home mounted in it, which holds wheellock's data dir/,
    );
  });

  test("a bind mount of a directory inside the data dir is refused, named or below", () => {
    bind(join(data, "checkpoints"), join(outside, "b", "cp"));
    refused(
      { mounts: { "/h": { type: "host_fs", hostPath: join(outside, "b", "cp") } } },
      /is inside wheellock's data dir/,
    );
    refused(
      { mounts: { "/h": { type: "host_fs", hostPath: join(outside, "b") } } },
      /has .*\/b\/cp mounted in it, which is inside wheellock's data dir/,
    );
  });

  test("a proc file system mounted below, or /proc bound elsewhere, is refused", () => {
    bind("", join(outside, "c", "p"), "proc");
    bind("/proc/1", join(outside, "d"));
    refused(
      { mounts: { "/h": { type: "host_fs", hostPath: join(outside, "c") } } },
      /host path .* holds a proc\/sys pseudo file system at .*\/c\/p: a guest must not reach it$/,
    );
    refused(
      { mounts: { "/h": { type: "host_fs", hostPath: join(outside, "d") } } },
      /is on a proc\/sys pseudo file system/,
    );
  });

  test("a directory with harmless mounts below stays mountable", () => {
    bind(work, join(outside, "e", "w"));
    const p = plan({ mounts: { "/h": { type: "host_fs", hostPath: join(outside, "e") } } });
    assert.equal(Object.keys(p.mounts).length, 1);
  });
});

function rootOnly(): string | false {
  return process.getuid?.() === 0 ? false : "needs root to make bind mounts (CI runs as root)";
}
