// A RUN step's layer without a VM: an overlay upper directory laid out as the guest kernel
// writes it (whiteouts as 0:0 character devices, trusted.overlay.opaque, hard links, setuid,
// xattrs, a sparse file) on an ext4 made with mkfs.ext4 + debugfs, read back by the builder's
// TypeScript ext4 reader, written as a layer, and flattened with the pulled-layer checks.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  createReadStream,
  linkSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { extract } from "tar-stream";
import { gunzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { Ext4Reader } from "../../src/build/ext4/reader.js";
import { diffUpper } from "../../src/build/layer/upper-diff.js";
import { writeLayer } from "../../src/build/layer/layer-file.js";
import { NeedleScanner } from "../../src/build/layer/scanner.js";
import { buildRootfsExt4 } from "../../src/image/rootfs-build.js";
import { catIn, statIn, xattrIn } from "../helpers/ext4-inspect.js";
import { layerTar, sha256 } from "../helpers/oci-build.js";
import { Readable } from "node:stream";

const work = mkdtempSync(join(tmpdir(), "wl-build-layer-"));
after(() => (process.env.KEEP_WORK ? undefined : rmSync(work, { recursive: true, force: true })));

const CA =
  "-----BEGIN CERTIFICATE-----\nMIIBfake0000000000000000000000000000000000000000000000000000000000\nAAAAbodyofthecertificateAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END CERTIFICATE-----\n";
const BUNDLE = "existing bundle\n";
let upperImg = "";
let lowerImg = "";

function debugfs(image: string, lines: string[]): void {
  const script = join(work, "script");
  writeFileSync(script, `${lines.join("\n")}\n`);
  execFileSync("debugfs", ["-w", "-f", script, image], { stdio: "ignore" });
}

before(async () => {
  // The lower (the stage's root disk): flattened from a layer, as the builder does.
  const lowerTar = await layerTar([
    { name: "etc/", type: "directory" },
    { name: "etc/ssl/certs/ca-certificates.crt", content: BUNDLE },
    { name: "etc/gone", content: "bye" },
    { name: "opq/old", content: "old" },
    { name: "keep", content: "keep" },
  ]);
  lowerImg = join(work, "lower.ext4");
  await buildRootfsExt4({
    layers: [
      {
        name: "lower",
        diffId: sha256(lowerTar),
        sizeBytes: lowerTar.length,
        open: () => Promise.resolve(Readable.from([lowerTar])),
      },
    ],
    workDir: work,
    outPath: lowerImg,
  });
  // The upper: /upper holds the step's changes, /work overlayfs's scratch.
  const tree = join(work, "tree");
  const u = join(tree, "upper");
  mkdirSync(join(u, "etc/ssl/certs"), { recursive: true });
  mkdirSync(join(u, "opq"), { recursive: true });
  mkdirSync(join(u, "new/deep"), { recursive: true });
  mkdirSync(join(tree, "work/work"), { recursive: true });
  writeFileSync(join(u, "new/deep/file"), "content\n");
  linkSync(join(u, "new/deep/file"), join(u, "new/link2"));
  writeFileSync(join(u, "new/suid"), "s");
  symlinkSync("/some/where/far/away/".repeat(5), join(u, "new/longlink"));
  writeFileSync(join(u, "new/sparse"), "");
  truncateSync(join(u, "new/sparse"), 3 * 1024 * 1024);
  writeFileSync(join(u, "opq/fresh"), "fresh");
  writeFileSync(join(u, "etc/ssl/certs/ca-certificates.crt"), BUNDLE + CA);
  writeFileSync(join(u, "etc/resolv.conf"), "nameserver 10.0.2.3\n");
  writeFileSync(join(u, "etc/ssl/certs/wheellock-ca.crt"), CA);
  mkdirSync(join(u, "tmp"));
  for (let i = 0; i < 400; i++)
    writeFileSync(join(u, "new", `many-${String(i).padStart(3, "0")}`), String(i));
  upperImg = join(work, "upper.ext4");
  execFileSync("truncate", ["-s", "64M", upperImg]);
  execFileSync("mkfs.ext4", ["-q", "-F", "-d", tree, upperImg], { stdio: "ignore" });
  const blob = join(work, "xattr-bin");
  writeFileSync(blob, Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0xfe]));
  writeFileSync(join(work, "y"), "y");
  debugfs(upperImg, [
    "cd /upper/etc",
    "mknod gone c 0 0",
    "cd /",
    `ea_set -f ${join(work, "y")} /upper/opq trusted.overlay.opaque`,
    `ea_set /upper/opq trusted.overlay.origin abc`,
    `ea_set -f ${blob} /upper/new/suid security.capability`,
    "sif /upper/new/suid mode 0104755",
    "sif /upper/new/suid uid 1000",
    "sif /upper/new/suid gid 50",
  ]);
});

async function diff(): Promise<{
  entries: Awaited<ReturnType<typeof diffUpper>>;
  close: () => Promise<void>;
}> {
  const upper = await Ext4Reader.open(upperImg, "upper");
  const lower = await Ext4Reader.open(lowerImg, "lower");
  const entries = await diffUpper({
    upper,
    lower,
    excluded: new Set(["tmp", "etc/resolv.conf", "etc/ssl/certs/wheellock-ca.crt"]),
    caPem: CA,
    caBundles: ["etc/ssl/certs/ca-certificates.crt"],
    mtimeClampSec: 0,
    what: "test step",
  });
  return { entries, close: async () => (await upper.close(), await lower.close()) };
}

describe("a RUN layer from the sandbox's writable disk", () => {
  test("whiteouts, opaque dirs, hard links, setuid, owners, xattrs; sandbox files left out", async () => {
    const { entries, close } = await diff();
    try {
      const by = new Map(entries.map((e) => [`${e.kind}:${e.path}`, e]));
      assert.ok(by.has("whiteout:etc/gone"));
      assert.ok(by.has("opaque:opq"), "opaque marker");
      const suid = by.get("file:new/suid");
      assert.equal(suid?.mode, 0o4755);
      assert.equal(suid?.uid, 1000);
      assert.equal(suid?.gid, 50);
      assert.deepEqual(
        suid?.xattrs?.map((x) => [x.name, [...x.value]]),
        [["security.capability", [1, 0, 0, 2, 255, 254]]],
      );
      // overlayfs bookkeeping never reaches a layer.
      assert.ok(!entries.some((e) => e.xattrs?.some((x) => x.name.startsWith("trusted.overlay."))));
      const f = by.get("file:new/deep/file");
      const l = by.get("file:new/link2");
      assert.ok(f?.hardlinkKey && f.hardlinkKey === l?.hardlinkKey);
      const paths = entries.map((e) => e.path);
      for (const gone of [
        "tmp",
        "etc/resolv.conf",
        "etc/ssl/certs/wheellock-ca.crt",
        "etc/ssl/certs/ca-certificates.crt",
      ])
        assert.ok(!paths.includes(gone), `${gone} must not be in the layer`);
      assert.equal(entries.filter((e) => e.path.startsWith("new/many-")).length, 400);
      assert.ok(
        entries.every((e) => e.mtimeSec === 0),
        "mtimes clamped",
      );
    } finally {
      await close();
    }
  });

  test("the layer flattens with the pulled-layer rules and gives the changed tree", async () => {
    const { entries, close } = await diff();
    const blobDir = join(work, "blobs");
    try {
      const layer = await writeLayer(entries, {
        blobDir,
        needles: [],
        what: "t",
        maxBytes: 1 << 30,
      });
      const again = await writeLayer(entries, {
        blobDir,
        needles: [],
        what: "t",
        maxBytes: 1 << 30,
      });
      assert.equal(again.digest, layer.digest, "same entries, same digest");
      const lowerTar = await layerTar([
        { name: "etc/", type: "directory" },
        { name: "etc/gone", content: "bye" },
        { name: "opq/old", content: "old" },
        { name: "keep", content: "keep" },
      ]);
      const out = join(work, "flat.ext4");
      await buildRootfsExt4({
        layers: [
          {
            name: "lower",
            diffId: sha256(lowerTar),
            sizeBytes: lowerTar.length,
            open: () => Promise.resolve(Readable.from([lowerTar])),
          },
          {
            name: "step",
            diffId: layer.diffId,
            sizeBytes: layer.sizeBytes,
            open: () =>
              Promise.resolve(createReadStream(join(blobDir, "sha256", layer.digest.slice(7)))),
          },
        ],
        workDir: work,
        outPath: out,
      });
      assert.equal(statIn(out, "/etc/gone"), undefined);
      assert.equal(statIn(out, "/opq/old"), undefined);
      assert.equal(catIn(out, "/opq/fresh"), "fresh");
      assert.equal(catIn(out, "/keep"), "keep");
      const a = statIn(out, "/new/deep/file");
      const b = statIn(out, "/new/link2");
      assert.equal(a?.inode, b?.inode);
      assert.equal(a?.links, 2);
      assert.equal(statIn(out, "/new/suid")?.mode, 0o4755);
      assert.equal(statIn(out, "/new/suid")?.uid, 1000);
      assert.equal(statIn(out, "/new/sparse")?.type, "regular");
      // The binary capability survives the flatten (libarchive's base64 record).
      assert.match(xattrIn(out, "/new/suid"), /security.capability \(6\) = 01 00 00 02 ff fe/);
      // The binary capability survives the tar round trip byte for byte.
      const tar = gunzipSync(readFileSync(join(blobDir, "sha256", layer.digest.slice(7))));
      const ex = extract();
      const seen: Record<string, string> = {};
      const done = (async () => {
        for await (const e of ex) {
          if (e.header.name === "new/suid") Object.assign(seen, e.header.pax ?? {});
          e.resume();
        }
      })();
      ex.end(tar);
      await done;
      assert.equal(
        Buffer.from(seen["LIBARCHIVE.xattr.security.capability"] ?? "", "base64").toString("hex"),
        "01000002fffe",
      );
    } finally {
      await close();
    }
  });

  test("a layer holding a secret value is refused; the scanner finds it across chunks", async () => {
    const scanner = new NeedleScanner([
      { label: "secret s", bytes: Buffer.from("hunter2-secret") },
    ]);
    scanner.push(Buffer.from("xxxxhunter2-"));
    scanner.push(Buffer.from("secretyyy"));
    assert.equal(scanner.found, "secret s");
    const { entries, close } = await diff();
    try {
      await assert.rejects(
        writeLayer(entries, {
          blobDir: join(work, "b2"),
          needles: [{ label: 'the value of secret "s"', bytes: Buffer.from("content\n") }],
          what: "step 3",
          maxBytes: 1 << 30,
        }),
        /step 3: the layer would contain the value of secret "s"; refused/,
      );
      assert.deepEqual(
        execFileSync("find", [join(work, "b2"), "-type", "f"], { encoding: "utf8" }).trim(),
        "",
        "nothing stored",
      );
    } finally {
      await close();
    }
  });

  test("a secret with '/' in a long file name (ustar's prefix/name split) is found", async () => {
    // ustar keeps a long path as prefix + name, split at a '/': here the secret's own, so its
    // halves land 100+ bytes apart in the header, out of reach of a scan of the byte stream.
    const secret = "tok3n-part-one/tok3n-part-two";
    const dir = `${"p".repeat(50)}tok3n-part-one`;
    const path = `${"p".repeat(50)}${secret}${"x".repeat(40)}`;
    const meta = { mode: 0o755, uid: 0, gid: 0, mtimeSec: 0 };
    await assert.rejects(
      writeLayer(
        [
          { path: dir, kind: "dir", ...meta },
          { path, kind: "file", ...meta, sizeBytes: 0, content: () => [] },
        ],
        {
          blobDir: join(work, "b3"),
          needles: [{ label: 'the value of secret "s"', bytes: Buffer.from(secret) }],
          what: "step 5",
          maxBytes: 1 << 30,
        },
      ),
      /step 5: the layer would contain the value of secret "s" \(in a file name\); refused/,
    );
  });

  test("a crafted disk fails cleanly: a directory cycle, a bad superblock", async () => {
    const bad = join(work, "bad.ext4");
    writeFileSync(bad, Buffer.alloc(4096));
    await assert.rejects(Ext4Reader.open(bad, "crafted"), /crafted: not an ext4 filesystem/);
    const cyc = join(work, "cycle.ext4");
    execFileSync("cp", [upperImg, cyc]);
    // A directory entry pointing back at /upper: a loop no real filesystem has.
    const upperIno = statIn(cyc, "/upper")?.inode;
    debugfs(cyc, [`ln <${upperIno}> /upper/new/loop`]);
    const upper = await Ext4Reader.open(cyc, "upper");
    const lower = await Ext4Reader.open(lowerImg, "lower");
    try {
      await assert.rejects(
        diffUpper({
          upper,
          lower,
          excluded: new Set(),
          caBundles: [],
          mtimeClampSec: 0,
          what: "step",
        }),
        /directory cycle/,
      );
    } finally {
      await upper.close();
      await lower.close();
    }
  });
});
