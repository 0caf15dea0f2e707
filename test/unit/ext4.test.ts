import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildExt4FromDir,
  createEmptyExt4,
  ext4SizeFor,
  formatEmptyExt4,
  measureTree,
} from "../../src/image/ext4.js";
import { findExecutable } from "../../src/util/which.js";

const isRoot = process.getuid?.() === 0;
const debugfs = findExecutable("debugfs");
const e2fsck = findExecutable("e2fsck");
const noTools = !debugfs || !e2fsck || !findExecutable("mkfs.ext4");

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), "wl-ext4-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface InodeStat {
  inode: number;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  links: number;
  size: number;
  fastLink?: string;
}

function statInImage(image: string, path: string): InodeStat {
  const res = spawnSync(debugfs!, ["-R", `stat ${path}`, image], { encoding: "utf8" });
  const out = res.stdout;
  const num = (re: RegExp): number => {
    const m = re.exec(out);
    assert.ok(m?.[1] !== undefined, `debugfs stat ${path}: no ${re} in: ${out || res.stderr}`);
    return Number(m[1]);
  };
  const typeMatch = /Type:\s+(\S+)/.exec(out);
  const fast = /Fast link dest:\s+"(.*)"/.exec(out);
  return {
    inode: num(/Inode:\s+(\d+)/),
    type: typeMatch?.[1] ?? "?",
    mode: Number.parseInt(/Mode:\s+(\d+)/.exec(out)?.[1] ?? "x", 8),
    uid: num(/User:\s+(\d+)/),
    gid: num(/Group:\s+(\d+)/),
    links: num(/Links:\s+(\d+)/),
    size: num(/Size:\s+(\d+)/),
    ...(fast?.[1] !== undefined ? { fastLink: fast[1] } : {}),
  };
}

function fsckClean(image: string): void {
  const res = spawnSync(e2fsck!, ["-fn", image], { encoding: "utf8" });
  assert.equal(res.status, 0, `e2fsck -fn ${image}: ${res.stdout}${res.stderr}`);
}

test("measureTree counts hard-linked data once and every inode", (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "a"), Buffer.alloc(10_000));
  linkSync(join(dir, "a"), join(dir, "a-link"));
  mkdirSync(join(dir, "d"));
  symlinkSync("a", join(dir, "d", "short"));
  symlinkSync("x".repeat(100), join(dir, "d", "long"));
  const usage = measureTree(dir);
  // root dir, a (once), d, short, long
  assert.equal(usage.inodes, 5);
  // a: 3 blocks, 2 dirs: 1 block each, long symlink: 1 block
  assert.equal(usage.dataBytes, (3 + 2 + 1) * 4096);
  const size = ext4SizeFor(usage);
  assert.ok(size.sizeBytes >= usage.dataBytes + 16 * 1024 * 1024);
  assert.ok(size.inodes > usage.inodes);
});

test(
  "buildExt4FromDir keeps modes, setuid/setgid/sticky, symlinks and hard links",
  { skip: noTools },
  async (t) => {
    const dir = tempDir(t);
    const root = join(dir, "tree");
    mkdirSync(join(root, "usr", "bin"), { recursive: true });
    writeFileSync(join(root, "usr", "bin", "su"), "#!/bin/sh\n");
    chmodSync(join(root, "usr", "bin", "su"), 0o4755);
    writeFileSync(join(root, "usr", "bin", "wall"), "x");
    chmodSync(join(root, "usr", "bin", "wall"), 0o2755);
    mkdirSync(join(root, "tmp"));
    chmodSync(join(root, "tmp"), 0o1777);
    writeFileSync(join(root, "secret"), "s");
    chmodSync(join(root, "secret"), 0o600);
    linkSync(join(root, "usr", "bin", "su"), join(root, "usr", "bin", "su-again"));
    symlinkSync("usr/bin", join(root, "bin"));
    const longTarget = `/${"long-name/".repeat(10)}target`;
    symlinkSync(longTarget, join(root, "long-link"));
    writeFileSync(join(root, "big"), Buffer.alloc(3 * 1024 * 1024, 1));

    const image = join(dir, "out.ext4");
    const { sizeBytes } = await buildExt4FromDir(root, image);
    assert.equal(statSync(image).size, sizeBytes);
    fsckClean(image);

    assert.equal(statInImage(image, "/usr/bin/su").mode, 0o4755);
    assert.equal(statInImage(image, "/usr/bin/wall").mode, 0o2755);
    assert.equal(statInImage(image, "/tmp").mode, 0o1777);
    assert.equal(statInImage(image, "/secret").mode, 0o600);
    assert.equal(statInImage(image, "/big").size, 3 * 1024 * 1024);

    const su = statInImage(image, "/usr/bin/su");
    const again = statInImage(image, "/usr/bin/su-again");
    assert.equal(su.inode, again.inode, "hard links share one inode");
    assert.equal(su.links, 2);

    const bin = statInImage(image, "/bin");
    assert.equal(bin.type, "symlink");
    assert.equal(bin.fastLink, "usr/bin");
    const long = statInImage(image, "/long-link");
    assert.equal(long.type, "symlink");
    assert.equal(long.size, longTarget.length);
  },
);

test(
  "buildExt4FromDir keeps uid/gid of every file (root only: needs chown)",
  { skip: noTools || !isRoot },
  async (t) => {
    const dir = tempDir(t);
    const root = join(dir, "tree");
    mkdirSync(join(root, "home", "user"), { recursive: true });
    chownSync(join(root, "home", "user"), 1000, 1000);
    writeFileSync(join(root, "shadow"), "x");
    chownSync(join(root, "shadow"), 0, 42);
    chmodSync(join(root, "shadow"), 0o640);
    writeFileSync(join(root, "nobody-file"), "x");
    chownSync(join(root, "nobody-file"), 65534, 65534);
    symlinkSync("shadow", join(root, "owned-link"));
    spawnSync("chown", ["-h", "1000:1000", join(root, "owned-link")]);

    const image = join(dir, "out.ext4");
    await buildExt4FromDir(root, image);
    fsckClean(image);
    assert.deepEqual(pick(statInImage(image, "/home/user")), { uid: 1000, gid: 1000 });
    assert.deepEqual(pick(statInImage(image, "/shadow")), { uid: 0, gid: 42 });
    assert.equal(statInImage(image, "/shadow").mode, 0o640);
    assert.deepEqual(pick(statInImage(image, "/nobody-file")), { uid: 65534, gid: 65534 });
    assert.deepEqual(pick(statInImage(image, "/owned-link")), { uid: 1000, gid: 1000 });
    assert.deepEqual(pick(statInImage(image, "/")), { uid: 0, gid: 0 });
  },
);

test(
  "buildExt4FromDir fits a tree of many small files without running out of inodes or blocks",
  { skip: noTools },
  async (t) => {
    const dir = tempDir(t);
    const root = join(dir, "tree");
    for (let d = 0; d < 30; d++) {
      mkdirSync(join(root, `dir-${d}`), { recursive: true });
      for (let f = 0; f < 100; f++)
        writeFileSync(join(root, `dir-${d}`, `file-with-a-longish-name-${f}`), "x".repeat(f * 50));
    }
    const image = join(dir, "out.ext4");
    await buildExt4FromDir(root, image, { slackBytes: 0, slackRatio: 0 });
    fsckClean(image);
    assert.equal(statInImage(image, "/dir-29/file-with-a-longish-name-99").size, 99 * 50);
  },
);

test("createEmptyExt4 makes a valid, sparse 5 GiB filesystem", { skip: noTools }, async (t) => {
  const dir = tempDir(t);
  const disk = join(dir, "upper.ext4");
  await createEmptyExt4(disk, 5120, { templateDir: join(dir, "templates") });
  const st = statSync(disk);
  assert.equal(st.size, 5120 * 1024 * 1024);
  assert.ok(
    st.blocks * 512 < 32 * 1024 * 1024,
    `allocated ${st.blocks * 512} bytes; expected a sparse file`,
  );
  fsckClean(disk);
  // Writable by the guest: root of the fs is a normal 0755 directory.
  assert.equal(statInImage(disk, "/").type, "directory");
});

test(
  "createEmptyExt4 starts from zeros even over an existing dense file",
  { skip: noTools },
  async (t) => {
    // assume_storage_prezeroed is only true for fresh zeros: old bytes would become "empty" inode tables.
    const dir = tempDir(t);
    const disk = join(dir, "upper.ext4");
    writeFileSync(disk, Buffer.alloc(64 * 1024 * 1024, 0xff));
    await createEmptyExt4(disk, 64, { templateDir: join(dir, "templates") });
    fsckClean(disk);
    assert.ok(statSync(disk).blocks * 512 < 16 * 1024 * 1024, "old content was not discarded");
  },
);

test(
  "createEmptyExt4 copies a cached template: disks are independent and the template stays pristine",
  { skip: noTools },
  async (t) => {
    const dir = tempDir(t);
    const templateDir = join(dir, "templates");
    const a = join(dir, "a.ext4");
    const b = join(dir, "b.ext4");
    await createEmptyExt4(a, 64, { templateDir });
    assert.deepEqual(readdirSync(templateDir), ["upper-64m-v1.ext4"]);
    // Write into disk a: debugfs -w creates a directory, as a guest would.
    spawnSync(debugfs!, ["-w", "-R", "mkdir /written", a]);
    assert.equal(statInImage(a, "/written").type, "directory");
    await createEmptyExt4(b, 64, { templateDir });
    fsckClean(b);
    const inB = spawnSync(debugfs!, ["-R", "stat /written", b], { encoding: "utf8" });
    assert.match(inB.stdout + inB.stderr, /File not found/);
    assert.ok(statSync(b).blocks * 512 < 16 * 1024 * 1024, "copy stayed sparse");
  },
);

test("formatEmptyExt4 works without a template", { skip: noTools }, async (t) => {
  const dir = tempDir(t);
  await formatEmptyExt4(join(dir, "x.ext4"), 32);
  fsckClean(join(dir, "x.ext4"));
});

test("createEmptyExt4 rejects nonsense sizes", async (t) => {
  const dir = tempDir(t);
  await assert.rejects(createEmptyExt4(join(dir, "x"), 0), /ErrSetup|size/);
  await assert.rejects(createEmptyExt4(join(dir, "x"), 1.5), /size/);
});

function pick(s: InodeStat): { uid: number; gid: number } {
  return { uid: s.uid, gid: s.gid };
}
