// Host directories mounted into the VM through the FUSE relay: guest writes reach the host
// (host_fs), read-only mounts refuse writes, overlay mounts never change the host, and a
// root shell in the guest cannot reach host files outside the mounted directory; the files
// API keeps working when guest symlinks lead it through a mount.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { MemoryProvider, Sandbox } from "../../src/index.js";
import { fuseRequestStats } from "../../src/vfs/index.js";
import { isolateDataDir, scratchDir } from "../helpers/vm.js";

isolateDataDir();
const base = scratchDir();
const work = join(base, "work");
const ro = join(base, "ro");
const ov = join(base, "ov");
const outside = join(base, "outside");
for (const d of [work, ro, ov, outside]) mkdirSync(d);
writeFileSync(join(outside, "secret"), "SECRET");
writeFileSync(join(ro, "keep"), "read me");
writeFileSync(join(ov, "base.txt"), "lower");

const custom = new MemoryProvider();
const appHome = join(base, "app-home");
mkdirSync(appHome);

describe("mounts", () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create({
      mounts: {
        "/workspace": { type: "host_fs", hostPath: work },
        "/workspace/ro": { type: "host_fs", hostPath: ro, readonly: true },
        "/mnt/ov": { type: "overlay", hostPath: ov },
        "/mnt/mem": { type: "provider", provider: custom },
        "/home/app": { type: "host_fs", hostPath: appHome, owner: { uid: 1000, gid: 1000 } },
      },
    });
  });
  after(async () => sb?.close());

  test("a guest write is on the host, and a host file is visible in the guest", async () => {
    writeFileSync(join(work, "from-host"), "hello guest");
    const r = await sb.exec(
      "echo hello host > /workspace/from-guest && cat /workspace/from-host && ls /workspace",
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /hello guest/);
    assert.equal(readFileSync(join(work, "from-guest"), "utf8"), "hello host\n");
  });

  test("POSIX basics in the mount: mkdir, rename, hard link, symlink, chmod, truncate, append", async () => {
    const r = await sb.exec(
      [
        "set -e; cd /workspace",
        "mkdir -p d/e && echo 1 > d/e/f && mv d dd && cat dd/e/f",
        "ln dd/e/f hard && ln -s dd/e/f soft && cat soft",
        "chmod 600 hard && stat -c %a dd/e/f",
        "echo more >> hard && truncate -s 2 hard && wc -c < dd/e/f",
        "dd if=/dev/urandom of=big bs=1M count=8 2>/dev/null && sha256sum big | cut -c1-64",
        // An open file outlives its name; a directory renames over an empty one.
        "echo kept > gone && exec 3< gone && rm gone && cat <&3 && exec 3<&-",
        "mkdir -p over/a empty && touch over/a/x && mv -T over empty && ls empty/a",
      ].join("\n"),
    );
    assert.equal(r.exitCode, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.deepEqual(lines.slice(0, 4), ["1", "1", "600", "2"]);
    const { createHash } = await import("node:crypto");
    const hostSha = createHash("sha256")
      .update(readFileSync(join(work, "big")))
      .digest("hex");
    assert.equal(lines[4], hostSha, "8 MiB written in the guest arrive intact");
    assert.deepEqual(lines.slice(5), ["kept", "x"]);
    assert.ok(!existsSync(join(work, "gone")) && !existsSync(join(work, "over")));
  });

  test("scripts run from the mount; times, statfs, find, symlinked dirs, moves across mounts", async () => {
    const r = await sb.exec(
      [
        "set -e; cd /workspace",
        "printf '#!/bin/sh\\necho ran\\n' > run.sh && chmod +x run.sh && ./run.sh",
        "touch -d '2001-02-03 04:05:06 UTC' old && date -u -r old +%Y",
        "df -P /workspace | tail -1 | awk '{print ($2 > 0)}'",
        "mkdir -p t/u && touch t/u/v && ln -s t/u linkdir && ls linkdir && find t | sort | tr '\\n' ' '; echo",
        "echo moved > /mnt/mem/cross && mv /mnt/mem/cross /workspace/cross && cat /workspace/cross",
      ].join("\n"),
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "ran",
      "2001",
      "1",
      "v",
      "t t/u t/u/v ",
      "moved",
    ]);
    assert.equal(readFileSync(join(work, "cross"), "utf8"), "moved\n");
  });

  test("a directory of 10,000 host files lists completely in the guest", async () => {
    const many = join(work, "many");
    mkdirSync(many);
    for (let i = 0; i < 10_000; i++) writeFileSync(join(many, `f${i}`), "");
    const r = await sb.exec("ls /workspace/many | wc -l; ls /workspace/many | sort | head -1");
    assert.equal(r.stdout, "10000\nf0\n", r.stderr);
  });

  test("a listing read again follows changes at once: the provider's (not watched), the guest's", async () => {
    // The kernel keeps a listing between opens only while the host's is the same
    // (src/vfs/dir-listings.ts). A memory provider changed by its owner sends no
    // invalidation, and the next `ls` comes well within the 1 s attribute timeout, so a
    // listing kept without that check would show the old names here.
    const owner = { uid: 0, gid: 0 };
    const flags = { read: false, write: true, append: false, truncate: false };
    await custom.mkdir("/listed", 0o755, owner);
    await (await custom.create("/listed/a", 0o644, flags, owner)).close();
    const ls = "ls /mnt/mem/listed | tr '\\n' ' '; echo";
    assert.equal((await sb.exec(`${ls}; ${ls}; ${ls}`)).stdout, "a \na \na \n");
    await (await custom.create("/listed/b", 0o644, flags, owner)).close();
    assert.equal((await sb.exec(ls)).stdout, "a b \n");
    await custom.unlink("/listed/a");
    assert.equal((await sb.exec(`${ls}; ${ls}`)).stdout, "b \nb \n");
    const r = await sb.exec(`touch /mnt/mem/listed/c && ${ls} && rm /mnt/mem/listed/b && ${ls}`);
    assert.equal(r.stdout, "b c \nc \n", r.stderr);
  });

  test("the relay answers LOOKUPs from the listings it holds, and host changes still show", async () => {
    // guest/fuse_dircache.c: new names in a directory the guest made, and a walk of one it
    // did not know (listed whole on the first miss), cross to the host no more.
    const lookups = (): number => fuseRequestStats.take().byOpcode.LOOKUP?.requests ?? 0;
    fuseRequestStats.enabled = true;
    try {
      fuseRequestStats.take();
      const made = await sb.exec(
        "mkdir /workspace/rl && cd /workspace/rl && for i in $(seq 40); do echo $i > f$i; done",
      );
      assert.equal(made.exitCode, 0, made.stderr);
      assert.ok(lookups() < 10, "40 new names, looked up in the relay");
      // A host-side create and delete in that directory reach the guest by the watcher.
      writeFileSync(join(work, "rl", "host-made"), "from host\n");
      rmSync(join(work, "rl", "f1"));
      const seen = await sb.exec(
        "for i in $(seq 50); do test -e /workspace/rl/host-made && ! test -e /workspace/rl/f1 && break; sleep 0.1; done; cat /workspace/rl/host-made; ls /workspace/rl/f1 2>&1 | grep -c 'No such'",
      );
      assert.equal(seen.stdout, "from host\n1\n", seen.stderr);
      // A cold walk of a host-made directory: one LOOKUP forwarded, the listing asked for.
      const walk = join(work, "walk");
      mkdirSync(walk);
      for (let i = 0; i < 100; i++) writeFileSync(join(walk, `w${i}`), "x".repeat(i));
      fuseRequestStats.take();
      const sizes = await sb.exec(
        "sync; echo 3 > /proc/sys/vm/drop_caches; cd /workspace/walk && test -e w0 && sleep 0.3 && for i in $(seq 0 99); do stat -c %s w$i; done | awk '{ s += $1 } END { print s }'; test -e nothing || echo absent",
      );
      assert.equal(sizes.stdout, `${(99 * 100) / 2}\nabsent\n`, sizes.stderr);
      assert.ok(lookups() < 30, "100 names of a walked directory, looked up in the relay");
      // A directory too large to list (10,000 names, the test above) is asked for once, not
      // at every LOOKUP in it.
      const big = await sb.exec(
        "sync; echo 3 > /proc/sys/vm/drop_caches; cd /workspace/many && for i in $(seq 30); do stat -c %s f$i; done | wc -l",
      );
      assert.equal(big.stdout, "30\n", big.stderr);
      const asked = fuseRequestStats.take().byOpcode.LIST_DIR?.requests ?? 0;
      // Counted for the whole command: the big directory once (then refused for 10 s, not
      // asked at each of the 30 lookups), and the mount's root and /workspace, whose
      // listings drop_caches may have let expire.
      assert.ok(asked <= 4, `LIST_DIR ${asked} times for 30 lookups in one directory`);
      // Host edits in the walked directory show as before.
      writeFileSync(join(walk, "w5"), "changed!!");
      writeFileSync(join(walk, "late"), "late\n");
      const edits = await sb.exec(
        "for i in $(seq 50); do test -e /workspace/walk/late && test $(stat -c %s /workspace/walk/w5) = 9 && break; sleep 0.1; done; cat /workspace/walk/late; stat -c %s /workspace/walk/w5",
      );
      assert.equal(edits.stdout, "late\n9\n", edits.stderr);
    } finally {
      fuseRequestStats.enabled = false;
    }
  });

  test("isatty() of a file in a mount is answered in the guest: not a terminal, no host trip", async () => {
    // guest/fuse.c answer_ioctl_here: the host serves no ioctls, and the kernel asks again at
    // every one (Python's open() does one per file).
    writeFileSync(join(work, "plain"), "x\n");
    fuseRequestStats.enabled = true;
    try {
      fuseRequestStats.take();
      const r = await sb.exec(
        "n=0; for i in $(seq 20); do test -t 0 < /workspace/plain || n=$((n+1)); done; echo $n",
      );
      assert.equal(r.stdout, "20\n", r.stderr);
      const ioctls = fuseRequestStats.take().byOpcode.IOCTL?.requests ?? 0;
      assert.equal(ioctls, 0, `${ioctls} IOCTL requests reached the host`);
    } finally {
      fuseRequestStats.enabled = false;
    }
  });

  test("an unwatched provider's new file shows within the 1 s timeout in a directory the relay holds", async () => {
    const owner = { uid: 0, gid: 0 };
    const flags = { read: false, write: true, append: false, truncate: false };
    const r = await sb.exec("mkdir /mnt/mem/rl && test ! -e /mnt/mem/rl/x && echo absent");
    assert.equal(r.stdout, "absent\n", r.stderr);
    await (await custom.create("/rl/x", 0o644, flags, owner)).close();
    const started = Date.now();
    const seen = await sb.exec(
      "for i in $(seq 40); do test -e /mnt/mem/rl/x && echo seen && break; sleep 0.1; done",
    );
    assert.equal(seen.stdout, "seen\n", seen.stderr);
    assert.ok(Date.now() - started < 3000);
  });

  test("concurrent writers to separate regions of one file all land", async () => {
    const r = await sb.exec(
      [
        "cd /workspace && : > shared",
        "for i in 0 1 2 3 4 5 6 7; do dd if=/dev/zero bs=64k count=16 2>/dev/null | tr '\\0' \"$i\" | dd of=shared bs=64k seek=$((i*16)) conv=notrunc 2>/dev/null & done; wait",
        "wc -c < shared",
      ].join("\n"),
    );
    assert.equal(r.exitCode, 0, r.stderr);
    const data = readFileSync(join(work, "shared"));
    assert.equal(data.length, 8 * 1024 * 1024);
    for (let i = 0; i < 8; i++) {
      const region = data.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024);
      assert.ok(
        region.every((b) => b === 48 + i),
        `region ${i} holds writer ${i}'s bytes`,
      );
    }
  });

  test("sequential reads use 1 MiB requests, 4 MiB readahead, and match the host", async () => {
    // Written on the host: no page of it is cached in the guest (commands cannot drop caches:
    // /proc/sys is read-only to them), so the read goes through the relay.
    const { createHash, randomBytes } = await import("node:crypto");
    const fresh = randomBytes(8 * 1024 * 1024);
    writeFileSync(join(work, "fresh"), fresh);
    const r = await sb.exec(
      "cat /sys/class/bdi/$(mountpoint -d /run/wheellock/vfs)/read_ahead_kb; sha256sum /workspace/fresh | cut -c1-64",
    );
    const hostSha = createHash("sha256").update(fresh).digest("hex");
    assert.equal(r.stdout, `4096\n${hostSha}\n`, r.stderr);
  });

  test("under TCG the guest kernel copies without fast REP MOVSB (no erms, no fsrm)", async (t) => {
    // `rep movsb` runs one byte per TCG loop iteration: every read through a mount, the
    // port and the page cache copies with it when the guest CPU claims ERMS.
    const r = await sb.exec("cat /proc/cmdline; grep -m1 '^flags' /proc/cpuinfo");
    // The kernel is told the TSC rate only under TCG (kernelCommandLine).
    if (!r.stdout.includes("tsc_early_khz=")) return t.skip("KVM passes the host's CPU");
    assert.match(r.stdout, /\brep_good\b/, "the flags line was read");
    assert.doesNotMatch(r.stdout, /\b(erms|fsrm)\b/);
  });

  test("a file whose pages the guest holds shows a host-side edit of its middle", async () => {
    const { createHash, randomBytes } = await import("node:crypto");
    const { openSync, writeSync, closeSync } = await import("node:fs");
    const data = randomBytes(8 * 1024 * 1024);
    const path = join(work, "cached");
    writeFileSync(path, data);
    const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
    // Read whole, twice: the second read is served from the guest's page cache.
    const first = await sb.exec(
      "sha256sum /workspace/cached | cut -c1-64; sha256sum /workspace/cached | cut -c1-64",
    );
    assert.equal(first.stdout, `${sha(data)}\n${sha(data)}\n`, first.stderr);
    // In place, same size: only the mtime (and the watcher's invalidation) says it changed.
    const patch = randomBytes(1024 * 1024);
    const fd = openSync(path, "r+");
    writeSync(fd, patch, 0, patch.length, 3 * 1024 * 1024 + 123);
    closeSync(fd);
    patch.copy(data, 3 * 1024 * 1024 + 123);
    const r = await sb.exec(
      [
        `s=$(date +%s%N); i=0`,
        `until [ "$(sha256sum /workspace/cached | cut -c1-64)" = ${sha(data)} ]; do`,
        "  i=$((i+1)); [ $i -lt 3000 ] || { echo timeout; exit 1; }; sleep 0.01",
        "done",
        "e=$(date +%s%N); echo $(( (e - s) / 1000000 ))",
      ].join("\n"),
    );
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.ok(Number(r.stdout.trim()) < 30_000, `seen after ${r.stdout.trim()} ms`);
  });

  test("a read-only mount refuses writes and keeps the host file", async () => {
    const r = await sb.exec(
      "cat /workspace/ro/keep; echo; echo x > /workspace/ro/keep; echo rc=$?; touch /workspace/ro/new; echo rc=$?",
    );
    assert.match(r.stdout, /read me/);
    assert.doesNotMatch(r.stdout, /rc=0/);
    assert.match(r.stderr, /Read-only file system/);
    assert.equal(readFileSync(join(ro, "keep"), "utf8"), "read me");
    assert.ok(!existsSync(join(ro, "new")));
  });

  test("an overlay mount takes writes in the guest and never changes the host", async () => {
    const r = await sb.exec(
      "echo changed > /mnt/ov/base.txt && echo new > /mnt/ov/new.txt && rm /mnt/ov/base.txt && ls /mnt/ov",
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.trim(), "new.txt");
    assert.equal(readFileSync(join(ov, "base.txt"), "utf8"), "lower");
    assert.deepEqual(readdirSync(ov), ["base.txt"]);
  });

  test("writes to a mount of an SDK-provided provider reach that provider", async () => {
    const r = await sb.exec("echo hello > /mnt/mem/note && cat /mnt/mem/note");
    assert.equal(r.stdout, "hello\n", r.stderr);
  });

  test("a non-root guest user writes where the mount's owner is that user, not elsewhere", async () => {
    const mine = await sb.exec("touch /home/app/by-app && stat -c %u:%g /home/app/by-app", {
      user: "1000:1000",
    });
    assert.equal(mine.exitCode, 0, mine.stderr);
    assert.equal(mine.stdout, "1000:1000\n");
    assert.ok(existsSync(join(appHome, "by-app")));
    const other = await sb.exec("touch /workspace/by-app", { user: "1000:1000" });
    assert.notEqual(other.exitCode, 0);
    assert.match(other.stderr, /Permission denied/);
  });

  test("escape attempts from a root shell stay inside the mount", async () => {
    const r = await sb.exec(
      [
        "cd /workspace",
        `ln -s ${outside}/secret abs; cat abs 2>&1`,
        "ln -s ../outside/secret rel; cat rel 2>&1",
        `ln ${outside}/secret hard 2>&1`,
        "cat ../outside/secret 2>&1",
        "echo pwned > abs 2>&1; echo pwned > rel 2>&1",
        "mkfifo p 2>&1; mknod dev c 1 3 2>&1",
        "true",
      ].join("\n"),
    );
    assert.doesNotMatch(r.stdout, /SECRET/);
    assert.equal(readFileSync(join(outside, "secret"), "utf8"), "SECRET");
    assert.deepEqual(readdirSync(outside), ["secret"]);
    // The guest's symlinks exist on the host as links, pointing where the guest said.
    assert.ok(!existsSync(join(work, "dev")));
  });

  test("the files API follows guest symlinks into and out of a mount without wedging the agent", async () => {
    // A symlink sends the files API to the agent, whose open() then walks into the FUSE
    // mount: the relay must keep running while the agent's main loop is blocked in it.
    const r = await sb.exec(
      "echo inside > /workspace/real && ln -s real /workspace/inlink && " +
        "echo rootfs > /tmp/plain && ln -s /tmp/plain /workspace/outlink && " +
        "ln -s /workspace/real /tmp/rootlink",
    );
    assert.equal(r.exitCode, 0, r.stderr);
    const within = <T>(work: Promise<T>): Promise<T> => {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("files API call hung (agent wedged)")), 60_000);
      });
      return Promise.race([work, limit]).finally(() => clearTimeout(timer));
    };
    assert.equal((await within(sb.readFile("/workspace/inlink"))).toString(), "inside\n");
    assert.equal((await within(sb.readFile("/workspace/outlink"))).toString(), "rootfs\n");
    assert.equal((await within(sb.readFile("/tmp/rootlink"))).toString(), "inside\n");
    assert.equal((await within(sb.stat("/workspace/inlink"))).sizeBytes, 7);
    assert.equal((await within(sb.exec("echo alive"))).stdout, "alive\n");
  });
});

test("a provider of the SDK user's own serves a mount", async () => {
  // Runs after the suite: the sandbox above wrote through the custom provider.
  const st = await custom.stat("/note");
  assert.equal(st.sizeBytes, 6);
});

test("CLI: -v mounts a host directory; a bad spec is one clear error line", () => {
  const cli = ["--import", "tsx", join(import.meta.dirname, "../../src/cli/main.ts")];
  writeFileSync(join(work, "cli.txt"), "via cli");
  const ok = spawnSync(
    process.execPath,
    [
      ...cli,
      "run",
      "-v",
      `${work}:/workspace:host_fs`,
      "--",
      "sh",
      "-c",
      "cat /workspace/cli.txt && touch /workspace/cli-made",
    ],
    { encoding: "utf8" },
  );
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout, "via cli");
  assert.ok(existsSync(join(work, "cli-made")));
  const bad = spawnSync(process.execPath, [...cli, "run", "-v", `${work}:/etc`, "--", "true"], {
    encoding: "utf8",
  });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /invalid volume mount .*guest path must be within workspace/);
  assert.equal(bad.stderr.trim().split("\n").length, 1);
});
