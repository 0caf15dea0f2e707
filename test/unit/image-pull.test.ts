import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import { ensureImage, ImageStore, pullImage, parsePlatform } from "../../src/image/index.js";
import { catIn, listIn, statIn } from "../helpers/ext4-inspect.js";
import {
  buildImage,
  buildIndex,
  busyboxEntries,
  layerTar,
  sha256,
  type BuiltImage,
} from "../helpers/oci-build.js";
import { pushImage, pushManifest, startRegistry, type TestRegistry } from "../helpers/registry.js";

const work = mkdtempSync(join(tmpdir(), "wl-pull-"));
const dockerConfigDir = join(work, "docker");
mkdirSync(dockerConfigDir);
process.env.DOCKER_CONFIG = dockerConfigDir;
let reg: TestRegistry;
let authReg: TestRegistry;
let img: BuiltImage;
let arm: BuiltImage;

before(async () => {
  reg = await startRegistry();
  authReg = await startRegistry({ user: "alice", password: "s3cret" });
  img = buildImage(
    [
      await layerTar([
        ...busyboxEntries(),
        { name: "data/a", content: "a" },
        { name: "data/b", content: "b" },
      ]),
      await layerTar([
        { name: "data/.wh.b", content: "" },
        { name: "data/c", content: "c", uid: 1000, gid: 1000 },
      ]),
    ],
    { Env: ["FOO=bar", "NOEQUALS"], Cmd: ["sh"], WorkingDir: "/data", User: "app" },
  );
  arm = buildImage(
    [await layerTar([{ name: "arch", content: "arm64" }])],
    {},
    { architecture: "arm64" },
  );
  await pushImage(reg.host, "test/multi", "v1", img);
  await pushImage(reg.host, "test/multi", "arm-only", arm);
  const index = buildIndex([
    { image: img, architecture: "amd64" },
    { image: arm, architecture: "arm64" },
  ]);
  await pushManifest(
    reg.host,
    "test/multi",
    "multi",
    index.body,
    "application/vnd.oci.image.index.v1+json",
  );
  await pushImage(authReg.host, "private/img", "v1", img, { user: "alice", password: "s3cret" });
});
after(async () => {
  await reg?.stop();
  await authReg?.stop();
  rmSync(work, { recursive: true, force: true });
});

const newStore = (name: string): ImageStore => new ImageStore(join(work, name));

describe("pull from a registry on 127.0.0.1", () => {
  test("a multi-layer image: record, config and flattened rootfs", async () => {
    const store = newStore("s1");
    const rec = await pullImage(`${reg.host}/test/multi:v1`, { store });
    assert.equal(rec.digest, img.manifestDigest);
    assert.equal(rec.platform, "linux/amd64");
    assert.deepEqual(rec.config, {
      env: { FOO: "bar" },
      cmd: ["sh"],
      user: "app",
      workdir: "/data",
    });
    const ext4 = store.ext4Path(rec);
    assert.deepEqual(listIn(ext4, "/data").sort(), ["a", "c"]);
    assert.equal(statIn(ext4, "/data/c")?.uid, 1000);
    assert.equal(catIn(ext4, "/data/a"), "a");
    assert.equal((await store.get(rec.reference))?.digest, rec.digest);
  });

  test("a second pull downloads and unpacks nothing", async () => {
    const store = newStore("s1");
    const fetched: string[] = [];
    await pullImage(`${reg.host}/test/multi:v1`, {
      store,
      progress: {
        layer: (d, _s, cached) => (cached ? undefined : fetched.push(d)),
        bytes: () => undefined,
        layerDone: () => undefined,
        status: () => undefined,
      },
    });
    assert.deepEqual(fetched, []);
  });

  test("by digest, and an index selects the platform", async () => {
    const store = newStore("s2");
    const byDigest = await pullImage(`${reg.host}/test/multi@${img.manifestDigest}`, { store });
    assert.equal(byDigest.configDigest, img.configDigest);
    const amd = await pullImage(`${reg.host}/test/multi:multi`, { store });
    assert.equal(amd.digest, img.manifestDigest);
    const armRec = await pullImage(`${reg.host}/test/multi:multi`, {
      store,
      platform: parsePlatform("linux/arm64"),
    });
    assert.equal(armRec.digest, arm.manifestDigest);
    assert.equal(armRec.platform, "linux/arm64");
    await assert.rejects(
      pullImage(`${reg.host}/test/multi:multi`, { store, platform: parsePlatform("linux/s390x") }),
      /has no linux\/s390x image \(available: linux\/amd64, linux\/arm64\)/,
    );
  });

  test("a malicious image is refused and leaves no image, root disk or scratch", async () => {
    const evil = buildImage([
      await layerTar([{ name: "etc/", type: "directory" }]),
      await layerTar([
        { name: "escape", type: "symlink", linkname: "/" },
        { name: "escape/etc/evil", content: "x" },
      ]),
    ]);
    await pushImage(reg.host, "test/evil", "v1", evil);
    const store = newStore("evil");
    await assert.rejects(
      pullImage(`${reg.host}/test/evil:v1`, { store }),
      /unsafe layer sha256:[0-9a-f]{64}: entry "escape\/etc\/evil" writes through the symlink "escape"; refused/,
    );
    assert.equal(existsSync(join(store.root, "refs")), false);
    assert.deepEqual(readdirSync(join(store.root, "rootfs")), []);
    assert.deepEqual(
      readdirSync(join(store.root, "tmp")).filter((n) => !n.endsWith(".lock")),
      [],
    );
    assert.equal(existsSync("/etc/evil"), false);
  });

  test("a stored image is used as is; forcePull (--pull) fetches the moved tag", async () => {
    const store = newStore("moved");
    const ref = `${reg.host}/test/moving:latest`;
    await pushImage(reg.host, "test/moving", "latest", img);
    assert.equal((await ensureImage(ref, { store })).record.digest, img.manifestDigest);
    await pushImage(reg.host, "test/moving", "latest", arm);
    // Still the stored one: no registry round trip decides what runs.
    assert.equal((await ensureImage(ref, { store })).record.digest, img.manifestDigest);
    const forced = await ensureImage(ref, { store, forcePull: true, allowOtherPlatform: true });
    assert.equal(forced.record.digest, arm.manifestDigest);
    // The platform guard: an arm64 image is stored but not bootable.
    await assert.rejects(
      ensureImage(ref, { store }),
      /is linux\/arm64; sandboxes run linux\/amd64 images/,
    );
  });

  test("sandboxes started together for a new image share one pull", async () => {
    const store = newStore("together");
    let layerCalls = 0;
    const progress = {
      layer: () => void layerCalls++,
      bytes: () => undefined,
      layerDone: () => undefined,
      status: () => undefined,
    };
    const ref = `${reg.host}/test/multi:v1`;
    const [a, b] = await Promise.all([
      ensureImage(ref, { store, progress }),
      ensureImage(ref, { store, progress }),
    ]);
    assert.equal(a.record.digest, b.record.digest);
    assert.equal(layerCalls, img.layers.length);
  });

  test("unknown image and tag: image not found", async () => {
    const store = newStore("s3");
    await assert.rejects(pullImage(`${reg.host}/test/nope:v1`, { store }), {
      code: "ErrNotFound",
      message: `image not found: ${reg.host}/test/nope:v1`,
    });
    await assert.rejects(pullImage(`${reg.host}/test/multi:nope`, { store }), /image not found/);
  });

  test("a registry that requires auth: no credentials, wrong ones, docker config, credential helper", async () => {
    const store = newStore("s4");
    const ref = `${authReg.host}/private/img:v1`;
    await assert.rejects(
      pullImage(ref, { store }),
      new RegExp(`registry ${authReg.host} requires authentication`),
    );
    writeFileSync(
      join(dockerConfigDir, "config.json"),
      JSON.stringify({
        auths: { [authReg.host]: { auth: Buffer.from("alice:wrong").toString("base64") } },
      }),
    );
    await assert.rejects(
      pullImage(ref, { store }),
      new RegExp(`authentication failed for registry ${authReg.host}`),
    );
    writeFileSync(
      join(dockerConfigDir, "config.json"),
      JSON.stringify({
        auths: { [authReg.host]: { auth: Buffer.from("alice:s3cret").toString("base64") } },
      }),
    );
    assert.equal((await pullImage(ref, { store })).digest, img.manifestDigest);
    const bin = join(work, "bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(
      join(bin, "docker-credential-wltest"),
      `#!/bin/sh\nread server\n[ "$server" = "${authReg.host}" ] || { echo "credentials not found"; exit 1; }\necho '{"ServerURL":"x","Username":"alice","Secret":"s3cret"}'\n`,
    );
    chmodSync(join(bin, "docker-credential-wltest"), 0o755);
    writeFileSync(
      join(dockerConfigDir, "config.json"),
      JSON.stringify({ credHelpers: { [authReg.host]: "wltest" } }),
    );
    const oldPath = process.env.PATH;
    process.env.PATH = `${bin}:${oldPath ?? ""}`;
    try {
      assert.equal((await pullImage(ref, { store: newStore("s5") })).digest, img.manifestDigest);
    } finally {
      process.env.PATH = oldPath;
      rmSync(join(dockerConfigDir, "config.json"));
    }
  });
});

describe("CLI pull", () => {
  test("pull prints the digest; --platform picks from an index", async () => {
    const env = { ...process.env, WHEELLOCK_CACHE_DIR: join(work, "cli-cache") };
    const pull = (args: string[]) =>
      promisify(execFile)(
        process.execPath,
        ["--import", "tsx", "src/cli/main.ts", "pull", ...args],
        {
          env,
          encoding: "utf8",
        },
      );
    const amd = await pull([`${reg.host}/test/multi:multi`]);
    assert.match(amd.stdout, new RegExp(`Digest: ${img.manifestDigest}\nPlatform: linux/amd64\n`));
    const armOut = await pull(["--platform", "linux/arm64", `${reg.host}/test/multi:multi`]);
    assert.match(
      armOut.stdout,
      new RegExp(`Digest: ${arm.manifestDigest}\nPlatform: linux/arm64\n`),
    );
    await assert.rejects(
      pull([`${reg.host}/test/none:1`]),
      (err: { code?: number; stderr?: string }) =>
        err.code === 1 && err.stderr === `wheellock: image not found: ${reg.host}/test/none:1\n`,
    );
  });
});

describe("a misbehaving registry", () => {
  let server: Server;
  let host = "";
  let mode: "tamper" | "cut" | "stall" | "good" = "tamper";
  const stalled: Array<{ destroy(): void }> = [];
  let good: BuiltImage;
  before(async () => {
    good = buildImage([await layerTar([{ name: "f", content: randomBytes(100_000) }])]);
    server = createServer((req, res) => {
      const url = req.url ?? "";
      if (url === "/v2/") return res.end("{}");
      if (url.includes("/manifests/")) {
        res.setHeader("content-type", good.manifestMediaType);
        return res.end(good.manifest);
      }
      if (url.endsWith(good.configDigest)) return res.end(good.config);
      const layer = good.layers[0];
      if (layer && url.endsWith(layer.digest)) {
        const bytes = Buffer.from(layer.blob);
        if (mode === "good") return res.end(bytes);
        if (mode === "stall") {
          // Half the layer, then nothing: the client sits in the download until killed.
          res.setHeader("content-length", bytes.length);
          res.write(bytes.subarray(0, bytes.length >> 1));
          stalled.push(res);
          return;
        }
        if (mode === "tamper") {
          bytes[bytes.length - 20] = (bytes[bytes.length - 20] ?? 0) ^ 0xff;
          return res.end(bytes);
        }
        res.setHeader("content-length", bytes.length);
        res.write(bytes.subarray(0, 1000));
        setTimeout(() => res.destroy(), 10);
        return;
      }
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    host = `127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  });
  after(() => {
    for (const r of stalled) r.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });

  const assertNothingStored = (store: ImageStore): void => {
    const blobs = existsSync(join(store.root, "blobs", "sha256"))
      ? readdirSync(join(store.root, "blobs", "sha256"))
      : [];
    assert.equal(
      blobs.some((b) => good.layers.some((l) => l.digest.endsWith(b.slice(0, 64)))),
      false,
      "no layer blob kept",
    );
    assert.equal(
      blobs.some((b) => b.includes(".tmp-")),
      false,
      "no temp files",
    );
    assert.deepEqual(
      existsSync(join(store.root, "rootfs")) ? readdirSync(join(store.root, "rootfs")) : [],
      [],
    );
    assert.equal(existsSync(join(store.root, "refs")), false);
  };

  test("a digest mismatch discards the blob and fails", async () => {
    mode = "tamper";
    const store = newStore("bad1");
    await assert.rejects(pullImage(`${host}/x/y:1`, { store }), /digest mismatch for blob sha256:/);
    assertNothingStored(store);
  });

  test("a transfer cut short is retried, then fails leaving no image", async () => {
    mode = "cut";
    const store = newStore("bad2");
    await assert.rejects(pullImage(`${host}/x/y:1`, { store }));
    assertNothingStored(store);
    assert.equal(sha256(good.config), good.configDigest);
  });

  test("a pull killed mid-download leaves no image; prune clears its scraps; a new pull works", async () => {
    mode = "stall";
    const cacheDir = join(work, "killed-cache");
    const env = { ...process.env, WHEELLOCK_CACHE_DIR: cacheDir };
    const cli = (args: string[]) =>
      promisify(execFile)(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
        env,
        encoding: "utf8",
      });
    const child = execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "pull", `${host}/x/y:1`],
      { env },
    );
    const store = new ImageStore(join(cacheDir, "images", "oci"));
    const tmpBlob = (): boolean =>
      existsSync(join(store.root, "blobs", "sha256")) &&
      readdirSync(join(store.root, "blobs", "sha256")).some((b) => b.includes(".tmp-"));
    for (let i = 0; i < 200 && !tmpBlob(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(tmpBlob(), "the download had started");
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
    assert.equal((await cli(["image", "ls"])).stdout, "REPOSITORY  TAG  DIGEST  SIZE  CREATED\n");
    await cli(["image", "prune"]);
    assertNothingStored(store);
    mode = "good";
    const ok = await cli(["pull", `${host}/x/y:1`]);
    assert.match(ok.stdout, new RegExp(`Digest: ${good.manifestDigest}`));
  });
});
