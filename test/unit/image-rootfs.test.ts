import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { buildRootfsExt4, type LayerSource } from "../../src/image/rootfs-build.js";
import { catIn, listIn, readlinkIn, statIn, xattrIn } from "../helpers/ext4-inspect.js";
import { layerTar, sha256, type EntrySpec } from "../helpers/oci-build.js";

const work = mkdtempSync(join(tmpdir(), "wl-rootfs-"));
after(() => rmSync(work, { recursive: true, force: true }));

async function layers(specs: EntrySpec[][], compress = true): Promise<LayerSource[]> {
  const out: LayerSource[] = [];
  for (const [i, s] of specs.entries()) {
    const tar = await layerTar(s);
    const blob = compress ? gzipSync(tar) : tar;
    out.push({
      name: `layer${i}`,
      diffId: sha256(tar),
      sizeBytes: blob.length,
      open: () => Promise.resolve(Readable.from([blob])),
    });
  }
  return out;
}

const lower: EntrySpec[] = [
  { name: "bin/", type: "directory" },
  { name: "bin/tool", content: "#!/bin/sh\n", mode: 0o755 },
  { name: "bin/hl", type: "link", linkname: "bin/tool" },
  { name: "usr/bin/su", content: "su", mode: 0o4755 },
  { name: "usr/bin/wall", content: "wall", mode: 0o2755, gid: 5 },
  { name: "home/app/", type: "directory", uid: 1000, gid: 1000, mode: 0o750 },
  { name: "home/app/notes", content: "mine", uid: 1000, gid: 1000, mode: 0o640 },
  { name: "data/keep", content: "k" },
  { name: "data/gone", content: "g" },
  { name: "opq/old1", content: "o" },
  { name: "opq/sub/old2", content: "o" },
  { name: "replaced/child", content: "c" },
  { name: "etc/passwd", content: "root:x:0:0::/root:/bin/sh\n" },
  { name: "abs-link", type: "symlink", linkname: "/etc/passwd" },
  { name: "dev/null2", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
  { name: "run/fifo", type: "fifo", mode: 0o600 },
  { name: "secret", content: "s", mode: 0o001 },
  { name: "cap", content: "x", pax: { "SCHILY.xattr.user.test": "hello" } },
];
const upper: EntrySpec[] = [
  { name: "data/.wh.gone", content: "" },
  { name: "opq/.wh..wh..opq", content: "" },
  { name: "opq/new1", content: "n" },
  { name: "replaced", content: "now a file" },
  { name: "data/added", content: "a" },
];

// Both paths run as root; as another user only the unprivileged one can (lchown needs root).
const isRoot = process.getuid?.() === 0;
for (const asRoot of isRoot ? [true, false] : [false]) {
  describe(`flattening layers (${asRoot ? "as root" : "unprivileged path: debugfs ownership"})`, () => {
    const img = join(work, `img-${asRoot}.ext4`);
    test("builds an ext4 with exact content, ownership and modes", async () => {
      await buildRootfsExt4({
        layers: await layers([lower, upper]),
        workDir: join(work, "w"),
        outPath: img,
        asRoot,
      });
      assert.equal(catIn(img, "/bin/tool"), "#!/bin/sh\n");
      const su = statIn(img, "/usr/bin/su");
      assert.deepEqual([su?.mode, su?.uid], [0o4755, 0]);
      const wall = statIn(img, "/usr/bin/wall");
      assert.deepEqual([wall?.mode, wall?.gid], [0o2755, 5]);
      const notes = statIn(img, "/home/app/notes");
      assert.deepEqual([notes?.uid, notes?.gid, notes?.mode], [1000, 1000, 0o640]);
      assert.equal(statIn(img, "/home/app")?.mode, 0o750);
      assert.equal(statIn(img, "/secret")?.mode, 0o001);
      const a = statIn(img, "/bin/tool");
      const b = statIn(img, "/bin/hl");
      assert.equal(a?.inode, b?.inode, "hard link shares the inode");
      assert.equal(a?.links, 2);
      assert.equal(readlinkIn(img, "/abs-link"), "/etc/passwd");
      const dev = statIn(img, "/dev/null2");
      assert.deepEqual([dev?.type, dev?.mode], ["character special", 0o666]);
      assert.equal(statIn(img, "/run/fifo")?.type, "FIFO");
      assert.match(xattrIn(img, "/cap"), /user.test.*hello/);
      assert.equal(listIn(img, "/").includes("lost+found"), false);
    });
    test("applies whiteouts and opaque directories", () => {
      assert.deepEqual(listIn(img, "/data").sort(), ["added", "keep"]);
      assert.deepEqual(listIn(img, "/opq"), ["new1"]);
      assert.equal(statIn(img, "/replaced")?.type, "regular");
      assert.equal(catIn(img, "/replaced"), "now a file");
    });
  });
}

test("zstd, gzip and plain layers are recognised by their bytes", async () => {
  const tars = [
    await layerTar([{ name: "z", content: "zstd" }]),
    await layerTar([{ name: "g", content: "gzip" }]),
    await layerTar([{ name: "p", content: "plain" }]),
  ];
  const blobs = [
    execFileSync("zstd", ["-c", "-q"], { input: tars[0] }),
    gzipSync(tars[1] ?? Buffer.alloc(0)),
    tars[2],
  ];
  const img = join(work, "mixed.ext4");
  await buildRootfsExt4({
    layers: blobs.map((b, i) => ({
      name: `l${i}`,
      diffId: sha256(tars[i] ?? Buffer.alloc(0)),
      sizeBytes: b?.length ?? 0,
      open: () => Promise.resolve(Readable.from([b ?? Buffer.alloc(0)])),
    })),
    workDir: join(work, "w"),
    outPath: img,
  });
  assert.deepEqual(
    [catIn(img, "/z"), catIn(img, "/g"), catIn(img, "/p")],
    ["zstd", "gzip", "plain"],
  );
});

describe("hostile layers are refused and leave nothing behind", () => {
  const cases: Array<[string, EntrySpec[][], RegExp]> = [
    ["dot-dot entry", [[{ name: "a/../../escape", content: "x" }]], /contains '\.\.'/],
    ["absolute entry", [[{ name: "/etc/escape", content: "x" }]], /absolute path/],
    [
      "symlink then write through it",
      [
        [
          { name: "lnk", type: "symlink", linkname: "/tmp" },
          { name: "lnk/escape", content: "x" },
        ],
      ],
      /writes through the symlink "lnk"/,
    ],
    [
      "symlink in a lower layer, write through it in an upper one",
      [
        [{ name: "lnk", type: "symlink", linkname: "../../.." }],
        [{ name: "lnk/escape", content: "x" }],
      ],
      /writes through the symlink/,
    ],
    [
      "hard link to outside",
      [[{ name: "h", type: "link", linkname: "../../../etc/passwd" }]],
      /contains '\.\.'/,
    ],
    [
      "hard link to an absolute path",
      [[{ name: "h", type: "link", linkname: "/etc/passwd" }]],
      /absolute path/,
    ],
    [
      "hard link to a missing file",
      [[{ name: "h", type: "link", linkname: "etc/shadow" }]],
      /does not exist/,
    ],
  ];
  for (const [label, specs, why] of cases) {
    test(label, async () => {
      const wd = join(work, `bad-${label.replace(/\W+/g, "-")}`);
      const out = join(wd, "out.ext4");
      await assert.rejects(
        buildRootfsExt4({ layers: await layers(specs), workDir: wd, outPath: out }),
        (err: Error) => /unsafe layer/.test(err.message) && why.test(err.message),
      );
      assert.equal(existsSync(out), false);
      assert.deepEqual(readdirSync(wd), []);
      assert.equal(existsSync(join(work, "escape")), false);
      assert.equal(existsSync("/tmp/escape"), false);
    });
  }

  test("a layer whose content does not match its diff ID", async () => {
    const wd = join(work, "bad-diffid");
    const [l] = await layers([[{ name: "f", content: "x" }]]);
    assert.ok(l);
    await assert.rejects(
      buildRootfsExt4({
        layers: [{ ...l, diffId: sha256(Buffer.from("other")) }],
        workDir: wd,
        outPath: join(wd, "o"),
      }),
      /does not match the image config/,
    );
    assert.deepEqual(readdirSync(wd), []);
  });
});
