import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, test } from "node:test";
import { ImageStore, importImage } from "../../src/image/index.js";
import { catIn, listIn, statIn } from "../helpers/ext4-inspect.js";
import { buildImage, dockerSaveTar, layerTar, ociLayoutTar } from "../helpers/oci-build.js";

const work = mkdtempSync(join(tmpdir(), "wl-import-"));
after(() => rmSync(work, { recursive: true, force: true }));

const layers = async (): Promise<Buffer[]> => [
  await layerTar([
    { name: "etc/os", content: "test" },
    { name: "gone", content: "x" },
  ]),
  await layerTar([
    { name: ".wh.gone", content: "" },
    { name: "home/u/f", content: "u", uid: 1000, gid: 1000 },
  ]),
];

describe("image import", () => {
  test("a docker save tarball", async () => {
    const store = new ImageStore(join(work, "s1"));
    const tar = await dockerSaveTar(await layers(), { Cmd: ["/bin/sh"], Env: ["A=1"] }, "saved:1");
    const rec = await importImage("myimg:1", { store, source: Readable.from([tar]) });
    assert.equal(rec.reference, "docker.io/library/myimg:1");
    assert.equal(rec.source, "import");
    assert.deepEqual(rec.config, { env: { A: "1" }, cmd: ["/bin/sh"] });
    const ext4 = store.ext4Path(rec);
    assert.equal(catIn(ext4, "/etc/os"), "test");
    assert.equal(listIn(ext4, "/").includes("gone"), false);
    assert.equal(statIn(ext4, "/home/u/f")?.uid, 1000);
    assert.equal((await store.list()).length, 1);
  });

  test("an OCI image-layout tarball", async () => {
    const store = new ImageStore(join(work, "s2"));
    const img = buildImage(await layers(), { Entrypoint: ["/x"] });
    const rec = await importImage("oci/img:2", {
      store,
      source: Readable.from([await ociLayoutTar(img)]),
    });
    assert.equal(rec.digest, img.manifestDigest);
    assert.deepEqual(rec.config.entrypoint, ["/x"]);
    assert.equal(catIn(store.ext4Path(rec), "/home/u/f"), "u");
  });

  test("rm and prune leave an empty store", async () => {
    const store = new ImageStore(join(work, "s1"));
    assert.equal(await store.remove("docker.io/library/myimg:1"), true);
    assert.equal(await store.remove("docker.io/library/myimg:1"), false);
    // rm takes the image's ext4 and blobs; the archive's other members went at import.
    assert.deepEqual(readdirSync(join(store.root, "rootfs")), []);
    assert.deepEqual(readdirSync(join(store.root, "blobs", "sha256")), []);
    assert.deepEqual(await store.prune({ graceMs: 0 }), { files: 0, bytes: 0 });
    assert.deepEqual(await store.list(), []);
  });

  test("CLI: image import from stdin, image ls, image rm", async () => {
    const env = { ...process.env, WHEELLOCK_CACHE_DIR: join(work, "cli-cache") };
    const path = join(work, "save.tar");
    writeFileSync(path, await dockerSaveTar(await layers(), {}, "x:1"));
    /** stdin gets the file at `stdinPath` when given. */
    const cli = (args: string[], stdinPath?: string) =>
      new Promise<{ stdout: string; code: number; stderr: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          ["--import", "tsx", "src/cli/main.ts", ...args],
          { env, encoding: "utf8" },
          (err, stdout, stderr) =>
            resolve({ stdout, stderr, code: err ? Number(err.code ?? 1) : 0 }),
        );
        if (stdinPath !== undefined) child.stdin?.end(readFileSync(stdinPath));
        else child.stdin?.end();
      });
    const imp = await cli(["image", "import", "local/app:7"], path);
    assert.equal(imp.code, 0, imp.stderr);
    assert.match(imp.stdout, /Imported local\/app:7\nDigest: sha256:[0-9a-f]{64}\nLayers: 2/);
    const ls = await cli(["image", "ls"]);
    assert.match(ls.stdout, /^REPOSITORY +TAG +DIGEST +SIZE +CREATED\nlocal\/app +7 +sha256:/);
    assert.equal((await cli(["image", "rm", "local/app:7"])).stdout, "Removed local/app:7\n");
    const missing = await cli(["image", "rm", "local/app:7"]);
    assert.deepEqual(
      [missing.code, missing.stderr],
      [1, "wheellock: image not found: local/app:7\n"],
    );
    assert.match((await cli(["image", "prune"])).stdout, /^Removed \d+ unreferenced files/);
  });
});
