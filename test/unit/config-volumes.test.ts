import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  parseVolumeMount,
  validateGuestMount,
  validateGuestPathWithinWorkspace,
} from "../../src/config/volumes.js";
import { parseDiskSpec } from "../../src/config/disks.js";

const host = mkdtempSync(join(tmpdir(), "wheellock-vol-"));
process.on("exit", () => rmSync(host, { recursive: true, force: true }));

test("-v: options map to mount types; no option means overlay", () => {
  assert.deepEqual(parseVolumeMount(`${host}:/workspace/src`), {
    guestPath: "/workspace/src",
    mount: { type: "overlay", hostPath: host },
  });
  assert.deepEqual(parseVolumeMount(`${host}:/workspace:ro`).mount, {
    type: "host_fs",
    hostPath: host,
    readonly: true,
  });
  assert.equal(parseVolumeMount(`${host}:/workspace:READONLY`).mount.readonly, true);
  assert.deepEqual(parseVolumeMount(`${host}:/workspace: host_fs `).mount, {
    type: "host_fs",
    hostPath: host,
  });
  assert.equal(parseVolumeMount(`${host}:/workspace:overlay`).mount.type, "overlay");
});

test("-v: relative guest paths are inside the workspace; relative host paths from cwd", () => {
  assert.equal(parseVolumeMount(`${host}:code`).guestPath, "/workspace/code");
  assert.equal(parseVolumeMount(`${host}:code`, "/work/").guestPath, "/work/code");
  const rel = parseVolumeMount(`.:code`, "/workspace", host);
  assert.equal(rel.mount.hostPath, host);
});

test("-v: a host path containing ':' mounts when it exists; the plain split keeps its meaning (review rev19 L8)", () => {
  const colon = join(host, "co:lon");
  mkdirSync(colon, { recursive: true });
  assert.deepEqual(parseVolumeMount(`${colon}:/workspace/c`), {
    guestPath: "/workspace/c",
    mount: { type: "overlay", hostPath: colon },
  });
  assert.deepEqual(parseVolumeMount(`${colon}:/workspace/c:ro`).mount, {
    type: "host_fs",
    hostPath: colon,
    readonly: true,
  });
  assert.equal(parseVolumeMount("co:lon:c", "/workspace", host).mount.hostPath, colon);
  // "co" exists too: the shortest split with valid options wins, as before this change.
  mkdirSync(join(host, "co"), { recursive: true });
  assert.equal(parseVolumeMount("co:lon:ro", "/workspace", host).guestPath, "/workspace/lon");
  assert.equal(parseVolumeMount("co:lon:c", "/workspace", host).mount.hostPath, colon);
  assert.throws(
    () => parseVolumeMount(`${host}/no:such:/workspace/c`),
    /host path does not exist: .*\/no \(nor does any longer host path up to a ':'\)$/,
  );
  assert.throws(
    () => parseVolumeMount(`${host}/no:such:thing:/workspace/c`),
    /expected format host:guest or host:guest:ro \(a host path may contain ':' only if it exists/,
  );
});

test("-v and --disk with --remote: a relative host path is refused, an absolute one is the node's (review rev19 L9)", () => {
  assert.throws(
    () => parseVolumeMount("./rel:/workspace/r", "/workspace", host, true),
    /^ErrInvalidConfig: invalid configuration: invalid volume mount "\.\/rel:\/workspace\/r": with --remote the host path names a path on the node and must be absolute$/,
  );
  assert.throws(
    () => parseDiskSpec("rel.img:/d", host, true),
    /invalid disk mount "rel.img:\/d": with --remote the host path names a path on the node and must be absolute/,
  );
  // Not checked here: the node checks its own paths.
  assert.equal(
    parseVolumeMount("/on/the/node:/workspace/r", "/workspace", host, true).mount.hostPath,
    "/on/the/node",
  );
  assert.equal(parseDiskSpec("@vol:/d", host, true).volume, "vol");
});

test("-v: errors say what is wrong, with the reference's texts", () => {
  const cases: [string, RegExp][] = [
    ["justone", /expected format host:guest or host:guest:ro/],
    ["a:b:c:d", /expected format/],
    [`${host}/missing:/workspace`, /host path does not exist: .*missing/],
    [`${host}:/workspace:rw`, /unknown option "rw" \(use 'ro', 'overlay', or 'host_fs'\)/],
    [`${host}:/etc`, /guest path must be within workspace: "\/etc" not in "\/workspace"/],
    [`${host}:/workspace-cache`, /must be within workspace/],
    [`${host}:../escape`, /must be within workspace/],
    [`${host}:/workspace/a b`, /invalid guest mount path/],
    [`${host}:/workspace/a,b`, /invalid guest mount path/],
  ];
  for (const [spec, message] of cases) {
    assert.throws(() => parseVolumeMount(spec), message, spec);
  }
  assert.throws(
    () => parseVolumeMount(`${host}:/x`),
    /^.*invalid configuration: invalid volume mount/,
  );
});

test("guest mount and workspace rules", () => {
  assert.equal(validateGuestMount("/mnt/data_1.v-2"), "/mnt/data_1.v-2");
  for (const bad of ["relative", "/", "/a b", "/a:b", "/a/../etc", "/ä"]) {
    assert.throws(() => validateGuestMount(bad), /invalid guest mount path/, bad);
  }
  assert.equal(validateGuestPathWithinWorkspace("/anything/x/", "/"), "/anything/x");
  assert.equal(validateGuestPathWithinWorkspace("/workspace/./a", "/workspace"), "/workspace/a");
  assert.throws(() => validateGuestPathWithinWorkspace("x", "/workspace"), /must be absolute/);
});

test("CLI -v list: mounts by guest path, --workspace for relative paths, duplicates refused", async () => {
  const { volumeSandboxOptions } = await import("../../src/cli/volume-flags.js");
  assert.deepEqual(volumeSandboxOptions({}), {});
  assert.deepEqual(volumeSandboxOptions({ volume: [`${host}:src:ro`], workspace: "/work" }), {
    mounts: { "/work/src": { type: "host_fs", hostPath: host, readonly: true } },
  });
  assert.throws(
    () => volumeSandboxOptions({ volume: [`${host}:a`, `${host}:/workspace/a`] }),
    /two volumes are mounted at \/workspace\/a/,
  );
  assert.throws(() => volumeSandboxOptions({ workspace: "rel" }), /invalid guest mount path/);
  // Mounts at arbitrary absolute guest paths: --workspace / accepts any, but never / itself.
  assert.deepEqual(
    volumeSandboxOptions({ volume: [`${host}:/opt/a:ro`, `${host}:/srv/b`], workspace: "/" }),
    {
      mounts: {
        "/opt/a": { type: "host_fs", hostPath: host, readonly: true },
        "/srv/b": { type: "overlay", hostPath: host },
      },
    },
  );
  assert.throws(
    () => volumeSandboxOptions({ volume: [`${host}:/`], workspace: "/" }),
    /invalid guest mount path "\/"/,
  );
});

test("-v quota options: size=MB and inodes=N after the mode, comma-separated", () => {
  assert.deepEqual(parseVolumeMount(`${host}:/workspace:overlay,size=512,inodes=1000`).mount, {
    type: "overlay",
    hostPath: host,
    quota: { sizeBytes: 512 * 1024 * 1024, inodes: 1000 },
  });
  assert.deepEqual(parseVolumeMount(`${host}:/workspace:size=64`).mount, {
    type: "overlay",
    hostPath: host,
    quota: { sizeBytes: 64 * 1024 * 1024 },
  });
  assert.deepEqual(parseVolumeMount(`${host}:/workspace:host_fs, INODES=10`).mount, {
    type: "host_fs",
    hostPath: host,
    quota: { inodes: 10 },
  });
  const cases: [string, RegExp][] = [
    [`${host}:/workspace:ro,size=1`, /size= and inodes= apply to writable mounts only/],
    [`${host}:/workspace:size=0`, /size must be a whole number of MB, got "0"/],
    [`${host}:/workspace:size=1g`, /size must be a whole number of MB/],
    [`${host}:/workspace:inodes=-1`, /inodes must be a whole number/],
    [`${host}:/workspace:size=1,size=2`, /unknown option "size=2" \(quota options are/],
    [
      `${host}:/workspace:ro,overlay`,
      /unknown option "overlay" \(use 'ro', 'overlay', or 'host_fs'\)/,
    ],
    [`${host}:/workspace:color=red`, /unknown option "color=red"/],
  ];
  for (const [spec, message] of cases) assert.throws(() => parseVolumeMount(spec), message, spec);
});
