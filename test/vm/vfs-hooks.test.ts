// File hooks, file events, cache invalidation and the files API on mounted paths, on one SDK
// sandbox; then `wheellock cp` through the mounts and the rootfs of one detached sandbox.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { ErrFile, Sandbox, type SandboxEvent } from "../../src/index.js";
import { isolateDataDir, scratchDir } from "../helpers/vm.js";
import { killAllSupervisors, startDetached, wheellock } from "../helpers/lifecycle.js";

const dataDir = isolateDataDir();
const base = scratchDir();
const work = join(base, "work");
mkdirSync(join(work, "protected"), { recursive: true });
mkdirSync(join(work, "redact"));
writeFileSync(join(work, "protected", "keep.txt"), "precious");

function sha(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The flip rule's decision, changed by a test between two guest reads. */
let flipDenied = false;

describe("hooks, events, invalidation and the files API on one sandbox", () => {
  let sb: Sandbox;
  const events: SandboxEvent[] = [];
  before(async () => {
    sb = await Sandbox.create({
      mounts: { "/workspace": { type: "host_fs", hostPath: work } },
      fileHooks: [
        {
          ops: ["unlink", "rmdir"],
          path: "/workspace/protected/**",
          action: "block",
          errno: "EACCES",
        },
        {
          action: "mutate-write",
          path: "/workspace/redact/**",
          mutate: (w) => w.data.toString().replaceAll("SECRET", "XXXXXX"),
        },
        { ops: ["create"], path: "/workspace/veto-*", before: async () => ({ block: "EROFS" }) },
        {
          ops: ["open", "read"],
          path: "/workspace/flip/**",
          before: () => (flipDenied ? { block: "EACCES" } : "allow"),
        },
      ],
    });
    const stream = sb.events();
    void (async () => {
      for await (const e of stream) events.push(e);
    })();
  });
  after(async () => sb?.close());

  const fileEvents = () => events.flatMap((e) => (e.type === "file" ? [e.file] : []));

  test("a block rule stops a guest rm with its errno; a before-hook vetoes a create", async () => {
    const r = await sb.exec(
      "rm /workspace/protected/keep.txt; echo rm=$?; touch /workspace/veto-1; echo touch=$?",
    );
    assert.match(r.stdout, /rm=1/);
    assert.match(r.stderr, /Permission denied/);
    assert.match(r.stdout, /touch=1/);
    assert.match(r.stderr, /Read-only file system/);
    assert.equal(readFileSync(join(work, "protected", "keep.txt"), "utf8"), "precious");
    assert.ok(!existsSync(join(work, "veto-1")));
  });

  test("mutate-write rewrites what the guest writes", async () => {
    const r = await sb.exec(
      "echo 'token SECRET here' > /workspace/redact/log && cat /workspace/redact/log",
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(readFileSync(join(work, "redact", "log"), "utf8"), "token XXXXXX here\n");
    assert.equal(r.stdout, "token XXXXXX here\n");
  });

  test("file events arrive through sandbox.events() with caller, size and outcome", async () => {
    await sb.exec("head -c 3000 /dev/zero > /workspace/ev.bin");
    await sleep(200);
    const file = fileEvents();
    const blocked = file.find((e) => e.op === "unlink" && e.blocked);
    assert.ok(blocked, "the blocked rm is an event");
    assert.equal(blocked.path, "/workspace/protected/keep.txt");
    assert.equal(blocked.errno, 13);
    assert.equal(blocked.origin, "guest");
    const write = file.find((e) => e.op === "write" && e.path === "/workspace/ev.bin");
    assert.ok(
      write,
      `a write event for ev.bin among ${JSON.stringify(file.map((e) => [e.op, e.path]))}`,
    );
    assert.equal(write.size, 3000);
    assert.equal(write.uid, 0);
    assert.equal(write.errno, 0);
    assert.ok(
      file.some((e) => e.op === "create" && e.path === "/workspace/ev.bin" && e.mode !== undefined),
    );
  });

  test("a hook that starts denying reads is asked again at once: no cache serves the file", async () => {
    mkdirSync(join(work, "flip"), { recursive: true });
    writeFileSync(join(work, "flip", "s.txt"), "secret");
    flipDenied = false;
    const first = await sb.exec("cat /workspace/flip/s.txt");
    assert.equal(first.stdout, "secret", first.stderr);
    flipDenied = true;
    // Within the cache timeouts of the first read: names, attributes and pages were cached.
    const second = await sb.exec("cat /workspace/flip/s.txt");
    assert.equal(second.stdout, "", "nothing of the file once the hook denies");
    assert.match(second.stderr, /Permission denied/);
  });

  test("a host edit, a host delete: the guest sees them at once, not after the cache timeout", async () => {
    writeFileSync(join(work, "h.txt"), "one");
    writeFileSync(join(work, "gone.txt"), "x");
    // The guest caches h.txt's size and gone.txt's name and attributes (1 s timeouts), then
    // polls; FUSE re-reads pages on every open, so sizes and names are what would go stale.
    const guest = sb.exec(
      [
        "cd /workspace && stat -c %s h.txt >/dev/null && [ -e gone.txt ]",
        "touch go; s=$(date +%s%N)",
        'until [ "$(stat -c %s h.txt)" = 7 ] && [ ! -e gone.txt ]; do sleep 0.01; done',
        "e=$(date +%s%N); echo $(( (e - s) / 1000000 )); cat h.txt",
      ].join("\n"),
    );
    while (!existsSync(join(work, "go"))) await sleep(2);
    writeFileSync(join(work, "h.txt"), "one two");
    rmSync(join(work, "gone.txt"));
    const r = await guest;
    assert.equal(r.exitCode, 0, r.stderr);
    const [ms, content] = r.stdout.trim().split("\n");
    assert.equal(content, "one two", "the whole new content, not the old size's worth");
    console.log(`# host change visible in the guest after ${ms} ms (attr/entry timeout 1000 ms)`);
    assert.ok(Number(ms) < 500, `seen after ${ms} ms: an invalidation, not the 1 s timeout`);
  });

  test("files API on a mounted path: served from the host, hooks apply, the guest sees it", async () => {
    const miss = await sb.exec("cat /workspace/api/x.txt");
    assert.notEqual(miss.exitCode, 0);
    await sb.writeFile("/workspace/api/x.txt", "from the api", { mode: 0o640 });
    assert.equal(readFileSync(join(work, "api", "x.txt"), "utf8"), "from the api");
    assert.equal(statSync(join(work, "api", "x.txt")).mode & 0o777, 0o640);
    const r = await sb.exec("cat /workspace/api/x.txt && stat -c %a /workspace/api/x.txt");
    assert.equal(r.stdout, "from the api640\n");
    assert.equal((await sb.readFile("/workspace/api/x.txt")).toString(), "from the api");
    assert.deepEqual(
      (await sb.listFiles("/workspace/api")).map((f) => f.name),
      ["x.txt"],
    );
    assert.equal((await sb.stat("/workspace/api/x.txt")).sizeBytes, 12);
    await assert.rejects(
      sb.writeFile("/workspace/veto-api", "no"),
      (e: unknown) => e instanceof ErrFile && e.errno === "EROFS",
    );
    await assert.rejects(
      sb.remove("/workspace/protected", { recursive: true }),
      (e: unknown) => e instanceof ErrFile && e.errno === "EACCES",
    );
    await sb.remove("/workspace/api", { recursive: true });
    assert.ok(!existsSync(join(work, "api")));
    assert.notEqual((await sb.exec("ls /workspace/api")).exitCode, 0);
    assert.ok(fileEvents().some((e) => e.origin === "api" && e.op === "create"));
  });

  test("large files stream through the mount; timing against the agent path", async () => {
    const size = 32 * 1024 * 1024;
    const piece = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < piece.length; i += 4) piece.writeUInt32LE((i * 2654435761) >>> 0, i);
    const source = () =>
      Readable.from(
        (function* () {
          for (let i = 0; i < size / piece.length; i++) yield piece;
        })(),
      );
    const expected = createHash("sha256");
    for (let i = 0; i < size / piece.length; i++) expected.update(piece);
    const digest = expected.digest("hex");
    let t = Date.now();
    await sb.writeFile("/workspace/big.bin", source());
    const mountedWriteMs = Date.now() - t;
    t = Date.now();
    const back = await sb.readFile("/workspace/big.bin");
    const mountedReadMs = Date.now() - t;
    assert.equal(sha(back), digest);
    t = Date.now();
    await sb.writeFile("/root/big.bin", source());
    const agentWriteMs = Date.now() - t;
    t = Date.now();
    assert.equal(sha(await sb.readFile("/root/big.bin")), digest);
    const agentReadMs = Date.now() - t;
    const g = await sb.exec("sha256sum /workspace/big.bin | cut -c1-64");
    assert.equal(g.stdout.trim(), digest);
    console.log(
      `# 32 MiB via mount: write ${mountedWriteMs} ms, read ${mountedReadMs} ms; ` +
        `via agent (/root): write ${agentWriteMs} ms, read ${agentReadMs} ms`,
    );
  });
});

describe("wheellock cp through mounts and the rootfs of a detached sandbox", () => {
  const data = join(base, "data");
  const tree = join(base, "tree");
  let id = "";
  before(async () => {
    mkdirSync(data);
    mkdirSync(join(tree, "sub"), { recursive: true });
    writeFileSync(join(tree, "a.txt"), "A");
    writeFileSync(join(tree, "sub", "b.sh"), "#!/bin/sh\necho B\n", { mode: 0o755 });
    id = await startDetached(["-v", `${data}:/workspace:host_fs`]);
  });
  after(async () => {
    await wheellock(["kill", "--all"]);
    killAllSupervisors(dataDir);
  });

  test("a file into a mounted path lands in the host dir; back out again", async () => {
    writeFileSync(join(base, "one.txt"), "one");
    const up = await wheellock(["cp", join(base, "one.txt"), `${id}:/workspace/one.txt`]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(readFileSync(join(data, "one.txt"), "utf8"), "one");
    const seen = await wheellock(["exec", id, "--", "cat", "/workspace/one.txt"]);
    assert.equal(seen.stdout, "one");
    const down = await wheellock(["cp", `${id}:/workspace/one.txt`, join(base, "one-back.txt")]);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(readFileSync(join(base, "one-back.txt"), "utf8"), "one");
  });

  test("directories both ways, on the mount and on the rootfs, modes kept", async () => {
    for (const target of ["/workspace/", "/root/"]) {
      const up = await wheellock(["cp", tree, `${id}:${target}`]);
      assert.equal(up.code, 0, up.stderr);
      const run = await wheellock(["exec", id, "--", "sh", `${target}tree/sub/b.sh`]);
      assert.equal(run.stdout, "B\n", `${target}: ${run.stderr}`);
      const back = join(base, `back-${target.replaceAll("/", "")}`);
      const down = await wheellock(["cp", `${id}:${target}tree`, back]);
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual(readdirSync(back).sort(), ["a.txt", "sub"]);
      assert.equal(readFileSync(join(back, "a.txt"), "utf8"), "A");
      assert.equal(statSync(join(back, "sub", "b.sh")).mode & 0o777, 0o755);
    }
    assert.equal(readFileSync(join(data, "tree", "sub", "b.sh"), "utf8"), "#!/bin/sh\necho B\n");
  });
});
