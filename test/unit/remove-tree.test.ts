// removeTree: any tree a guest can build in an overlay upper layer goes, and nothing outside it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  constants as fsc,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrCleanup } from "../../src/errors.js";
import { removeTree, removeTreeSync } from "../../src/util/remove-tree.js";

const O_PATH = 0o10000000;

function scratch(): string {
  return mkdtempSync(join(tmpdir(), "wheellock-rmtree-"));
}

/**
 * A chain of directories deeper than PATH_MAX, made as a guest would: one level at a time,
 * relative to the last (no path handed to the kernel is long). Returns the deepest level's fd.
 */
function deepChain(root: string, levels: number, name: string): number {
  let fd = openSync(root, O_PATH | fsc.O_DIRECTORY);
  for (let i = 0; i < levels; i++) {
    mkdirSync(`/proc/self/fd/${fd}/${name}`);
    writeFileSync(`/proc/self/fd/${fd}/f${i % 3}`, "x");
    const next = openSync(`/proc/self/fd/${fd}/${name}`, O_PATH | fsc.O_DIRECTORY);
    closeSync(fd);
    fd = next;
  }
  return fd;
}

test("removeTree: a tree deeper than PATH_MAX (where rmSync fails with ENAMETOOLONG)", async () => {
  const base = scratch();
  try {
    for (const victim of ["by-rm", "sync", "async"]) {
      const root = join(base, victim);
      mkdirSync(root);
      closeSync(deepChain(root, 60, "d".repeat(200))); // ~12 KB of path
    }
    assert.throws(
      () => rmSync(join(base, "by-rm"), { recursive: true, force: true }),
      /ENAMETOOLONG/,
      "the attack: Node's recursive removal cannot remove this tree",
    );
    removeTreeSync(join(base, "by-rm"));
    removeTreeSync(join(base, "sync"));
    await removeTree(join(base, "async"));
    for (const victim of ["by-rm", "sync", "async"]) assert.ok(!existsSync(join(base, victim)));
  } finally {
    removeTreeSync(base);
  }
});

test("removeTree: a 2,100-level chain of one-letter directories (4 KiB of path)", () => {
  const base = scratch();
  closeSync(deepChain(base, 2100, "d"));
  removeTreeSync(base);
  assert.ok(!existsSync(base));
});

test("removeTree: symlinks are removed as names, never followed (loops, outside targets)", () => {
  const base = scratch();
  try {
    const outside = join(base, "outside");
    mkdirSync(join(outside, "sub"), { recursive: true });
    writeFileSync(join(outside, "keep"), "precious");
    writeFileSync(join(outside, "sub", "keep2"), "precious");
    const root = join(base, "tree");
    mkdirSync(join(root, "a", "b"), { recursive: true });
    symlinkSync(outside, join(root, "to-outside-dir"));
    symlinkSync(join(outside, "keep"), join(root, "a", "to-outside-file"));
    symlinkSync("../..", join(root, "a", "b", "up"));
    symlinkSync("loop", join(root, "loop"));
    symlinkSync("x2", join(root, "x1"));
    symlinkSync("x1", join(root, "x2"));
    // An empty-dir-looking name that is a link to a non-empty directory outside.
    symlinkSync(join(outside, "sub"), join(root, "a", "b", "sub"));
    removeTreeSync(root);
    assert.ok(!existsSync(root));
    assert.equal(readFileSync(join(outside, "keep"), "utf8"), "precious");
    assert.equal(readFileSync(join(outside, "sub", "keep2"), "utf8"), "precious");
    // The root itself a symlink: the link goes, its target stays.
    const link = join(base, "root-link");
    symlinkSync(outside, link);
    removeTreeSync(link);
    assert.ok(!existsSync(link) && existsSync(join(outside, "keep")));
  } finally {
    removeTreeSync(base);
  }
});

test("removeTree: names that are not UTF-8, start with '-', hold newlines or look like ours", () => {
  const base = scratch();
  const names = [
    Buffer.from([0xff, 0xfe, 0x2f - 1]),
    Buffer.from("-rf"),
    Buffer.from("new\nline"),
    Buffer.from(".wheellock-rm-0000000000000000"),
    Buffer.from("0"),
    Buffer.from(" "),
  ];
  const prefix = Buffer.from(`${base}/`);
  for (const name of names) {
    const dir = Buffer.concat([prefix, name]);
    mkdirSync(dir);
    writeFileSync(Buffer.concat([dir, Buffer.from("/"), name]), "x");
    writeFileSync(Buffer.concat([prefix, name, Buffer.from(".file")]), "x");
  }
  removeTreeSync(base);
  assert.ok(!existsSync(base));
});

test("removeTree: a missing path is fine; a file or a symlink path removes just that name", () => {
  const base = scratch();
  try {
    removeTreeSync(join(base, "absent"));
    writeFileSync(join(base, "file"), "x");
    removeTreeSync(join(base, "file"));
    assert.ok(!existsSync(join(base, "file")));
  } finally {
    removeTreeSync(base);
  }
});

test("removeTree: wide trees of non-empty directories, and many files (async yields)", async () => {
  const base = scratch();
  for (let i = 0; i < 150; i++) {
    mkdirSync(join(base, `d${i}`, "e", "f"), { recursive: true });
    for (let j = 0; j < 30; j++) writeFileSync(join(base, `d${i}`, "e", `g${j}`), "");
  }
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  try {
    await removeTree(base);
  } finally {
    clearInterval(timer);
  }
  assert.ok(!existsSync(base));
  assert.ok(ticks > 0, "the event loop ran while ~5,000 entries were removed");
});

const asRoot = process.getuid?.() === 0;

/**
 * Runs removeTreeSync(root) in a child process as an unprivileged user: root ignores
 * permission bits, and the case that matters is the host user removing its own tree. When
 * the test runs as root, `owned` (and everything below) is given to `nobody` first.
 */
function removeAsUser(root: string, owned: string): { status: number | null; out: string } {
  if (asRoot) spawnSync("chown", ["-R", "65534:65534", owned]);
  const module = join(import.meta.dirname, "../../src/util/remove-tree.ts");
  const removal = `import(${JSON.stringify(module)}).then((m) => m.removeTreeSync(process.argv[1])).catch((e) => { console.log(e.code, e.errno, e.message); process.exit(3); })`;
  const run = spawnSync(process.execPath, ["--import", "tsx", "-e", removal, root], {
    encoding: "utf8",
    ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
  });
  return { status: run.status, out: run.stdout + run.stderr };
}

test("removeTree: directories without permissions (mode 0), as an unprivileged user", () => {
  const base = scratch();
  try {
    const root = join(base, "tree");
    mkdirSync(join(root, "a", "b", "c"), { recursive: true });
    writeFileSync(join(root, "a", "b", "c", "file"), "x");
    mkdirSync(join(root, "empty"));
    writeFileSync(join(root, "a", "nowrite"), "x");
    closeSync(deepChain(join(root, "a"), 40, "n".repeat(120)));
    // Take every permission away, deepest first (after that, the tree cannot be walked).
    spawnSync("sh", ["-c", 'find "$1" -depth -exec chmod 000 {} +', "sh", root]);
    const run = removeAsUser(root, base);
    assert.equal(run.status, 0, run.out);
    assert.ok(!existsSync(root));
  } finally {
    removeTreeSync(base);
  }
});

test("removeTree: refuses / and reports a failure as one ErrCleanup naming the tree", () => {
  assert.throws(() => removeTreeSync("/"), ErrCleanup);
  const base = scratch();
  try {
    mkdirSync(join(base, "locked", "x"), { recursive: true });
    chmodSync(base, 0o500); // the tree's own parent forbids removing it
    const run = removeAsUser(join(base, "locked"), base);
    assert.equal(run.status, 3, run.out);
    assert.match(run.out, /^ErrCleanup EACCES cannot remove \S*locked: EACCES \(rmdir\)\n$/);
  } finally {
    chmodSync(base, 0o700);
    removeTreeSync(base);
  }
});
