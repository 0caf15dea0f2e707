import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureInitramfs } from "../../src/setup/initramfs.js";
import { buildCpio } from "../../src/setup/cpio.js";
import type { GuestKernel } from "../../src/setup/kernel.js";

interface Parsed {
  name: string;
  mode: number;
  rdevMajor: number;
  rdevMinor: number;
  data: Buffer;
}

/** An independent newc reader, strict about magic and 4-byte alignment. */
function parseNewc(buf: Buffer): Parsed[] {
  const out: Parsed[] = [];
  let off = 0;
  const align = (n: number): number => (n + 3) & ~3;
  for (;;) {
    assert.equal(off % 4, 0, "entries start 4-byte aligned");
    assert.equal(buf.toString("ascii", off, off + 6), "070701", `magic at ${off}`);
    const field = (i: number): number =>
      Number.parseInt(buf.toString("ascii", off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const nameSize = field(11);
    const rdevMajor = field(9);
    const rdevMinor = field(10);
    const name = buf.toString("utf8", off + 110, off + 110 + nameSize - 1);
    assert.equal(buf[off + 110 + nameSize - 1], 0, "name is NUL-terminated");
    const dataStart = align(off + 110 + nameSize);
    off = align(dataStart + size);
    if (name === "TRAILER!!!") break;
    out.push({
      name,
      mode,
      rdevMajor,
      rdevMinor,
      data: buf.subarray(dataStart, dataStart + size),
    });
  }
  assert.equal(off, buf.length, "nothing after the trailer");
  return out;
}

function fixture(): { dir: string; agent: string; kernel: GuestKernel } {
  const dir = mkdtempSync(join(tmpdir(), "wl-initramfs-"));
  const agent = join(dir, "agent");
  writeFileSync(agent, Buffer.from("\x7fELF fake agent with odd length"));
  mkdirSync(join(dir, "mods"));
  const moduleFiles = ["virtio_ring.ko", "virtio.ko", "virtio_mmio.ko"].map((n, i) => {
    const p = join(dir, "mods", n);
    writeFileSync(p, Buffer.alloc(1000 + i, i + 1));
    return p;
  });
  return {
    dir,
    agent,
    kernel: { version: "test", vmlinuzPath: join(dir, "vmlinuz"), moduleFiles },
  };
}

test("initramfs holds /init, the modules in load order, and /dev/console", async () => {
  const { dir, agent, kernel } = fixture();
  try {
    const path = await ensureInitramfs(join(dir, "cache"), agent, kernel);
    const entries = parseNewc(readFileSync(path));
    const byName = new Map(entries.map((e) => [e.name, e]));

    const init = byName.get("init");
    assert.ok(init);
    assert.equal(init.mode, 0o100755);
    assert.deepEqual(init.data, readFileSync(agent));

    const consoleDev = byName.get("dev/console");
    assert.ok(consoleDev);
    assert.equal(consoleDev.mode & 0o170000, 0o020000, "character device");
    assert.deepEqual([consoleDev.rdevMajor, consoleDev.rdevMinor], [5, 1]);

    const order = byName.get("lib/wheellock/modules.order")?.data.toString();
    assert.equal(order, "virtio_ring.ko\nvirtio.ko\nvirtio_mmio.ko\n");
    for (const f of kernel.moduleFiles) {
      const name = `lib/wheellock/modules/${f.slice(f.lastIndexOf("/") + 1)}`;
      assert.deepEqual(byName.get(name)?.data, readFileSync(f), name);
    }
    // Parents come before children, as the kernel's unpacker needs.
    const seen = new Set<string>();
    for (const e of entries) {
      const parent = e.name.includes("/") ? e.name.slice(0, e.name.lastIndexOf("/")) : undefined;
      if (parent) assert.ok(seen.has(parent), `${parent} before ${e.name}`);
      seen.add(e.name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("initramfs is cached by content: same inputs reuse the file, a new agent makes a new one", async () => {
  const { dir, agent, kernel } = fixture();
  try {
    const cache = join(dir, "cache");
    const first = await ensureInitramfs(cache, agent, kernel);
    const mtime = statSync(first).mtimeMs;
    const again = await ensureInitramfs(cache, agent, kernel);
    assert.equal(again, first);
    assert.equal(statSync(again).mtimeMs, mtime, "not rewritten");
    writeFileSync(agent, Buffer.from("a different agent"));
    const changed = await ensureInitramfs(cache, agent, kernel);
    assert.notEqual(changed, first);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("GNU cpio reads the archive (listing and contents)", (t) => {
  if (spawnSync("cpio", ["--version"]).status !== 0) {
    t.skip("cpio not installed");
    return;
  }
  const data = Buffer.from("hello from the archive\n");
  const archive = buildCpio([
    { type: "dir", name: "etc", mode: 0o755 },
    { type: "file", name: "etc/motd", mode: 0o644, data },
    { type: "chardev", name: "console", mode: 0o600, major: 5, minor: 1 },
  ]);
  const list = spawnSync("cpio", ["-it", "--quiet"], { input: archive });
  assert.equal(list.status, 0, list.stderr.toString());
  assert.deepEqual(list.stdout.toString().trim().split("\n"), ["etc", "etc/motd", "console"]);
  const cat = spawnSync("cpio", ["-i", "--to-stdout", "--quiet", "etc/motd"], { input: archive });
  assert.equal(cat.status, 0, cat.stderr.toString());
  assert.deepEqual(cat.stdout, data);
  const verbose = spawnSync("cpio", ["-itv", "--quiet"], { input: archive }).stdout.toString();
  assert.match(verbose, /^crw-------.*console$/m);
});

test("buildCpio rejects absolute names", () => {
  assert.throws(
    () => buildCpio([{ type: "dir", name: "/etc", mode: 0o755 }]),
    /bad cpio entry name/,
  );
});
