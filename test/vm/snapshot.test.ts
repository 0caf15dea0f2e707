// Start from memory snapshots: restored sandboxes are correct, independent, and never stale.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, rmSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Sandbox } from "../../src/index.js";
import { cacheDir } from "../../src/paths.js";
import { childQemuPids, isolateDataDir, runDirEntries } from "../helpers/vm.js";

const dataDir = isolateDataDir();
// A memory size no other test uses, so this file owns its snapshot key.
const memoryMb = 320;

async function started(options: Parameters<typeof Sandbox.create>[0] = {}) {
  const t = Date.now();
  const sb = await Sandbox.create({ memoryMb, snapshot: true, ...options });
  return { sb, ms: Date.now() - t };
}

test("restored sandboxes are independent and correct", async () => {
  // Make sure a snapshot exists (the first start saves one if it had to boot).
  const first = await started();
  await first.sb.close();

  // Host-side network policy is not part of the snapshot: b may reach the test's server.
  const server = createServer((_req, res) => res.end("hello after restore"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const a = await started({ hostname: "restored-a" });
  const b = await started({ hostname: "restored-b", allowPrivateHosts: true });
  try {
    assert.equal(a.sb.restoredFromSnapshot, true);
    assert.equal(b.sb.restoredFromSnapshot, true);
    const probe =
      "hostname; head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; date +%s%3N";
    const probedFrom = Date.now();
    const [ra, rb] = await Promise.all([a.sb.exec(probe), b.sb.exec(probe)]);
    const probedTo = Date.now();
    const [hostA, randA, clockA] = ra.stdout.trim().split("\n");
    const [hostB, randB, clockB] = rb.stdout.trim().split("\n");
    assert.equal(hostA, "restored-a");
    assert.equal(hostB, "restored-b");
    // The hostname files (tmpfs bind mounts, guest/config.c) name each sandbox alone and keep
    // the image's localhost line.
    const files =
      "cat /etc/hostname; awk '$1 == \"127.0.1.1\" { print $2 }' /etc/hosts; grep -c '^127.0.0.1' /etc/hosts";
    assert.equal((await a.sb.exec(files)).stdout, "restored-a\nrestored-a\n1\n");
    assert.equal((await b.sb.exec(files)).stdout, "restored-b\nrestored-b\n1\n");
    const edit = await a.sb.exec("echo '10.9.9.9 extra' >> /etc/hosts && grep -c extra /etc/hosts");
    assert.equal(edit.stdout, "1\n", edit.stderr);
    assert.equal((await b.sb.exec("grep -c extra /etc/hosts")).stdout, "0\n");
    assert.match(randA ?? "", /^[0-9a-f]{32}$/);
    assert.notEqual(randA, randB, "restored VMs must not share RNG state");
    for (const clock of [clockA, clockB]) {
      // Read between the host's two readings (an exec under a loaded TCG host takes seconds).
      assert.ok(
        Number(clock) >= probedFrom - 1000 && Number(clock) <= probedTo + 1000,
        `guest clock ${clock} outside ${probedFrom}..${probedTo}`,
      );
    }
    // No state shared: a file written in one is absent in the other.
    await a.sb.writeFile("/root/only-in-a", "a");
    await assert.rejects(b.sb.readFile("/root/only-in-a"));
    assert.equal((await a.sb.readFile("/root/only-in-a")).toString(), "a");
    // Exec features after restore: stdin, users, PTY.
    assert.equal((await b.sb.exec("cat", { stdin: "round trip" })).stdout, "round trip");
    assert.equal((await b.sb.exec("id -u", { user: "1000" })).stdout, "1000\n");
    const tty = b.sb.spawn("stty size", { tty: { rows: 20, cols: 70 } });
    let out = "";
    tty.stdout.on("data", (c: Buffer) => (out += c.toString()));
    await tty.wait();
    assert.match(out, /20 70/);
    // The network works after restore (a new host stack behind the same guest NIC).
    const curl = await b.sb.exec(`curl -sS -m 30 http://10.0.2.2:${port}/`);
    assert.equal(curl.stdout, "hello after restore", curl.stderr);
    // ...and a's policy (private hosts not allowed) still applies to a.
    assert.notEqual((await a.sb.exec(`curl -sS -m 10 http://10.0.2.2:${port}/`)).exitCode, 0);
  } finally {
    await a.sb.close();
    await b.sb.close();
    server.close();
  }
  assert.deepEqual(childQemuPids(), []);
  assert.deepEqual(runDirEntries(dataDir), []);
});

test("a snapshot is only used for the exact same boot", async () => {
  rmSync(join(cacheDir(), "snapshots"), { recursive: true, force: true });
  const seeded = await started();
  assert.equal(seeded.sb.restoredFromSnapshot, false, "no snapshot existed");
  await seeded.sb.close();
  // Other resources: another key, so a cold boot (which then saves its own snapshot).
  const resized = await started({ memoryMb: memoryMb + 32 });
  assert.equal(resized.sb.restoredFromSnapshot, false);
  await resized.sb.close();
  const privileged = await started({ privileged: true });
  assert.equal(privileged.sb.restoredFromSnapshot, false, "kernel command line differs");
  await privileged.sb.close();
  // snapshot: false boots even though a matching snapshot exists.
  const forcedCold = await started({ snapshot: false });
  assert.equal(forcedCold.sb.restoredFromSnapshot, false);
  assert.equal((await forcedCold.sb.exec("echo cold")).stdout, "cold\n");
  await forcedCold.sb.close();
  const restored = await started();
  assert.equal(restored.sb.restoredFromSnapshot, true);
  await restored.sb.close();
});

test("a corrupt snapshot is discarded and the sandbox boots normally", async () => {
  const seed = await started();
  await seed.sb.close();
  const root = join(cacheDir(), "snapshots");
  const corrupted: string[] = [];
  for (const key of readdirSync(root)) {
    const state = join(root, key, "vm.state");
    if (!key.startsWith(".") && existsSync(state)) {
      truncateSync(state, 4096);
      corrupted.push(key);
    }
  }
  assert.ok(corrupted.length > 0);
  const sb = await Sandbox.create({ memoryMb, snapshot: true });
  try {
    assert.equal(sb.restoredFromSnapshot, false);
    assert.equal((await sb.exec("echo booted")).stdout, "booted\n");
  } finally {
    await sb.close();
  }
  // The broken one is gone; the cold boot saved a fresh, working one in its place.
  const again = await started();
  assert.equal(again.sb.restoredFromSnapshot, true);
  await again.sb.close();
  assert.deepEqual(childQemuPids(), []);
});
