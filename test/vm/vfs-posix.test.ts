// POSIX behaviour of a host directory mounted in the VM (host_fs), compared with the host
// itself: the same case script runs in a plain host directory and in the mount, and its output
// and the resulting trees must match. Then the things a shell script cannot show: mmap, 256 MB
// files end to end, concurrent O_APPEND writers, git working in the mount, and host changes seen
// at once through the long cache of a watched directory. One VM.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  rmSync,
  readFileSync,
  readdirSync,
  lstatSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { Sandbox } from "../../src/index.js";
import { isolateDataDir, scratchDir } from "../helpers/vm.js";

isolateDataDir();
const base = scratchDir();
const work = join(base, "work");
const tools = join(base, "tools");
const hostCase = join(base, "host-case");
for (const d of [work, tools, hostCase]) mkdirSync(d);
const fixtures = join(import.meta.dirname, "../fixtures");
copyFileSync(join(fixtures, "posix-cases.sh"), join(tools, "posix-cases.sh"));
const cc = spawnSync(
  "musl-gcc",
  ["-static", "-O2", "-o", join(tools, "mmap-check"), join(fixtures, "mmap-check.c")],
  { encoding: "utf8" },
);
assert.equal(cc.status, 0, `musl-gcc (needed for the guest agent too): ${cc.stderr}`);

/**
 * git is not in the default image; the host's (Debian bookworm, like the image) needs only
 * libc, libz and libpcre2, which the image has. Its builtins cover init/add/commit/checkout.
 */
const hostGit = spawnSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).stdout.trim();
if (hostGit !== "") copyFileSync(hostGit, join(tools, "git"));

/** Name, type, size (files) and mode of everything under `dir`, sorted: no times, no inodes. */
function treeShape(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const st = lstatSync(path);
    const type = st.isDirectory() ? "d" : st.isSymbolicLink() ? "l" : st.isFIFO() ? "p" : "f";
    out.push(
      `${prefix}${name} ${type} ${type === "f" ? st.size : "-"} ${(st.mode & 0o7777).toString(8)} ${st.nlink}`,
    );
    if (type === "d") out.push(...treeShape(path, `${prefix}${name}/`));
  }
  return out;
}

function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

describe("POSIX in a host_fs mount, compared with the host", () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create({
      memoryMb: 512,
      timeoutSeconds: 0,
      mounts: {
        "/workspace": { type: "host_fs", hostPath: work },
        "/opt/tools": { type: "host_fs", hostPath: tools, readonly: true },
      },
    });
  });
  after(async () => sb?.close());

  test("the case script gives the same output, and leaves the same tree, as on the host", async () => {
    const host = spawnSync("sh", [join(tools, "posix-cases.sh"), hostCase], { encoding: "utf8" });
    assert.equal(host.status, 0, host.stderr);
    const guest = await sb.exec(
      "mkdir /workspace/case && sh /opt/tools/posix-cases.sh /workspace/case",
    );
    assert.equal(guest.exitCode, 0, guest.stderr);
    const hostLines = host.stdout.split("\n");
    assert.ok(hostLines.length > 30, "the case script ran on the host");
    // The one deliberate difference: host_fs never creates a FIFO on the host (a FIFO there
    // could stall host programs that open it).
    const expected = hostLines.map((l) =>
      l === "mkfifo: " ? "mkfifo: Operation not permitted" : l,
    );
    assert.ok(expected.includes("mkfifo: Operation not permitted"));
    assert.deepEqual(guest.stdout.split("\n"), expected);
    assert.deepEqual(treeShape(join(work, "case")), treeShape(hostCase));
  });

  test("mmap: pages written through a shared mapping reach the host; host bytes map in", async () => {
    const size = 8 * 1024 * 1024 + 123;
    const w = await sb.exec(`/opt/tools/mmap-check write /workspace/mapped ${size}`);
    assert.equal(w.exitCode, 0, w.stderr);
    const got = readFileSync(join(work, "mapped"));
    assert.equal(got.length, size);
    let bad = -1;
    for (let i = 0; i < size; i++) {
      if (got[i] !== (i * 7 + Math.floor(i / 4096)) % 251) {
        bad = i;
        break;
      }
    }
    assert.equal(bad, -1, `byte ${bad} written through mmap differs on the host`);
    const data = randomBytes(1024 * 1024 + 7);
    writeFileSync(join(work, "from-host.bin"), data);
    let sum = 0n;
    for (const b of data) sum = BigInt.asUintN(64, sum * 31n + BigInt(b));
    const r = await sb.exec("/opt/tools/mmap-check read /workspace/from-host.bin");
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.trim(), sum.toString());
  });

  test("a 256 MB file written in the guest and one written on the host match byte for byte", async () => {
    const w = await sb.exec(
      "dd if=/dev/urandom of=/workspace/big-guest bs=1M count=256 2>/dev/null && sha256sum /workspace/big-guest",
    );
    assert.equal(w.exitCode, 0, w.stderr);
    assert.equal(w.stdout.slice(0, 64), sha256File(join(work, "big-guest")));
    const out = createWriteStream(join(work, "big-host"));
    for (let i = 0; i < 64; i++) {
      if (!out.write(randomBytes(4 * 1024 * 1024))) await once(out, "drain");
    }
    out.end();
    await once(out, "close");
    const r = await sb.exec("sha256sum /workspace/big-host && stat -c %s /workspace/big-host");
    assert.equal(r.exitCode, 0, r.stderr);
    const [sha, size] = r.stdout.trim().split("\n");
    assert.equal(sha?.slice(0, 64), sha256File(join(work, "big-host")));
    assert.equal(size, String(256 * 1024 * 1024));
    await sb.exec("rm /workspace/big-guest /workspace/big-host");
  });

  test("concurrent O_APPEND writers lose no line and tear none", async () => {
    const r = await sb.exec(
      [
        "cd /workspace",
        'for w in 1 2 3 4; do (i=0; while [ $i -lt 300 ]; do echo "writer-$w line-$i ................................" >> shared.log; i=$((i+1)); done) & done',
        "wait",
      ].join("\n"),
    );
    assert.equal(r.exitCode, 0, r.stderr);
    const lines = readFileSync(join(work, "shared.log"), "utf8").trimEnd().split("\n");
    assert.equal(lines.length, 1200);
    assert.ok(
      lines.every((l) => /^writer-[1-4] line-\d+ \.{32}$/.test(l)),
      "a line was torn",
    );
    for (let w = 1; w <= 4; w++) {
      const mine = lines
        .filter((l) => l.startsWith(`writer-${w} `))
        .map((l) => Number(l.split(/[ -]/)[3]));
      assert.deepEqual(mine, [...Array(300).keys()], `writer ${w}'s lines out of order`);
    }
  });

  test("git init, add, commit, checkout and status work in the mount and the host sees a valid repo", async (t) => {
    if (hostGit === "") {
      t.skip("no git on the host to lend the guest (the default image has none)");
      return;
    }
    // The host's git needs libraries of the same ABI in the image (true for a Debian bookworm
    // host and the default image); elsewhere say so instead of failing on the loader.
    const probe = await sb.exec("/opt/tools/git --version");
    if (probe.exitCode !== 0) {
      t.skip(`the host's git does not run in the default image: ${probe.stderr.trim()}`);
      return;
    }
    const git =
      "/opt/tools/git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main";
    const r = await sb.exec(
      [
        "set -e; mkdir /workspace/repo && cd /workspace/repo",
        `${git} init -q`,
        "echo one > a.txt && mkdir -p src && echo 'int main(){}' > src/m.c && ln -s a.txt link",
        `${git} add -A && ${git} commit -qm first`,
        `${git} checkout -qb feature && echo two >> a.txt && rm src/m.c && ${git} commit -qam second`,
        `${git} checkout -q main && cat a.txt && ls src`,
        `${git} status --porcelain && echo clean`,
        "echo dirty >> a.txt",
        `${git} status --porcelain`,
        `${git} log --format=%s feature`,
      ].join("\n"),
      { env: { GIT_TEMPLATE_DIR: "/nonexistent" } },
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "one",
      "m.c",
      "clean",
      " M a.txt",
      "second",
      "first",
    ]);
    const fsck = spawnSync("git", ["-C", join(work, "repo"), "fsck", "--strict"], {
      encoding: "utf8",
    });
    assert.equal(fsck.status, 0, fsck.stderr);
    const log = spawnSync("git", ["-C", join(work, "repo"), "log", "--format=%s", "feature"], {
      encoding: "utf8",
    });
    assert.equal(log.stdout, "second\nfirst\n");
  });

  test("names and attributes cached for 60 s (no hooks, watched dir): host changes still show at once, right after the guest's own", async () => {
    mkdirSync(join(work, "cache"));
    // The guest creates and stats files itself (the watcher reports those changes back: the
    // echo must not hide what the host does next), then the host edits, chmods, creates and
    // deletes behind its back. A missed invalidation would show only after the 60 s timeout.
    const guest = sb.exec(
      [
        "cd /workspace/cache && echo guest > f && echo x > d.txt && chmod 644 f",
        "stat -c %s%a f >/dev/null && [ -e d.txt ] && [ ! -e n.txt ] && touch go",
        "s=$(date +%s%N); i=0",
        'until [ "$(stat -c %s-%a f)" = 10-600 ] && [ -e n.txt ] && [ ! -e d.txt ]; do',
        "  i=$((i+1)); [ $i -lt 3000 ] || { echo timeout; exit 1; }; sleep 0.01",
        "done",
        "e=$(date +%s%N); echo $(( (e - s) / 1000000 )); cat f",
      ].join("\n"),
    );
    const go = join(work, "cache", "go");
    while (!existsSync(go)) await sleep(2);
    writeFileSync(join(work, "cache", "f"), "host edit\n");
    chmodSync(join(work, "cache", "f"), 0o600);
    writeFileSync(join(work, "cache", "n.txt"), "new");
    rmSync(join(work, "cache", "d.txt"));
    const r = await guest;
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    const [ms, content] = r.stdout.trim().split("\n");
    assert.equal(content, "host edit");
    console.log(`# host changes visible after ${ms} ms (cache timeout 60 s)`);
    assert.ok(Number(ms) < 30_000, `seen after ${ms} ms: that is a timeout, not an invalidation`);
  });
});
