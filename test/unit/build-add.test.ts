// ADD with no VM: local archives unpacked (gzip, bzip2, xz, plain; several in one ADD), a
// non-archive copied as is, and the hostile ones (`..` entries, writes through a symlink the
// archive made, decompression bombs) refused in one line with nothing stored; URLs downloaded
// under the build's network policy (private addresses, --allow-host, --checksum).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { buildImage, type BuildOptions } from "../../src/build/index.js";
import { ImageStore, importImage } from "../../src/image/index.js";
import { gzipBomb, tarFileHeader } from "../helpers/bombs.js";
import { catIn, readlinkIn, statIn } from "../helpers/ext4-inspect.js";
import { busyboxEntries, dockerSaveTar, layerTar } from "../helpers/oci-build.js";
import { cpuMsSince } from "../helpers/timing.js";

const work = mkdtempSync(join(tmpdir(), "wl-build-add-"));
const store = new ImageStore(join(work, "store"));
const cacheDir = join(work, "cache");
const ctx = join(work, "ctx");
const BASE = "wl-unit-add-base:1";
const OUT = "docker.io/library/wl-unit-add-out:1";
let server: Server;
let origin = "";

before(async () => {
  const tar = await dockerSaveTar(
    [await layerTar(busyboxEntries())],
    { Env: ["PATH=/bin"] },
    "x:1",
  );
  await importImage(BASE, { store, source: Readable.from([tar]) });
  mkdirSync(ctx, { recursive: true });
  const tree = await layerTar([
    { name: "pkg/", type: "directory", mode: 0o750 },
    { name: "pkg/bin/tool", content: "#!/bin/sh\n", mode: 0o755, uid: 7, gid: 8 },
    { name: "pkg/link", type: "symlink", linkname: "bin/tool" },
    { name: "pkg/hard", type: "link", linkname: "pkg/bin/tool" },
  ]);
  writeFileSync(join(ctx, "tree.tar"), tree);
  writeFileSync(join(ctx, "tree.tar.gz"), gzipSync(tree));
  writeFileSync(join(ctx, "tree.tar.bz2"), execFileSync("bzip2", ["-c"], { input: tree }));
  writeFileSync(join(ctx, "tree.tar.xz"), execFileSync("xz", ["-c"], { input: tree }));
  writeFileSync(
    join(ctx, "other.tar.gz"),
    gzipSync(await layerTar([{ name: "other.txt", content: "other\n" }])),
  );
  writeFileSync(join(ctx, "plain.gz"), gzipSync("not a tar\n"));
  writeFileSync(
    join(ctx, "dotdot.tar"),
    await layerTar([{ name: "../../etc/evil", content: "x" }]),
  );
  writeFileSync(
    join(ctx, "through-link.tar"),
    await layerTar([
      { name: "esc", type: "symlink", linkname: "/etc" },
      { name: "esc/passwd", content: "root::0:0::/:/bin/sh\n" },
    ]),
  );
  // 10 GiB of zeros in one entry, about 10 MB of gzip.
  writeFileSync(
    join(ctx, "bomb.tar.gz"),
    gzipBomb(await tarFileHeader("zeros", 10 * 2 ** 30), 10240),
  );
  server = createServer((req, res) => {
    if (req.url === "/file.txt") res.end("from the web\n");
    else if (req.url?.startsWith("/%2F")) res.end("odd\n");
    else if (req.url === "/redirect") res.writeHead(302, { location: "/file.txt" }).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(work, { recursive: true, force: true });
});

const build = (dockerfileText: string, more: Partial<BuildOptions> = {}) =>
  buildImage({
    context: ctx,
    dockerfileText,
    store,
    cacheDir,
    tags: ["wl-unit-add-out:1"],
    ...more,
  });

async function ext4(): Promise<string> {
  const rec = await store.get(OUT);
  assert.ok(rec, "record stored");
  return store.ext4Path(rec);
}

async function refused(dockerfileText: string, re: RegExp, more: Partial<BuildOptions> = {}) {
  await store.remove(OUT).catch(() => undefined);
  await assert.rejects(build(dockerfileText, more), (e: Error) => {
    assert.match(e.message, /^Dockerfile line 2 \(ADD\): /);
    assert.match(e.message, re);
    return true;
  });
  assert.equal(await store.get(OUT), undefined, "no image stored");
  const scratch = readdirSync(join(store.root, "tmp")).filter((n) => n.startsWith("build-"));
  assert.deepEqual(scratch, [], "no build scratch left");
}

describe("ADD of local archives", () => {
  test("tar, gzip, bzip2 and xz archives unpack (modes, owners, links); others are copied", async () => {
    await build(
      [
        `FROM ${BASE}`,
        "ADD tree.tar /plain/",
        "ADD tree.tar.gz /gz/",
        "ADD tree.tar.bz2 /bz2/",
        "ADD tree.tar.xz other.tar.gz /xz/",
        "ADD plain.gz /copied/",
        "COPY tree.tar.gz /not-unpacked/",
        "",
      ].join("\n"),
    );
    const img = await ext4();
    for (const dir of ["plain", "gz", "bz2", "xz"]) {
      assert.equal(catIn(img, `/${dir}/pkg/bin/tool`), "#!/bin/sh\n", dir);
      assert.equal(statIn(img, `/${dir}/pkg/bin/tool`)?.mode, 0o755);
      assert.equal(statIn(img, `/${dir}/pkg/bin/tool`)?.uid, 7);
      assert.equal(statIn(img, `/${dir}/pkg`)?.mode, 0o750);
      assert.equal(readlinkIn(img, `/${dir}/pkg/link`), "bin/tool");
      assert.equal(
        statIn(img, `/${dir}/pkg/hard`)?.inode,
        statIn(img, `/${dir}/pkg/bin/tool`)?.inode,
      );
    }
    assert.equal(catIn(img, "/xz/other.txt"), "other\n", "two archives in one ADD");
    assert.equal(statIn(img, "/copied/plain.gz")?.type, "regular", "gzip of no tar: copied");
    assert.equal(statIn(img, "/not-unpacked/tree.tar.gz")?.type, "regular", "COPY never unpacks");
  });

  test("an entry with '..' and a write through the archive's own symlink are refused", async () => {
    await refused(
      `FROM ${BASE}\nADD dotdot.tar /x/\n`,
      /archive entry \.\.\/\.\.\/etc\/evil contains '\.\.'/,
    );
    await assert.rejects(build(`FROM ${BASE}\nADD through-link.tar /x/\n`), /esc/);
    assert.equal(await store.get(OUT), undefined);
  });

  test("a decompression bomb is refused before it is written, nothing left behind", async () => {
    const cpu0 = process.cpuUsage();
    await refused(
      `FROM ${BASE}\nADD bomb.tar.gz /x/\n`,
      /archive bomb\.tar\.gz decompresses to more than \d+ MiB .*decompression bomb/,
    );
    // This process's CPU time (it decompresses): a loaded machine stretches wall time only.
    assert.ok(cpuMsSince(cpu0) < 20_000, "refused early, not after unpacking gigabytes");
  });
});

describe("ADD of URLs", () => {
  test("a private address is refused by default; allowed with allowPrivateHosts", async () => {
    await refused(
      `FROM ${BASE}\nADD ${origin}/file.txt /web/\n`,
      /private address.*blocked by the build's network policy/,
    );
    await build(`FROM ${BASE}\nADD ${origin}/redirect /web/\nADD ${origin}/file.txt /named\n`, {
      allowPrivateHosts: true,
    });
    const img = await ext4();
    assert.equal(
      catIn(img, "/web/redirect"),
      "from the web\n",
      "named by the URL, not the redirect",
    );
    assert.equal(catIn(img, "/named"), "from the web\n");
  });

  test("--allow-host without the host, a wrong --checksum, a 404: one error each", async () => {
    await refused(
      `FROM ${BASE}\nADD ${origin}/file.txt /web/\n`,
      /127\.0\.0\.1:\d+ is not in the build's --allow-host list/,
      {
        allowHosts: ["example.com"],
        allowPrivateHosts: true,
      },
    );
    await refused(
      `FROM ${BASE}\nADD --checksum=sha256:${"0".repeat(64)} ${origin}/file.txt /web/\n`,
      /has checksum sha256:[0-9a-f]{64}, not sha256:0{64}/,
      { allowPrivateHosts: true },
    );
    await refused(`FROM ${BASE}\nADD ${origin}/missing /web/\n`, /answered HTTP 404/, {
      allowPrivateHosts: true,
    });
    await refused(`FROM ${BASE}\nADD ${origin}/%2F.. /web/\n`, /does not name a file/, {
      allowPrivateHosts: true,
    });
  });
});
