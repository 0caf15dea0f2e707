// Images and memory snapshots through a real registry (Debian's docker-registry on loopback),
// between "nodes" that share nothing but the guest assets a runtime image would ship: each has
// its own cache dir (image store, snapshots) and data dir, and runs wheellock as its own
// process. Node A pushes; node B pulls into its empty stores and runs / restores; node C is
// offered a tampered key and a tampered blob, refuses both and cold-boots.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { prepareAssets } from "../../src/setup/index.js";
import { freshNode, type NodeDirs } from "../helpers/node-dirs.js";
import { busyboxEntries, dockerSaveTar, layerTar, sha256 } from "../helpers/oci-build.js";
import {
  blobDataPath,
  pushBlob,
  pushManifest,
  startRegistry,
  type TestRegistry,
} from "../helpers/registry.js";
import { scratchDir } from "../helpers/vm.js";

const run = promisify(execFile);
const CLI = "dist/cli/main.cjs";
let reg: TestRegistry;
let a: NodeDirs;
let b: NodeDirs;
let c: NodeDirs;
let snapshotRef = "";

async function wheellock(
  node: NodeDirs,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { env: node.env, timeout: 300_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === "number" ? e.code : 1,
      stdout: e.stdout ?? "",
      stderr: e.stderr ?? "",
    };
  }
}

/** One sandbox start on `node`, in its own process (test/helpers/snapshot-node.ts). */
async function startOn(
  node: NodeDirs,
  disks?: string,
): Promise<{ restored: boolean; stdout: string; exitCode: number; startToFirstExecMs: number }> {
  const r = await run(process.execPath, ["--import", "tsx", "test/helpers/snapshot-node.ts"], {
    env: disks === undefined ? node.env : { ...node.env, WHEELLOCK_TEST_DISKS: disks },
    timeout: 300_000,
  });
  return JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as Awaited<
    ReturnType<typeof startOn>
  >;
}

before(async () => {
  await prepareAssets(); // the shared guest assets every node gets
  reg = await startRegistry();
  a = freshNode();
  b = freshNode();
  c = freshNode();
});

after(async () => {
  await reg?.stop();
});

describe("images through a registry", () => {
  test("push (CLI), then pull into an empty store on another node and run", async () => {
    const tar = await dockerSaveTar(
      [await layerTar([...busyboxEntries(), { name: "data/msg", content: "pushed by node A\n" }])],
      { Cmd: ["cat", "/data/msg"] },
      "app:v1",
    );
    const file = join(scratchDir(), "app.tar");
    writeFileSync(file, tar);
    assert.equal((await wheellock(a, ["image", "import", "app:v1", file])).code, 0);
    const target = `${reg.host}/team/app:v1`;
    const pushed = await wheellock(a, ["push", "app:v1", target]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(
      pushed.stdout,
      /Pushed 127\.0\.0\.1:\d+\/team\/app:v1\nDigest: sha256:[a-f0-9]{64}/,
    );
    assert.match(pushed.stdout, /2 uploaded, 0 mounted, 0 already there/);
    const ran = await wheellock(b, ["run", "--image", target, "--no-snapshot"]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, "pushed by node A\n");
  });
});

describe("snapshots through a registry", () => {
  test("node A cold-boots, saves a snapshot and pushes it", async () => {
    const first = await startOn(a);
    assert.equal(first.restored, false);
    const ls = await wheellock(a, ["snapshot", "ls"]);
    const key = /^([a-f0-9]{32})\s/m.exec(ls.stdout)?.[1];
    assert.ok(key, ls.stdout);
    snapshotRef = `${reg.host}/wheellock/snapshots:default`;
    const pushed = await wheellock(a, ["snapshot", "push", key, snapshotRef]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stdout, /4 uploaded/);
  });

  test("node B pulls it and restores a sandbox from it", async () => {
    const pulled = await wheellock(b, ["snapshot", "pull", snapshotRef]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stdout, /^Pulled 127\.0\.0\.1:\d+\/wheellock\/snapshots@sha256:/);
    const ls = await wheellock(b, ["snapshot", "ls"]);
    assert.match(ls.stdout, /wheellock\/snapshots@sha256:/);
    const started = await startOn(b);
    assert.equal(started.restored, true, "restored from the pulled snapshot");
    assert.match(started.stdout, /^hello from /);
    // Pulling again moves nothing.
    const again = await wheellock(b, ["snapshot", "pull", snapshotRef]);
    assert.match(again.stdout, /^Already here:/);
  });

  test("a modified key and a modified blob are refused; the node cold-boots", async () => {
    // The same layers under a key that names another kernel.
    const manifest = JSON.parse(
      await (
        await fetch(`http://${reg.host}/v2/wheellock/snapshots/manifests/default`, {
          headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
        })
      ).text(),
    ) as { config: { digest: string; size: number }; layers: Array<{ digest: string }> };
    const key = JSON.parse(readFileSync(blobDataPath(reg, manifest.config.digest), "utf8")) as {
      kernel: string;
    };
    const forged = Buffer.from(JSON.stringify({ ...key, kernel: `sha256:${"0".repeat(64)}` }));
    await pushBlob(reg.host, "wheellock/snapshots", forged, sha256(forged));
    const badKey = {
      ...manifest,
      config: { ...manifest.config, digest: sha256(forged), size: forged.length },
    };
    await pushManifest(
      reg.host,
      "wheellock/snapshots",
      "bad-key",
      Buffer.from(JSON.stringify(badKey)),
      "application/vnd.oci.image.manifest.v1+json",
    );
    const refusedKey = await wheellock(c, [
      "snapshot",
      "pull",
      `${reg.host}/wheellock/snapshots:bad-key`,
    ]);
    assert.equal(refusedKey.code, 1);
    assert.match(
      refusedKey.stderr,
      /^wheellock: snapshot .* does not fit this node .*kernel sha256:0000/,
    );

    // The registry serves a RAM layer with one byte changed.
    const ram = blobDataPath(reg, manifest.layers[1]?.digest ?? "");
    const fd = openSync(ram, "r+");
    writeSync(fd, Buffer.from([readFileSync(ram)[100]! ^ 0xff]), 0, 1, 100);
    closeSync(fd);
    const refusedBlob = await wheellock(c, ["snapshot", "pull", snapshotRef]);
    assert.equal(refusedBlob.code, 1);
    assert.match(
      refusedBlob.stderr,
      /^wheellock: snapshot layer sha256:[a-f0-9]{64} does not match its digest/,
    );
    const ls = await wheellock(c, ["snapshot", "ls"]);
    assert.equal(ls.stdout.trim().split("\n").length, 1, `nothing installed: ${ls.stdout}`);
    const started = await startOn(c);
    assert.equal(started.restored, false, "cold boot");
    assert.match(started.stdout, /^hello from /);
  });

  test("a snapshot saved for sandboxes with disks travels with its disk slots", async () => {
    // A read-write and a read-only disk: slots ["rw", "ro"]. Their contents are never in the
    // snapshot (placeholder drives); each node's sandboxes attach their own.
    const dir = scratchDir();
    const tree = join(dir, "tree");
    mkdirSync(tree);
    writeFileSync(join(tree, "msg"), "from the read-only disk\n");
    const images = [join(dir, "rw.ext4"), join(dir, "ro.ext4")];
    execFileSync("mkfs.ext4", ["-q", "-F", images[0]!, "16M"]);
    execFileSync("mkfs.ext4", ["-q", "-F", "-d", tree, images[1]!, "16M"]);
    const disks = images.join(",");
    const d = freshNode();
    const e = freshNode();
    const first = await startOn(d, disks);
    assert.equal(first.stdout, "from the read-only disk\n");
    const ls = await wheellock(d, ["snapshot", "ls"]);
    const key = /^([a-f0-9]{32})\s/m.exec(ls.stdout)?.[1];
    assert.ok(key, ls.stdout);
    const ref = `${reg.host}/wheellock/snapshots:disks`;
    const pushed = await wheellock(d, ["snapshot", "push", key, ref]);
    assert.equal(pushed.code, 0, pushed.stderr);
    // The key names the slots (version 2: a reader of version 1 refuses it).
    const manifest = JSON.parse(
      await (
        await fetch(`http://${reg.host}/v2/wheellock/snapshots/manifests/disks`, {
          headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
        })
      ).text(),
    ) as { config: { digest: string } };
    const doc = JSON.parse(readFileSync(blobDataPath(reg, manifest.config.digest), "utf8")) as {
      wheellockSnapshot: number;
      diskSlots?: string[];
    };
    assert.deepEqual([doc.wheellockSnapshot, doc.diskSlots], [2, ["rw", "ro"]]);

    const pulled = await wheellock(e, ["snapshot", "pull", ref]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const started = await startOn(e, disks);
    assert.equal(started.restored, true, "restored from the pulled snapshot");
    assert.equal(started.stdout, "from the read-only disk\n");
    // It used the pulled snapshot: node E saved none of its own.
    const after = await wheellock(e, ["snapshot", "ls"]);
    assert.equal(after.stdout.trim().split("\n").length, 2, after.stdout);
    assert.match(after.stdout, /wheellock\/snapshots@sha256:/);
  });
});
