// Restores with mounts (issue 16): mounts are made after the restore, so a restored sandbox
// sees the host files as they are now, and a snapshot saved by a sandbox with mounts, secrets
// and its own hostname carries none of them into the next sandbox.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { Sandbox } from "../../src/index.js";
import { listSnapshots } from "../../src/sandbox/index.js";
import { childQemuPids, isolateDataDir, runDirEntries, scratchDir } from "../helpers/vm.js";

const dataDir = isolateDataDir();
// A memory size no other test uses, so this file owns its snapshot key.
const memoryMb = 336;
// A small upper disk: the test reads the snapshot's copy of it whole (it is sparse).
const diskSizeMb = 128;
const TEST_TIMEOUT_MS = 600_000;

/** Which of `needles` a file holds anywhere (read in chunks that overlap by a needle). */
function needlesIn(path: string, needles: readonly string[]): string[] {
  const wanted = needles.map((n) => Buffer.from(n));
  const overlap = Math.max(...wanted.map((w) => w.length));
  const chunk = Buffer.alloc(8 << 20);
  const found = new Set<string>();
  const fd = openSync(path, "r");
  try {
    for (let offset = 0; ;) {
      const got = readSync(fd, chunk, 0, chunk.length, offset);
      if (got === 0) break;
      const view = chunk.subarray(0, got);
      wanted.forEach((w, i) => {
        if (view.includes(w)) found.add(needles[i]!);
      });
      if (got < chunk.length) break;
      offset += got - overlap;
    }
  } finally {
    closeSync(fd);
  }
  return [...found];
}

function ourSnapshots() {
  return listSnapshots().filter((s) => s.inputs?.memoryMb === memoryMb);
}

test(
  "a snapshot saved by a sandbox with mounts, secrets and a hostname holds none of them; " +
    "restores mount the host files as they are now",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    for (const s of ourSnapshots()) rmSync(s.dir, { recursive: true, force: true });
    const marker = (what: string) => `${what}-${randomBytes(8).toString("hex")}`;
    const hostFileMarker = marker("hostfile");
    const secretMarker = marker("secret");
    const hostnameMarker = marker("host");
    const guestFileMarker = marker("guestfile");
    const workspace = scratchDir();
    writeFileSync(join(workspace, "f"), hostFileMarker);

    // A: boots cold (no snapshot of this key) and saves the snapshot, with everything a
    // sandbox of its own has: a host mount it reads, a secret, a hostname, guest files.
    const a = await Sandbox.create({
      memoryMb,
      diskSizeMb,
      snapshot: true,
      hostname: hostnameMarker,
      mounts: { "/workspace": { type: "host_fs", hostPath: workspace } },
      secrets: { TOKEN: { value: secretMarker, hosts: ["api.example.com"] } },
    });
    try {
      assert.equal(a.restoredFromSnapshot, false, "no snapshot existed: A booted");
      const seen = await a.exec("cat /workspace/f; echo; hostname; echo $TOKEN");
      const [file, host, token] = seen.stdout.split("\n");
      assert.equal(file, hostFileMarker, seen.stderr);
      assert.equal(host, hostnameMarker);
      assert.notEqual(token, secretMarker, "the guest sees a placeholder");
      await a.writeFile("/root/a-file", guestFileMarker);
    } finally {
      await a.close();
    }
    const [saved] = ourSnapshots();
    assert.ok(saved, "A's cold boot saved a snapshot");
    // The scan finds what a saved guest does hold: the warm-up's placeholder hostname.
    assert.deepEqual(needlesIn(saved.memoryPath, ["wheellock-snapshot"]), ["wheellock-snapshot"]);
    for (const path of [saved.statePath, saved.memoryPath, saved.upperDiskPath]) {
      assert.ok(existsSync(path), path);
      const markers = [hostFileMarker, secretMarker, hostnameMarker, guestFileMarker];
      assert.deepEqual(needlesIn(path, markers), [], path);
    }

    // B: restored, with the same workspace changed since, plus a memory and an overlay mount.
    const current = marker("current");
    writeFileSync(join(workspace, "f"), current);
    const b = await Sandbox.create({
      memoryMb,
      diskSizeMb,
      snapshot: true,
      mounts: {
        "/workspace": { type: "host_fs", hostPath: workspace },
        "/scratch": { type: "memory" },
        "/ov": { type: "overlay", hostPath: workspace },
      },
    });
    try {
      assert.equal(b.restoredFromSnapshot, true, "mounts no longer force a cold boot");
      const r = await b.exec(
        "cat /workspace/f; echo; cat /ov/f; echo; hostname; " +
          "test -e /root/a-file && echo leaked || echo clean; " +
          "echo from-b > /workspace/from-b; echo ov > /ov/ov-only; echo s > /scratch/s; cat /scratch/s",
      );
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, `${current}\n${current}\n${b.id}\nclean\ns\n`);
      assert.equal(readFileSync(join(workspace, "from-b"), "utf8"), "from-b\n");
      assert.equal(existsSync(join(workspace, "ov-only")), false, "overlay writes stay in B");
      // The host changes a file while B runs: B reads the new content (a live mount).
      writeFileSync(join(workspace, "f"), "later");
      assert.equal((await b.readFile("/workspace/f")).toString(), "later");
      assert.equal((await b.exec("cat /workspace/f")).stdout, "later");
    } finally {
      await b.close();
    }

    // C, D: without mounts. Sandboxes with mounts have snapshots of their own (the FUSE
    // filesystem is mounted at boot, its INIT left for MOUNT: CmdlineKey.Mounts), so C boots
    // and saves the plain one, and D, restored from it, has no FUSE filesystem at all.
    const c = await Sandbox.create({ memoryMb, diskSizeMb, snapshot: true });
    await c.close();
    const withMounts = (args: readonly string[] | undefined) =>
      (args ?? []).includes("wheellock.mounts=1");
    assert.deepEqual(
      ourSnapshots()
        .map((s) => withMounts(s.inputs?.kernelArgs))
        .sort(),
      [false, true],
    );
    const d = await Sandbox.create({ memoryMb, diskSizeMb, snapshot: true });
    try {
      assert.equal(d.restoredFromSnapshot, true);
      const r = await d.exec(
        "grep -c fuse /proc/mounts; test -e /workspace && echo present || echo absent",
      );
      assert.equal(r.stdout, "0\nabsent\n", r.stderr);
    } finally {
      await d.close();
    }
    assert.deepEqual(childQemuPids(), []);
    assert.deepEqual(runDirEntries(dataDir), []);
  },
);
