/**
 * The SDK file methods on mounted paths, served from the host provider: agent-like semantics,
 * streaming, hooks and events with origin "api", and a cache invalidation for every change.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { ErrInvalidConfig, ErrFile } from "../../src/errors.js";
import {
  HookedProvider,
  HostDirProvider,
  MemoryProvider,
  RouterProvider,
  type FileEventInfo,
  type FileHookRule,
} from "../../src/vfs/index.js";
import { MountFiles, NeedsAgent } from "../../src/sandbox/mount-files.js";
import { FuseMounts } from "../../src/sandbox/fuse-mounts.js";

async function setup(rules: FileHookRule[] = []) {
  const hostDir = mkdtempSync(join(tmpdir(), "wl-mfiles-"));
  const router = new RouterProvider({
    "/workspace": await HostDirProvider.open(hostDir),
    "/scratch": new MemoryProvider(),
  });
  const events: FileEventInfo[] = [];
  const invalidated: string[] = [];
  const files = new MountFiles(
    new HookedProvider(router, rules, (e) => events.push(e)),
    ["/workspace", "/scratch"],
    (p) => invalidated.push(p),
  );
  const cleanup = () => rmSync(hostDir, { recursive: true, force: true });
  return { hostDir, files, events, invalidated, cleanup };
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test("serves only paths inside a mount", async () => {
  const { files, cleanup } = await setup();
  try {
    assert.ok(files.serves("/workspace"));
    assert.ok(files.serves("/workspace/a/b"));
    assert.ok(!files.serves("/workspaces"));
    assert.ok(!files.serves("/etc/passwd"));
  } finally {
    cleanup();
  }
});

test("writeFile makes parents, sets the mode, truncates; readFile streams it back", async () => {
  const { hostDir, files, invalidated, events, cleanup } = await setup();
  try {
    await files.writeFile("/workspace/a/b/c.txt", Buffer.from("long first version"), {
      mode: 0o600,
    });
    await files.writeFile("/workspace/a/b/c.txt", Buffer.from("short"), {});
    assert.equal(readFileSync(join(hostDir, "a/b/c.txt"), "utf8"), "short");
    assert.equal(statSync(join(hostDir, "a/b/c.txt")).mode & 0o777, 0o644, "default mode");
    assert.deepEqual(invalidated, [
      "/workspace/a",
      "/workspace/a/b",
      "/workspace/a/b/c.txt",
      "/workspace/a/b/c.txt",
    ]);
    const read = await collect(
      files.readFileStream("/workspace/a/b/c.txt", () => assert.fail("no agent")),
    );
    assert.equal(read.toString(), "short");
    assert.ok(events.every((e) => e.origin === "api" && e.uid === undefined));
    assert.ok(events.some((e) => e.op === "write" && e.size === 5));
  } finally {
    cleanup();
  }
});

test("large files stream in pieces, both ways, without the whole file in one buffer", async () => {
  const { files, cleanup } = await setup();
  try {
    const piece = Buffer.alloc(300 * 1024, 7);
    async function* source() {
      for (let i = 0; i < 12; i++) yield piece; // 3.5 MiB
    }
    await files.writeFile("/scratch/big.bin", Readable.from(source()), {});
    let total = 0;
    let largest = 0;
    for await (const chunk of files.readFileStream("/scratch/big.bin", () => assert.fail())) {
      total += (chunk as Buffer).length;
      largest = Math.max(largest, (chunk as Buffer).length);
    }
    assert.equal(total, 12 * piece.length);
    assert.ok(largest <= 1024 * 1024, "pieces of at most max_write");
  } finally {
    cleanup();
  }
});

test("list, stat, mkdir -p, remove and rm -rf behave like the agent's", async () => {
  const { hostDir, files, cleanup } = await setup();
  try {
    await files.mkdir("/workspace/x/y", 0o700);
    await files.mkdir("/workspace/x/y", 0o700); // exists: fine
    assert.equal(statSync(join(hostDir, "x/y")).mode & 0o777, 0o700);
    writeFileSync(join(hostDir, "x/f"), "abc");
    symlinkSync("f", join(hostDir, "x/link"));
    const names = (await files.list("/workspace/x")).map((i) => [
      i.name,
      i.isDir,
      i.isSymlink,
      i.linkTarget,
    ]);
    assert.deepEqual(names.sort(), [
      ["f", false, false, undefined],
      ["link", false, true, "f"],
      ["y", true, false, undefined],
    ]);
    const info = await files.stat("/workspace/x/f", true);
    assert.equal(info.sizeBytes, 3);
    assert.equal(info.mode & 0o170000, 0o100000);
    await assert.rejects(
      files.stat("/workspace/x/link", true),
      NeedsAgent,
      "the agent follows links",
    );
    assert.equal((await files.stat("/workspace/x/link", false)).linkTarget, "f");
    await assert.rejects(
      files.remove("/workspace/x", false),
      (e: unknown) => e instanceof ErrFile && e.errno === "ENOTEMPTY",
    );
    await files.remove("/workspace/x", true);
    await files.remove("/workspace/x", true); // nothing left: fine
    await assert.rejects(
      files.remove("/workspace/x", false),
      (e: unknown) => e instanceof ErrFile && e.errno === "ENOENT",
    );
    await assert.rejects(
      files.remove("/workspace", true),
      (e: unknown) => e instanceof ErrFile && e.errno === "EBUSY",
    );
  } finally {
    cleanup();
  }
});

test("hooks apply to the API too: a blocked write is an ErrFile and leaves nothing", async () => {
  const { hostDir, files, events, cleanup } = await setup([
    { ops: ["create", "write"], path: "/workspace/secret/**", action: "block", errno: "EACCES" },
  ]);
  try {
    await assert.rejects(
      files.writeFile("/workspace/secret/k", Buffer.from("x"), {}),
      (e: unknown) =>
        e instanceof ErrFile && e.errno === "EACCES" && e.message.includes("/workspace/secret/k"),
    );
    assert.throws(() => statSync(join(hostDir, "secret/k")));
    assert.ok(events.some((e) => e.blocked && e.op === "create" && e.origin === "api"));
  } finally {
    cleanup();
  }
});

test("a symlink on the way is left to the agent (it may point out of the mount)", async () => {
  const { hostDir, files, cleanup } = await setup();
  try {
    symlinkSync("/etc/hostname", join(hostDir, "out"));
    await assert.rejects(files.writeFile("/workspace/out", Buffer.from("x"), {}), NeedsAgent);
    const viaAgent = await collect(
      files.readFileStream("/workspace/out", () => Readable.from([Buffer.from("agent")])),
    );
    assert.equal(viaAgent.toString(), "agent");
    // A symlinked directory in the middle of the path: the agent too.
    symlinkSync("/etc", join(hostDir, "etc-link"));
    const middle = await collect(
      files.readFileStream("/workspace/etc-link/hostname", () =>
        Readable.from([Buffer.from("agent again")]),
      ),
    );
    assert.equal(middle.toString(), "agent again");
    await assert.rejects(files.list("/workspace/etc-link"), NeedsAgent);
  } finally {
    cleanup();
  }
});

test("FuseMounts checks fileHooks before building anything", async () => {
  const runDir = mkdtempSync(join(tmpdir(), "wl-mrun-"));
  try {
    await assert.rejects(
      FuseMounts.open(
        runDir,
        { "/scratch": { type: "memory" } },
        () => undefined,
        {
          fileHooks: [{ ops: ["bogus" as "read"], action: "block" }],
        },
        1 << 30,
      ),
      ErrInvalidConfig,
    );
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
});
