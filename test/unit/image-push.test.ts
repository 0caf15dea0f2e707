// `pushImage` against Debian's docker-registry on loopback: monolithic and chunked uploads,
// cross-repository mounts, blobs already there, Basic auth, retries through a faulty proxy, and
// the round trip (push, then pull into an empty store: same digest, same files).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ImageStore, pullImage, pushImage } from "../../src/image/index.js";
import { catIn } from "../helpers/ext4-inspect.js";
import { buildImage, busyboxEntries, layerTar, type BuiltImage } from "../helpers/oci-build.js";
import { pushImage as seedImage, startRegistry, type TestRegistry } from "../helpers/registry.js";

const MIB = 1024 * 1024;
const work = mkdtempSync(join(tmpdir(), "wl-push-"));
process.env.DOCKER_CONFIG = join(work, "docker");
mkdirSync(process.env.DOCKER_CONFIG);
let reg: TestRegistry;
let authReg: TestRegistry;
let img: BuiltImage;
let store: ImageStore;
let source = "";
const alice = { username: "alice", password: "s3cret" };
const big = randomBytes(3 * MIB + 12_345);

before(async () => {
  reg = await startRegistry();
  authReg = await startRegistry({ user: "alice", password: "s3cret" });
  img = buildImage(
    [
      await layerTar([...busyboxEntries(), { name: "data/a", content: "pushed" }]),
      // Random bytes do not compress: a layer over the chunk size, so it goes in chunks.
      await layerTar([{ name: "data/big", content: big }]),
    ],
    { Cmd: ["sh"] },
  );
  await seedImage(reg.host, "src/app", "v1", img);
  store = new ImageStore(join(work, "store"));
  source = `${reg.host}/src/app:v1`;
  await pullImage(source, { store });
});

after(async () => {
  await reg?.stop();
  await authReg?.stop();
  rmSync(work, { recursive: true, force: true });
});

const small = { monolithicMaxBytes: MIB, chunkSizeBytes: MIB };

describe("push", () => {
  test("to another repository of the same registry: every blob is mounted, nothing sent", async () => {
    const r = await pushImage(source, `${reg.host}/dst/app:v2`, { store, ...small });
    assert.equal(r.digest, img.manifestDigest);
    assert.deepEqual(
      r.blobs.map((b) => b.outcome),
      ["mounted", "mounted", "mounted"],
    );
    assert.equal(r.uploadedBytes, 0);
  });

  test("to another registry with Basic auth: uploads (big layer chunked), pulls back identical", async () => {
    const target = `${authReg.host}/team/app:v1`;
    const r = await pushImage(source, target, { store, credentials: alice, ...small });
    assert.equal(r.digest, img.manifestDigest);
    assert.deepEqual(
      r.blobs.map((b) => b.outcome),
      ["uploaded", "uploaded", "uploaded"],
    );
    assert.equal(r.uploadedBytes, r.sizeBytes);
    // Pull into an empty store: the same manifest digest, the same files.
    const fresh = new ImageStore(join(work, "fresh"));
    const rec = await pullImage(target, { store: fresh, credentials: alice });
    assert.equal(rec.digest, img.manifestDigest);
    assert.equal(catIn(fresh.ext4Path(rec), "/data/a"), "pushed");
    assert.ok(dumpIn(fresh.ext4Path(rec), "/data/big").equals(big));
  });

  test("again: every blob is there already; a second repository mounts from the first", async () => {
    const again = await pushImage(source, `${authReg.host}/team/app:v1`, {
      store,
      credentials: alice,
    });
    assert.deepEqual(
      again.blobs.map((b) => b.outcome),
      ["exists", "exists", "exists"],
    );
    // The store remembers where it pushed: a new repository of that registry mounts.
    const other = await pushImage(source, `${authReg.host}/other/app:v1`, {
      store,
      credentials: alice,
    });
    assert.deepEqual(
      other.blobs.map((b) => b.outcome),
      ["mounted", "mounted", "mounted"],
    );
  });

  test("wrong credentials fail with one line naming the registry", async () => {
    await assert.rejects(
      pushImage(source, `${authReg.host}/team/denied:v1`, {
        store,
        credentials: { username: "alice", password: "wrong" },
        retries: 0,
      }),
      /authentication failed for registry 127\.0\.0\.1:\d+/,
    );
  });

  test("an image that is not stored is ErrNotFound", async () => {
    await assert.rejects(pushImage(`${reg.host}/nope:v1`, undefined, { store }), {
      code: "ErrNotFound",
    });
  });

  test("a target naming another digest is refused before any blob goes up", async () => {
    const other = `sha256:${"0".repeat(64)}`;
    await assert.rejects(
      pushImage(source, `${authReg.host}/team/pinned@${other}`, { store, credentials: alice }),
      (err: Error & { code?: string }) =>
        err.code === "ErrInvalidConfig" && err.message.includes(img.manifestDigest),
    );
    // Nothing was sent: the repository does not exist on the registry.
    const auth = Buffer.from("alice:s3cret").toString("base64");
    const res = await fetch(`http://${authReg.host}/v2/team/pinned/tags/list`, {
      headers: { authorization: `Basic ${auth}` },
    });
    assert.equal(res.status, 404);
  });

  test("failed chunks and a failed manifest PUT are retried; the upload resumes", async () => {
    const proxy = await faultyProxy(reg.host);
    try {
      const r = await pushImage(source, `${proxy.host}/flaky/app:v1`, {
        store,
        ...small,
        retries: 3,
      });
      assert.equal(r.digest, img.manifestDigest);
      assert.ok(proxy.faults.length >= 3, `faults injected: ${proxy.faults.join(", ")}`);
      const fresh = new ImageStore(join(work, "fresh-flaky"));
      const rec = await pullImage(`${reg.host}/flaky/app:v1`, { store: fresh });
      assert.ok(dumpIn(fresh.ext4Path(rec), "/data/big").equals(big));
    } finally {
      await proxy.close();
    }
  });
});

/**
 * A proxy in front of the registry that breaks the second PATCH after half its body (connection
 * reset), answers the third PATCH with 503 without forwarding it, and the first manifest PUT
 * with 500: what a flaky network and an overloaded registry do.
 */
async function faultyProxy(
  upstream: string,
): Promise<{ host: string; faults: string[]; close(): Promise<void> }> {
  const faults: string[] = [];
  let patches = 0;
  let manifests = 0;
  const server: Server = createServer((req, res) => {
    if (req.method === "PATCH") patches++;
    if (req.method === "PUT" && req.url?.includes("/manifests/")) manifests++;
    if (req.method === "PATCH" && patches === 3) {
      faults.push("503 on PATCH");
      req.resume();
      res.writeHead(503).end();
      return;
    }
    if (req.method === "PUT" && req.url?.includes("/manifests/") && manifests === 1) {
      faults.push("500 on manifest");
      req.resume();
      res.writeHead(500).end();
      return;
    }
    const [host, port] = upstream.split(":");
    const out = request(
      { host, port: Number(port), method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    out.on("error", () => res.destroy());
    if (req.method === "PATCH" && patches === 2) {
      // Forward half the chunk, then cut both connections: part of it may have been stored.
      faults.push("reset mid-PATCH");
      let forwarded = 0;
      const half = Number(req.headers["content-length"] ?? 0) / 2;
      req.on("data", (d: Buffer) => {
        if (forwarded < half) out.write(d.subarray(0, Math.max(0, half - forwarded)));
        forwarded += d.length;
        if (forwarded >= half) {
          req.destroy();
          out.destroy();
          res.destroy();
        }
      });
      return;
    }
    req.pipe(out);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    faults,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A file's bytes out of an ext4 image (debugfs dump: catIn's pipe is too small for MiBs). */
function dumpIn(image: string, path: string): Buffer {
  const out = join(work, `dump-${randomBytes(4).toString("hex")}`);
  execFileSync("debugfs", ["-R", `dump ${path} ${out}`, image], { stdio: "ignore" });
  return readFileSync(out);
}
