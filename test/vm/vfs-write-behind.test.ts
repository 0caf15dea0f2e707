// Write-behind in the guest's FUSE relay (guest/fuse_wb.c): WRITE, predictable SETATTRs and
// RELEASE are answered in the guest and reach the host later, in order; a directory's GETATTR
// after a guest change is answered from the attributes the host pushed. What a program and the
// host see must not change: the host has the data, modes and times once the program closed
// the file, host edits still show in the guest, a chmod followed by a rename lands on the new
// name, and an error of a write answered early shows at close (like NFS). One VM.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "../../src/index.js";
import { isolateDataDir, scratchDir } from "../helpers/vm.js";

isolateDataDir();
const base = scratchDir();
const work = join(base, "work");
mkdirSync(work);
const MIB = 1024 * 1024;

describe("write-behind in the FUSE relay", () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create({
      timeoutSeconds: 0,
      mounts: {
        "/workspace": { type: "host_fs", hostPath: work },
        "/mnt/mem": { type: "memory", quota: { sizeBytes: 8 * MIB } },
      },
    });
  });
  after(async () => sb?.close());

  test("after close the host has the data, mode and times; a chmod then a rename land on the new name", async () => {
    const r = await sb.exec(
      [
        "cd /workspace",
        // Small writes (each one written behind), then fchmod/futimens-like calls while open.
        "i=0; while [ $i -lt 50 ]; do printf 'line %04d\\n' $i; i=$((i+1)); done > f",
        "chmod 600 f && touch -m -d '2001-02-03 04:05:06' f",
        "echo x > g && chmod 640 g && mv g h",
        "stat -c '%a %s %Y' f h",
      ].join(" && "),
    );
    assert.equal(r.exitCode, 0, r.stderr);
    const f = statSync(join(work, "f"));
    assert.equal(readFileSync(join(work, "f"), "utf8").split("\n").length, 51);
    assert.equal(f.mode & 0o7777, 0o600);
    assert.equal(Math.floor(f.mtimeMs / 1000), Date.UTC(2001, 1, 3, 4, 5, 6) / 1000);
    assert.equal(statSync(join(work, "h")).mode & 0o7777, 0o640);
    assert.deepEqual(r.stdout.trim().split("\n"), [
      `600 ${f.size} ${Math.floor(f.mtimeMs / 1000)}`,
      "640 2 " + Math.floor(statSync(join(work, "h")).mtimeMs / 1000),
    ]);
  });

  test("a host edit after the guest's writes is still visible in the guest", async () => {
    const w = await sb.exec("printf guest > /workspace/edit && cat /workspace/edit");
    assert.equal(w.stdout, "guest");
    appendFileSync(join(work, "edit"), "+host");
    let seen = "";
    for (let i = 0; i < 30 && seen !== "guest+host"; i++) {
      seen = (await sb.exec("cat /workspace/edit")).stdout;
      if (seen !== "guest+host") await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(seen, "guest+host");
  });

  test("a directory's attributes after guest changes are fresh (pushed by the host, answered in the guest)", async () => {
    const r = await sb.exec(
      [
        "mkdir /workspace/d",
        "stat -c %h /workspace/d",
        "mkdir /workspace/d/a /workspace/d/b",
        "stat -c %h /workspace/d",
        "rmdir /workspace/d/a",
        "stat -c %h /workspace/d",
        "mv /workspace/d/b /workspace/b2",
        "stat -c %h /workspace/d",
      ].join(" && "),
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["2", "4", "3", "2"]);
    assert.equal(statSync(join(work, "d")).nlink, 2);
  });

  test("failure: a write past a quota fails on write() itself: the relay writes nothing behind on a quota mount", async () => {
    const r = await sb.exec(
      [
        "dd if=/dev/zero of=/mnt/mem/f bs=1M count=8 2>/dev/null; echo filled=$(stat -c %s /mnt/mem/f)",
        // One small write: the host told the relay at open that this file's writes may fail
        // for lack of space (RELAY_SYNC_WRITES), so it waits for the host's answer.
        "dd if=/dev/zero of=/mnt/mem/f bs=100 count=1 oflag=append conv=notrunc; echo status=$?",
        "echo size=$(stat -c %s /mnt/mem/f)",
        // A shell's redirection ignores close()'s result: its echo must fail at the write.
        "echo hello > /mnt/mem/small; echo echo=$?; stat -c %s /mnt/mem/small",
      ].join("; "),
    );
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines[0], `filled=${8 * MIB}`);
    assert.notEqual(lines[1], "status=0", `dd must fail: ${r.stderr}`);
    // GNU dd (the Debian image's) names the call that failed: the write, not the close.
    assert.match(r.stderr, /error writing .*No space left on device/);
    assert.equal(lines[2], `size=${8 * MIB}`);
    assert.equal(lines[3], "echo=1", `echo into a full mount: ${r.stderr}`);
    assert.equal(lines[4], "0");
  });
});
