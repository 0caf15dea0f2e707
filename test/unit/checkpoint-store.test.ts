// The checkpoint store without a VM: chunks shared by content, signed manifests, and the
// refusals (foreign manifest, changed chunk, unknown name, path-like names).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHmac } from "node:crypto";
import { closeSync, openSync, statSync, symlinkSync, utimesSync, writeSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { fileIdentity } from "../../src/util/index.js";
import { CHUNK_BYTES } from "../../src/sandbox/checkpoint-chunks.js";
import {
  parseCheckpointDisks,
  openAttachedDisk,
  pinDiskIdentities,
  planWithCheckpointDisks,
} from "../../src/sandbox/checkpoint-disks.js";
import type { ResolvedDisk } from "../../src/config/index.js";
import type { SandboxPlan } from "../../src/config/index.js";
import { checkpointVm } from "../../src/sandbox/checkpoint.js";
import {
  checkpointsRoot,
  listCheckpoints,
  loadCheckpoint,
  materializeCheckpoint,
  removeCheckpoint,
  saveCheckpoint,
  type SaveCheckpointRequest,
} from "../../src/sandbox/checkpoint-store.js";
import { BlobFile, MemoryProvider } from "../../src/vfs/index.js";
import { unstoppableSource } from "../helpers/checkpoint-source.js";

const scratch = mkdtempSync(join(tmpdir(), "wheellock-ckpt-"));
process.env.WHEELLOCK_DATA_DIR = join(scratch, "data");
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));

/** A sparse file of `sizeBytes` with `data` written at each offset. */
async function sparseFile(name: string, sizeBytes: number, data: Record<number, Buffer>) {
  const path = join(scratch, name);
  const handle = await open(path, "w");
  await handle.truncate(sizeBytes);
  for (const [offset, bytes] of Object.entries(data))
    await handle.write(bytes, 0, bytes.length, Number(offset));
  await handle.close();
  return path;
}

const shared = randomBytes(CHUNK_BYTES);
function request(name: string, statePath: string, upperDiskPath: string): SaveCheckpointRequest {
  return {
    name,
    captured: { statePath, upperDiskPath },
    sourceSandboxId: "vm-00000001",
    vmKey: "k".repeat(32),
    resources: {
      image: "default",
      cpus: 1,
      memoryMb: 512,
      diskSizeMb: 64,
      privileged: false,
      noNetwork: false,
    },
    namedRam: true,
    pausedMs: 10,
    baseSnapshotKey: undefined,
  };
}

test("checkpoints share chunks by content and restore byte for byte", async () => {
  const state1 = await sparseFile("s1", 3 * CHUNK_BYTES + 5, {
    0: shared,
    [CHUNK_BYTES]: randomBytes(100),
  });
  const upper1 = await sparseFile("u1", 64 * CHUNK_BYTES, { [10 * CHUNK_BYTES]: shared });
  const first = await saveCheckpoint(request("one", state1, upper1));
  // The state's first chunk and the disk's chunk are one object: stored once.
  assert.equal(first.sizes.newBytes, 2 * CHUNK_BYTES);
  assert.equal(first.sizes.sharedBytes, CHUNK_BYTES);
  const state2 = await sparseFile("s2", 2 * CHUNK_BYTES, { 0: shared });
  const second = await saveCheckpoint(request("two", state2, upper1));
  assert.equal(second.sizes.newBytes, 0, "everything was in the store already");

  const out = mkdtempSync(join(scratch, "out-"));
  const files = await materializeCheckpoint(loadCheckpoint("one"), out);
  assert.deepEqual(readFileSync(files.statePath), readFileSync(state1));
  assert.deepEqual(readFileSync(files.upperDiskPath), readFileSync(upper1));
  assert.deepEqual(
    listCheckpoints().map((c) => c.name),
    ["two", "one"],
  );
  await assert.rejects(saveCheckpoint(request("one", state1, upper1)), /already exists/);

  // Removing one keeps what the other still uses, and drops the rest.
  await removeCheckpoint("one");
  const objects = readdirSync(join(checkpointsRoot(), "objects"), { recursive: true });
  assert.equal(objects.filter((n) => String(n).length > 3).length, 1);
  const again = mkdtempSync(join(scratch, "out-"));
  const kept = await materializeCheckpoint(loadCheckpoint("two"), again);
  assert.deepEqual(readFileSync(kept.statePath), readFileSync(state2));
  await assert.rejects(removeCheckpoint("one"), { code: "ErrNotFound" });
});

test("a planted or edited manifest is refused, and so is a changed chunk", async () => {
  const state = await sparseFile("s3", CHUNK_BYTES, { 0: randomBytes(64) });
  await saveCheckpoint(request("victim", state, state));
  const manifests = join(checkpointsRoot(), "manifests");
  const stored = JSON.parse(readFileSync(join(manifests, "victim.json"), "utf8")) as {
    manifest: { name: string; vmKey: string };
    mac: string;
  };
  // Another user's checkpoint dropped in (its own key signed it): refused.
  const foreign = structuredClone(stored);
  foreign.manifest.name = "foreign";
  writeFileSync(join(manifests, "foreign.json"), JSON.stringify(foreign));
  assert.throws(() => loadCheckpoint("foreign"), { code: "ErrSnapshotMismatch" });
  // An edit that would make a stale checkpoint look current: refused.
  const edited = structuredClone(stored);
  edited.manifest.vmKey = "x".repeat(32);
  writeFileSync(join(manifests, "victim.json"), JSON.stringify(edited));
  assert.throws(() => loadCheckpoint("victim"), /not written by wheellock/);
  writeFileSync(join(manifests, "victim.json"), JSON.stringify(stored));
  assert.equal(loadCheckpoint("victim").name, "victim");
  assert.ok(!listCheckpoints().some((c) => c.name === "foreign"), "ls hides what does not verify");

  // A chunk swapped on disk never reaches a restore.
  const digest = loadCheckpoint("victim").state.chunks[0] ?? "";
  writeFileSync(join(checkpointsRoot(), "objects", digest.slice(0, 2), digest), randomBytes(64));
  await assert.rejects(
    materializeCheckpoint(loadCheckpoint("victim"), mkdtempSync(join(scratch, "out-"))),
    { code: "ErrSnapshotMismatch", message: /changed on disk/ },
  );
});

test("names that are not plain names are refused before any path is built", () => {
  for (const name of ["../x", "a/b", ".hidden", "", "x".repeat(65)])
    assert.throws(() => loadCheckpoint(name), { code: "ErrInvalidConfig" });
  assert.throws(() => loadCheckpoint("missing"), { code: "ErrNotFound" });
});

/** Every object file in the store (chunks, and temp files a save left). */
function storedObjects(): string[] {
  const dir = join(checkpointsRoot(), "objects");
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((n) => n.includes("/"))
    .map((n) => n.split("/")[1] ?? "")
    .sort();
}

/** The digests the verified manifests name. */
function referenced(): string[] {
  const keep = new Set<string>();
  for (const c of listCheckpoints())
    for (const d of [...c.state.chunks, ...c.upper.chunks]) if (d !== "0") keep.add(d);
  return [...keep].sort();
}

test("a save that fails half way leaves the store as it was; a later save sweeps a killed one's leftovers", async () => {
  const before = storedObjects();
  assert.deepEqual(before, referenced());
  // The state goes in (new chunks written), then the disk cannot be read: the save fails
  // after it has written to the store, as a full disk would.
  const state = await sparseFile("s-fail", 3 * CHUNK_BYTES, {
    0: randomBytes(64),
    [2 * CHUNK_BYTES]: randomBytes(64),
  });
  await assert.rejects(
    saveCheckpoint(request("half", state, join(scratch, "no-such-disk"))),
    (err: Error & { code?: string }) => {
      assert.match(err.message, /checkpoint half was not saved/);
      assert.equal(err.code, "ENOENT");
      return true;
    },
  );
  assert.deepEqual(storedObjects(), before, "nothing of the failed save is kept");
  assert.ok(!listCheckpoints().some((c) => c.name === "half"));

  // What a save killed half way leaves (a chunk no manifest names, a half-written temp file,
  // a manifest temp file) goes with the next save.
  const orphan = "ab".padEnd(64, "c");
  mkdirSync(join(checkpointsRoot(), "objects", "ab"), { recursive: true });
  writeFileSync(join(checkpointsRoot(), "objects", "ab", orphan), "x", { flag: "w" });
  writeFileSync(join(checkpointsRoot(), "objects", "ab", `${orphan}.tmp-99999`), "x");
  const manifestTmp = join(checkpointsRoot(), "manifests", "dead.json.tmp-99999");
  writeFileSync(manifestTmp, "{");
  const ok = await sparseFile("s-ok", CHUNK_BYTES, { 0: randomBytes(64) });
  await saveCheckpoint(request("after-crash", ok, ok));
  assert.deepEqual(storedObjects(), referenced(), "only what manifests name is left");
  assert.ok(!readdirSync(join(checkpointsRoot(), "manifests")).includes("dead.json.tmp-99999"));
});

test("a checkpoint under a name that is taken is refused before the sandbox is stopped", async () => {
  const state = await sparseFile("s-taken", CHUNK_BYTES, { 0: randomBytes(64) });
  await saveCheckpoint(request("taken", state, state));
  const runDir = mkdtempSync(join(scratch, "run-"));
  const source = unstoppableSource(runDir, {});
  await assert.rejects(checkpointVm(source, "taken"), {
    code: "ErrInvalidConfig",
    message: /taken already exists/,
  });
  assert.equal(source.saves, 0, "the VM was never stopped");
  assert.deepEqual(readdirSync(runDir), [], "no capture dir left");
});

test("a checkpoint stores its memory and overlay mounts' contents and gives them back; rm removes them", async () => {
  const memory = new MemoryProvider();
  const big = randomBytes(2 * CHUNK_BYTES + 7);
  const h = await memory.create(
    "/big",
    0o600,
    { read: true, write: true, append: false, truncate: false },
    { uid: 0, gid: 0 },
  );
  await h.write(0, big);
  await h.close();
  await memory.mkdir("/d", 0o700, { uid: 1000, gid: 1000 });
  const dataPath = join(scratch, "mounts.data");
  const blob = await BlobFile.create(dataPath);
  const images = { "/mem": await memory.exportContents(blob) };
  await blob.close();
  const state = await sparseFile("ms", CHUNK_BYTES, { 0: Buffer.from("state") });
  const upper = await sparseFile("mu", CHUNK_BYTES, {});
  const before = new Set(allObjects());
  const req = {
    ...request("with-mounts", state, upper),
    mounts: { "/mem": { type: "memory" as const } },
    fuse: { initialized: true, inodes: { nextId: "2", nodes: [] } },
    mountContents: { images, dataPath },
  };
  const manifest = await saveCheckpoint(req);
  assert.ok(manifest.sizes.mountDataBytes! >= big.length, JSON.stringify(manifest.sizes));
  // A second checkpoint of the same contents stores no new mount bytes (large files aligned).
  const again = await saveCheckpoint({ ...req, name: "with-mounts-again" });
  assert.ok(again.sizes.newBytes < CHUNK_BYTES, JSON.stringify(again.sizes));

  const dir = mkdtempSync(join(scratch, "restore-"));
  const files = await materializeCheckpoint(loadCheckpoint("with-mounts"), dir);
  assert.ok(files.mountContents, "the restore gets the mounts' contents");
  const copy = new MemoryProvider();
  const source = await BlobFile.openRead(files.mountContents.dataPath);
  await copy.importContents(files.mountContents.images["/mem"]!, source);
  await source.close();
  const r = await copy.open("/big", { read: true, write: false, append: false, truncate: false });
  assert.ok(Buffer.compare(await r.read(0, big.length + 1), big) === 0);
  await r.close();
  assert.deepEqual(
    { ...(await copy.stat("/d")), fileId: 0, ino: 0, ctimeMs: 0 },
    { ...(await memory.stat("/d")), fileId: 0, ino: 0, ctimeMs: 0 },
  );

  await removeCheckpoint("with-mounts");
  await removeCheckpoint("with-mounts-again");
  assert.deepEqual(
    allObjects().filter((o) => !before.has(o)),
    [],
    "rm removed the mount chunks",
  );
});

function allObjects(): string[] {
  const dir = join(checkpointsRoot(), "objects");
  return readdirSync(dir).flatMap((p) => readdirSync(join(dir, p)));
}

test("a checkpoint stores its disks' bytes and writes each back as a private file; rm removes them", async () => {
  const before = new Set(allObjects());
  const rw = await sparseFile("disk-rw", 16 * CHUNK_BYTES, {
    0: Buffer.from("superblock"),
    [9 * CHUNK_BYTES + 5]: randomBytes(3000),
  });
  const ro = await sparseFile("disk-ro", 8 * CHUNK_BYTES + 17, { [CHUNK_BYTES]: shared });
  const state = await sparseFile("ds", CHUNK_BYTES, { 0: Buffer.from("state-with-disks") });
  const manifest = await saveCheckpoint({
    ...request("with-disks", state, state),
    disks: [
      { path: rw, guestPath: "/data", readonly: false, volume: "work" },
      {
        path: ro,
        guestPath: "/ro",
        readonly: true,
        volume: undefined,
        unchanged: () => undefined,
      },
    ],
  });
  assert.equal(manifest.sizes.diskDataBytes, 3 * CHUNK_BYTES, JSON.stringify(manifest.sizes));
  const loaded = loadCheckpoint("with-disks");
  assert.deepEqual(
    loaded.disks?.map((d) => [d.guestPath, d.readonly, d.volume, d.file.sizeBytes]),
    [
      ["/data", false, "work", 16 * CHUNK_BYTES],
      ["/ro", true, undefined, 8 * CHUNK_BYTES + 17],
    ],
  );
  // Written out into the copy's run dir as its own drives, byte for byte, holes kept.
  const dir = mkdtempSync(join(scratch, "restore-disks-"));
  await materializeCheckpoint(loaded, dir);
  assert.deepEqual(readFileSync(join(dir, "disk0.img")), readFileSync(rw));
  assert.deepEqual(readFileSync(join(dir, "disk1.img")), readFileSync(ro));
  assert.ok(statSync(join(dir, "disk0.img")).blocks * 512 <= 3 * CHUNK_BYTES, "sparse");
  // The source disk changes after the checkpoint: the checkpoint does not.
  writeFileSync(rw, "later");
  const again = mkdtempSync(join(scratch, "restore-disks-"));
  await materializeCheckpoint(loadCheckpoint("with-disks"), again);
  assert.deepEqual(readFileSync(join(again, "disk0.img")), readFileSync(join(dir, "disk0.img")));
  // The copy's plan: the checkpoint's disks, each its private file, no volume.
  const plan = { id: "sb-copy", fromCheckpoint: "with-disks", disks: [] } as unknown as SandboxPlan;
  const copy = planWithCheckpointDisks(plan, dir, loaded.disks);
  assert.deepEqual(
    copy.disks.map((d) => [d.hostPath, d.guestPath, d.readonly, d.volume]),
    [
      [join(dir, "disk0.img"), "/data", false, undefined],
      [join(dir, "disk1.img"), "/ro", true, undefined],
    ],
  );
  assert.throws(() => planWithCheckpointDisks(copy, dir, loaded.disks), /cannot be given disks/);

  await removeCheckpoint("with-disks");
  assert.deepEqual(
    allObjects().filter((o) => !before.has(o)),
    [],
    "rm removed the disk chunks",
  );
});

test("a read-only disk changed on the host while it is stored is refused; the store stays as it was", async () => {
  const ro = await sparseFile("disk-ro-changed", 2 * CHUNK_BYTES, { 0: randomBytes(500) });
  const state = await sparseFile("dsc", CHUNK_BYTES, { 0: randomBytes(64) });
  const reader = openAttachedDisk(roDisk(ro), 1, "sb-x");
  after(() => reader.close());
  const guard = () => reader.unchanged();
  utimesSync(ro, new Date(), new Date(Date.now() + 5000));
  const before = storedObjects();
  await assert.rejects(
    saveCheckpoint({
      ...request("ro-changed", state, state),
      disks: [{ path: ro, guestPath: "/ro", readonly: true, volume: undefined, unchanged: guard }],
    }),
    { code: "ErrInvalidConfig", message: /read-only disk .* changed on the host/ },
  );
  assert.deepEqual(storedObjects(), before);
  assert.throws(() => loadCheckpoint("ro-changed"), { code: "ErrNotFound" });
});

test("a manifest's disks are checked value by value: hostile ones are refused with one line", () => {
  const file = { sizeBytes: 2 * CHUNK_BYTES, chunks: ["0", "a".repeat(64)] };
  const good = { guestPath: "/data", readonly: false, file };
  assert.equal(parseCheckpointDisks(undefined), undefined, "older manifests have none");
  assert.deepEqual(parseCheckpointDisks([good]), [good]);
  const bad: Array<[string, unknown]> = [
    ["not a list", { length: 1 }],
    ["no disks", []],
    ["too many", Array(9).fill(good)],
    ["a huge count", Array(100_000).fill(good)],
    ["a disk that is not an object", [7]],
    ["a relative guest path", [{ ...good, guestPath: "data" }]],
    ["a guest path with a comma", [{ ...good, guestPath: "/a,b" }]],
    ["readonly of another type", [{ ...good, readonly: "no" }]],
    ["a volume of another type", [{ ...good, volume: 3 }]],
    ["a negative size", [{ ...good, file: { sizeBytes: -1, chunks: [] } }]],
    ["a fractional size", [{ ...good, file: { sizeBytes: 1.5, chunks: ["0"] } }]],
    ["a huge size", [{ ...good, file: { sizeBytes: 2 ** 60, chunks: [] } }]],
    ["chunks that do not cover the size", [{ ...good, file: { ...file, chunks: ["0"] } }]],
    ["a chunk that is not a digest", [{ ...good, file: { ...file, chunks: ["0", "../x"] } }]],
  ];
  for (const [what, value] of bad)
    assert.throws(
      () => parseCheckpointDisks(value),
      (err: Error & { code?: string }) =>
        err.code === "ErrSnapshotMismatch" &&
        /^checkpoint disks are malformed: /.test(err.message) &&
        !err.message.includes("\n"),
      what,
    );
});

test("a signed manifest with malformed disks is refused at load", async () => {
  const state = await sparseFile("dsm", CHUNK_BYTES, { 0: randomBytes(64) });
  await saveCheckpoint(request("bad-disks", state, state));
  const path = join(checkpointsRoot(), "manifests", "bad-disks.json");
  const stored = JSON.parse(readFileSync(path, "utf8")) as { manifest: Record<string, unknown> };
  stored.manifest.disks = [
    { guestPath: "/d", readonly: false, file: { sizeBytes: -5, chunks: [] } },
  ];
  // Signed with this user's key, as a wheellock bug would write it.
  const key = readFileSync(join(checkpointsRoot(), "key"));
  const mac = createHmac("sha256", key).update(JSON.stringify(stored.manifest)).digest("hex");
  writeFileSync(path, JSON.stringify({ manifest: stored.manifest, mac }));
  assert.throws(() => loadCheckpoint("bad-disks"), {
    code: "ErrSnapshotMismatch",
    message: /disks are malformed: disk 0 has a size of -5 bytes/,
  });
  await removeCheckpoint("bad-disks");
});

/** A read-only disk as a plan names it, its identity pinned as at a sandbox's start. */
function roDisk(path: string, hostIdentity?: string): ResolvedDisk {
  return { hostPath: path, guestPath: "/ro", readonly: true, volume: undefined, hostIdentity };
}

test("a read-only disk rewritten in place with its times put back is seen as changed (ctime)", async () => {
  const ro = await sparseFile("disk-ro-inplace", 64 * 1024, { 0: Buffer.alloc(4096, 1) });
  const ref = join(scratch, "disk-ro-inplace.ref");
  writeFileSync(ref, "");
  execFileSync("touch", ["-r", ro, ref]); // nanosecond times, as `touch -r` keeps them
  const reader = openAttachedDisk(roDisk(ro), 0, "sb-y");
  try {
    const fd = openSync(ro, "r+");
    writeSync(fd, Buffer.alloc(4096, 2), 0, 4096, 0);
    closeSync(fd);
    execFileSync("touch", ["-r", ref, ro]);
    assert.throws(() => reader.unchanged(), {
      code: "ErrInvalidConfig",
      message: /changed on the host/,
    });
  } finally {
    reader.close();
  }
});

test("a disk's path swapped after the sandbox attached it is refused; the open file is what is read", async () => {
  const img = await sparseFile("disk-attached", 2 * CHUNK_BYTES, { 0: Buffer.from("ATTACHED") });
  const secret = await sparseFile("host-secret", CHUNK_BYTES, { 0: Buffer.from("HOST-SECRET") });
  const pinned = roDisk(img, fileIdentity(statSync(img, { bigint: true })));
  // Opened while still the attached file: reads go to it even after the path is swapped.
  const reader = openAttachedDisk(pinned, 0, "sb-z");
  try {
    rmSync(img);
    symlinkSync(secret, img);
    assert.equal(readFileSync(reader.path).subarray(0, 8).toString(), "ATTACHED");
  } finally {
    reader.close();
  }
  // Opened after the swap: refused, whatever the path now leads to.
  assert.throws(() => openAttachedDisk(pinned, 0, "sb-z"), {
    code: "ErrInvalidConfig",
    message: /disk 0 \(.*disk-attached\) is no longer the file the sandbox attached/,
  });
});

test("attack: a read-only disk rewritten in place between the sandbox's start and a checkpoint is refused", async () => {
  const ro = await sparseFile("disk-ro-since-attach", 64 * 1024, { 0: Buffer.alloc(4096, 1) });
  const ref = join(scratch, "disk-ro-since-attach.ref");
  writeFileSync(ref, "");
  execFileSync("touch", ["-r", ro, ref]);
  const asPlanned = (disk: ResolvedDisk) => ({ disks: [disk] }) as unknown as SandboxPlan;
  // As at the sandbox's start: pinned, its state recorded (a node-pinned disk's too).
  const [attached] = pinDiskIdentities(asPlanned(roDisk(ro)), []).disks;
  const [nodePinned] = pinDiskIdentities(
    asPlanned(roDisk(ro, fileIdentity(statSync(ro, { bigint: true })))),
    [],
  ).disks;
  assert.ok(attached && nodePinned);
  openAttachedDisk(attached, 0, "sb-w").close(); // unchanged: fine
  // Rewritten in place (same file, same size), its modification time put back: the guest
  // cached the old bytes, the checkpoint would store the new ones.
  const fd = openSync(ro, "r+");
  writeSync(fd, Buffer.alloc(4096, 2), 0, 4096, 0);
  closeSync(fd);
  execFileSync("touch", ["-r", ref, ro]);
  for (const disk of [attached, nodePinned])
    assert.throws(() => openAttachedDisk(disk, 0, "sb-w"), {
      code: "ErrInvalidConfig",
      message: /sandbox sb-w: read-only disk .* changed on the host since the sandbox attached it/,
    });
  // A read-write disk has no recorded state (the guest itself writes it).
  const [rw] = pinDiskIdentities(asPlanned({ ...roDisk(ro), readonly: false }), []).disks;
  assert.equal(rw?.attachedState, undefined);
});
