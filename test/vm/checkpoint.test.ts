// Checkpoint and fork of a running sandbox: copies are independent, carry no secret, write a
// host mount only as `forkMounts` says, and checkpoints that are stale, foreign or changed on
// disk are refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { spawnSync } from "node:child_process";
import {
  Sandbox,
  type SandboxEvent,
  type SandboxOptions,
  type VmSandbox,
} from "../../src/index.js";
import { checkpointsRoot, listCheckpoints, loadCheckpoint } from "../../src/sandbox/index.js";
import { createVolume, volumePath } from "../../src/volumes/index.js";
import { recordEvents, waitForEvent, type EventLog } from "../helpers/event-log.js";
import { waitUntil } from "../helpers/lifecycle.js";
import {
  childQemuPids,
  endWhenDone,
  isolateDataDir,
  runDirEntries,
  scratchDir,
} from "../helpers/vm.js";

const dataDir = isolateDataDir();
endWhenDone();
const CURL_RUNNING = 'kill -0 "$(cat /root/held.pid)" 2>/dev/null && echo running || true';
const PROBE = "hostname; head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; date +%s%3N";

/** Intercept mode (network events are reported only there), reaching the host's 10.0.2.2. */
const REACHES_HOST: SandboxOptions = {
  timeoutSeconds: 240,
  allowedHosts: ["10.0.2.2"],
  allowPrivateHosts: true,
};

function allFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? allFiles(join(dir, e.name)) : [join(dir, e.name)],
  );
}

/**
 * Checkpoint `from`'s manifest copied in under the name `as` (as if from another user, or
 * edited): its signature no longer verifies, and a start from it is refused.
 */
async function assertPlantedRefused(from: string, as: string): Promise<void> {
  const manifests = join(checkpointsRoot(), "manifests");
  const stored = JSON.parse(readFileSync(join(manifests, `${from}.json`), "utf8")) as {
    manifest: { name: string };
  };
  stored.manifest.name = as;
  writeFileSync(join(manifests, `${as}.json`), JSON.stringify(stored));
  await assert.rejects(
    Sandbox.create({ fromCheckpoint: as }),
    (err: Error & { code?: string }) =>
      err.code === "ErrSnapshotMismatch" && /not written by wheellock/.test(err.message),
  );
}

test(
  "a process an exec of the source left running is named for no exec of a copy",
  { timeout: 300_000 },
  async () => {
    // The agent keeps, per exec cgroup, the id of the exec it was made for, across the copy; a
    // copy numbering its streams from 1 again gave its own exec of that id the source's daemon.
    const server = createServer((req, res) => res.end("reached"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const parent = await Sandbox.create(REACHES_HOST);
    const copies: VmSandbox[] = [];
    try {
      // Connects once /root/go exists: after the copy has run execs of its own.
      const daemon = await parent.exec(
        "setsid sh -c 'while [ ! -e /root/go ]; do sleep 0.2; done; " +
          `curl -sS -m 30 http://10.0.2.2:${port}/?left-behind' </dev/null >/dev/null 2>&1 &`,
      );
      copies.push(...(await parent.fork(1)));
      const [copy] = copies as [VmSandbox];
      const parentLog = recordEvents(parent);
      const copyLog = recordEvents(copy);
      const copyExecs: number[] = [];
      while (copyExecs.length < 40 && (copyExecs.at(-1) ?? 0) < daemon.execId)
        copyExecs.push((await copy.exec("true")).execId);
      for (const sb of [copy, parent]) await sb.exec("touch /root/go");
      const leftBehind = (e: SandboxEvent) =>
        e.type === "network" && e.network.url.includes("left-behind");
      const inCopy = await waitForEvent(copyLog, "the daemon's request in the copy", leftBehind);
      const inParent = await waitForEvent(
        parentLog,
        "the daemon's request in the parent",
        leftBehind,
      );
      assert.ok(inCopy.type === "network" && inParent.type === "network");
      const named = inCopy.network.attribution?.execId;
      assert.ok(
        named === undefined || named === null,
        `the copy named its exec ${named} (its execs: ${copyExecs.join(",")})`,
      );
      assert.equal(inParent.network.attribution?.execId, daemon.execId);
      assert.ok(!copyExecs.includes(daemon.execId), `the copy's exec ids ${copyExecs.join(",")}`);
      await Promise.all([parentLog, copyLog].map((log) => log.stop()));
    } finally {
      await Promise.all([...copies, parent].map((s) => s.close()));
      server.close();
    }
  },
);

test("forks are independent copies of a running sandbox", { timeout: 300_000 }, async () => {
  // `?held` is answered only when the test says so: a connection in flight across the fork.
  const requests: string[] = [];
  let answerHeld: (() => void) | undefined;
  const server = createServer((req, res) => {
    requests.push(req.url ?? "");
    if (req.url?.includes("held")) answerHeld = () => res.end("held reply");
    else res.end("reached");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const curl = `curl -sS -m 40 http://10.0.2.2:${port}/`;
  const parent = await Sandbox.create(REACHES_HOST);
  const forks: VmSandbox[] = [];
  try {
    await parent.writeFile("/root/before", "from the parent");
    // A request in flight when the parent is copied: its connection is the parent's alone
    // (each copy's link is a new one that knows no flow of the parent's).
    await parent.exec(
      `setsid sh -c 'echo $$ > /root/held.pid; exec ${curl}?held > /root/held 2>&1' ` +
        "</dev/null >/dev/null 2>&1 &",
    );
    await waitUntil("the held request reaches the host", () => answerHeld !== undefined, 60_000);
    const parentLog = recordEvents(parent);
    forks.push(...(await parent.fork(2)));
    const [a, b] = forks as [VmSandbox, VmSandbox];
    const ids = new Set([parent.id, a.id, b.id]);
    assert.equal(ids.size, 3, "each copy has an id of its own");
    const probedFrom = Date.now();
    const probes = await Promise.all([parent, a, b].map((s) => s.exec(PROBE)));
    const probedTo = Date.now();
    const rows = probes.map((p) => p.stdout.trim().split("\n"));
    assert.deepEqual(
      rows.map((r) => r[0]),
      [parent.config.hostname, a.id, b.id],
    );
    const randoms = rows.map((r) => r[1]);
    for (const r of randoms) assert.match(r ?? "", /^[0-9a-f]{32}$/);
    assert.equal(new Set(randoms).size, 3, "copies must not repeat each other's random bytes");
    // Each copy's clock was set when it resumed: it reads the host's time, not the capture's.
    for (const r of rows) {
      const clock = Number(r[2]);
      assert.ok(
        clock >= probedFrom - 1000 && clock <= probedTo + 1000,
        `guest clock ${clock} of ${r[0]} outside ${probedFrom}..${probedTo}`,
      );
    }
    // The parent's files are there; new writes stay in their own copy.
    for (const copy of [a, b])
      assert.equal((await copy.readFile("/root/before")).toString(), "from the parent");
    await a.writeFile("/root/only-a", "a");
    await assert.rejects(b.readFile("/root/only-a"));
    await assert.rejects(parent.readFile("/root/only-a"));
    // Each copy has a network link (and intercepting proxy) of its own: both reach the host,
    // and each one's requests are reported to that copy alone, attributed to its own exec.
    answerHeld?.();
    const [logA, logB] = [a, b].map((s) => recordEvents(s)) as [EventLog, EventLog];
    assert.equal((await a.exec(`${curl}?from=a`)).stdout, "reached");
    assert.equal((await b.exec(`${curl}?from=b`)).stdout, "reached");
    const requestOf = (from: string) => (e: SandboxEvent) =>
      e.type === "network" && e.network.url.includes(from);
    for (const [log, from] of [
      [logA, "from=a"],
      [logB, "from=b"],
      [parentLog, "held"],
    ] as const) {
      const seen = await waitForEvent(log, `the request ${from}`, requestOf(from));
      assert.ok(seen.type === "network" && !seen.network.blocked, JSON.stringify(seen));
      if (from !== "held") {
        const exec = await waitForEvent(log, `the exec of ${from}`, (e) => e.type === "exec");
        assert.ok(exec.type === "exec");
        assert.equal(seen.network.attribution?.execId, exec.exec.execId);
      }
    }
    // Only the parent gets the held reply; each copy's curl (the same process, copied) is
    // left with a connection its link never had, and ends without it.
    await waitUntil("the parent's held request ends", async () => {
      return (await parent.exec("cat /root/held")).stdout.length > 0;
    });
    assert.equal((await parent.exec("cat /root/held")).stdout, "held reply");
    for (const copy of [a, b]) {
      await waitUntil(
        `the copied curl of ${copy.id} ends`,
        async () => (await copy.exec(CURL_RUNNING)).stdout === "",
        90_000,
      );
      assert.match((await copy.exec("cat /root/held")).stdout, /^curl: \(\d+\)/);
    }
    assert.deepEqual(requests.filter((u) => u.includes("held")).length, 1, requests.join(" "));
    assert.deepEqual(
      [parentLog, logA, logB].map((log) => log.events.filter((e) => e.type === "network").length),
      [1, 1, 1],
      "each request is reported once, by the sandbox that sent it",
    );
    await Promise.all([parentLog, logA, logB].map((log) => log.stop()));
  } finally {
    await Promise.all([...forks, parent].map((s) => s.close()));
    server.close();
  }
  assert.deepEqual(childQemuPids(), []);
  assert.deepEqual(runDirEntries(dataDir), []);
});

test(
  "a checkpoint restores as a copy, without secrets; stale and foreign ones are refused",
  { timeout: 300_000 },
  async () => {
    const secret = "real-secret-value-7f3a9c";
    const parent = await Sandbox.create({
      timeoutSeconds: 240,
      secrets: { API_TOKEN: { value: secret, hosts: ["api.example.test"] } },
    });
    let copy: VmSandbox | undefined;
    try {
      const seen = await parent.exec('printf %s "$API_TOKEN" > /root/token; cat /root/token');
      assert.notEqual(seen.stdout, secret);
      assert.ok(seen.stdout.length > 0, "the guest sees a placeholder");
      const info = await parent.checkpoint("with-secret");
      assert.equal(info.name, "with-secret");
      assert.ok(info.sizes.stateBytes > 1024 * 1024, JSON.stringify(info));
      assert.ok(info.pausedMs >= 0 && info.pausedMs < info.durationMs + 1);
      // The parent runs on after its checkpoint.
      assert.equal((await parent.exec("cat /root/token")).stdout, seen.stdout);
      // Nothing in the store holds the secret's value.
      for (const file of allFiles(checkpointsRoot()))
        assert.equal(readFileSync(file).indexOf(secret), -1, `${file} holds the secret`);

      copy = await Sandbox.create({ fromCheckpoint: "with-secret", timeoutSeconds: 120 });
      assert.notEqual(copy.id, parent.id);
      assert.equal((await copy.exec("cat /root/token")).stdout, seen.stdout);
      assert.equal((await copy.exec("hostname")).stdout.trim(), copy.id);

      // Another VM shape than the checkpoint's: refused, not resumed into the wrong VM.
      await assert.rejects(
        Sandbox.create({ fromCheckpoint: "with-secret", memoryMb: 640 }),
        (err: Error & { code?: string }) => err.code === "ErrSnapshotMismatch",
      );
      // A manifest planted in the store (copied from another user, or edited) is refused.
      await assertPlantedRefused("with-secret", "planted");
      // A chunk changed on disk is refused before QEMU sees it.
      const objects = allFiles(join(checkpointsRoot(), "objects"));
      const biggest = objects.sort((x, y) => statSync(y).size - statSync(x).size)[0] ?? "";
      const bytes = readFileSync(biggest);
      bytes[0] = (bytes[0] ?? 0) ^ 0xff;
      writeFileSync(biggest, bytes);
      await assert.rejects(
        Sandbox.create({ fromCheckpoint: "with-secret" }),
        (err: Error & { code?: string }) =>
          err.code === "ErrSnapshotMismatch" && /changed on disk/.test(err.message),
      );
      await assert.rejects(
        Sandbox.create({ fromCheckpoint: "no-such" }),
        (err: Error & { code?: string }) => err.code === "ErrNotFound",
      );
    } finally {
      await copy?.close();
      await parent.close();
    }
    assert.deepEqual(childQemuPids(), []);
    assert.deepEqual(runDirEntries(dataDir), []);
  },
);

// A guest process that reads the kernel RNG while a copy resumes must not draw what the source
// and the other copies draw (review16 C1): the guest's processes are held across the capture
// and let go only after the copy's CONFIGURE mixed in its entropy. The sampler prints "counter
// time bytes" to a file of its own every ~0.5 ms. A copy's file holds the source's lines up to
// the capture, then lines it printed itself: the first line whose time differs from the
// source's (its draw may predate the capture: memory copied, not a repeat). Every line after it
// was drawn after the copy resumed, and must differ from the source's and the other copy's.
const SAMPLER =
  'use Time::HiRes qw(time usleep); open(my $u, "<", "/dev/urandom"); $| = 1; my $i = 0; ' +
  'while (1) { $i++; sysread($u, my $b, 8); printf("%d %.3f %s\\n", $i, time() * 1000, ' +
  'unpack("H*", $b)); usleep(500); }';

test(
  "no process of a copy draws the random bytes of the source or another copy",
  { timeout: 300_000 },
  async () => {
    const parent = await Sandbox.create({ timeoutSeconds: 240 });
    type Line = { time: string; bytes: string };
    const lines = async (sb: VmSandbox): Promise<Map<number, Line>> => {
      const rows = (await sb.exec("cat /tmp/samples")).stdout.trim().split("\n");
      const out = new Map<number, Line>();
      for (const [i, time, bytes] of rows.map((r) => r.split(" ")))
        if (bytes !== undefined && time !== undefined) out.set(Number(i), { time, bytes });
      return out;
    };
    try {
      await parent.writeFile("/root/sampler.pl", SAMPLER);
      await parent.exec("setsid perl /root/sampler.pl >/tmp/samples 2>/dev/null </dev/null &");
      await new Promise((r) => setTimeout(r, 800));
      const repeats: string[] = [];
      for (let round = 0; round < 10; round++) {
        const copies = (await parent.fork(2)) as VmSandbox[];
        try {
          await new Promise((r) => setTimeout(r, 500));
          const [source, a, b] = await Promise.all([parent, ...copies].map(lines));
          const firsts: number[] = [];
          for (const [name, copy] of [
            ["a", a!],
            ["b", b!],
          ] as const) {
            const counters = [...copy.keys()].sort((x, y) => x - y);
            const first = counters.find((k) => source!.get(k)?.time !== copy.get(k)?.time);
            assert.ok(first !== undefined, `copy ${name} printed lines of its own`);
            firsts.push(first);
            for (const k of counters)
              if (k > first && source!.get(k)?.bytes === copy.get(k)?.bytes)
                repeats.push(`round ${round}: copy ${name} drew the source's bytes at ${k}`);
          }
          const own = Math.max(...firsts);
          for (const [k, line] of a!)
            if (k > own && b!.get(k)?.bytes === line.bytes)
              repeats.push(`round ${round}: the copies drew the same bytes at ${k}`);
        } finally {
          await Promise.all(copies.map((c) => c.close()));
        }
      }
      assert.deepEqual(repeats, [], "a copy's process drew random bytes on the source's RNG state");
      // The source's sampler was let go after its last capture.
      const before = (await lines(parent)).size;
      await new Promise((r) => setTimeout(r, 300));
      assert.ok((await lines(parent)).size > before, "the source's processes run on");
    } finally {
      await parent.close();
    }
  },
);

// What a copy must see of the parent's memory mount (/mem) and overlay (/ov): files, a hard
// link, a symlink, mode and owner, a large file, a changed and a removed lower file.
const MOUNTS_STATE =
  "cat /mem/d/f /mem/hard; readlink /mem/sym; stat -c '%a %u %g %h' /mem/d/f; " +
  "test $(stat -c %i /mem/d/f) = $(stat -c %i /mem/hard) && echo one-inode; " +
  "md5sum < /mem/big; cat /ov/new /ov/lower-file; " +
  "test -e /ov/lower-gone && echo there || echo gone";

test(
  "copies of a sandbox with a host mount write it only as forkMounts says",
  { timeout: 600_000 },
  async () => {
    const host = scratchDir();
    writeFileSync(join(host, "seed"), "from the host");
    const lower = scratchDir();
    writeFileSync(join(lower, "lower-file"), "lower\n");
    writeFileSync(join(lower, "lower-gone"), "lower\n");
    const parent = await Sandbox.create({
      timeoutSeconds: 500,
      mounts: {
        "/work": { type: "host_fs", hostPath: host },
        "/mem": { type: "memory", quota: { sizeBytes: 8 * 1024 * 1024 } },
        "/ov": { type: "overlay", hostPath: lower },
      },
    });
    const copies: VmSandbox[] = [];
    const run = async (sb: VmSandbox, cmd: string): Promise<string> => (await sb.exec(cmd)).stdout;
    const lowerUntouched = (): void => {
      assert.deepEqual(readdirSync(lower).sort(), ["lower-file", "lower-gone"]);
      assert.equal(readFileSync(join(lower, "lower-file"), "utf8"), "lower\n");
    };
    try {
      // The guest kernel now holds node ids of the mount: the copies' servers must know them.
      assert.equal(await run(parent, "cat /work/seed"), "from the host");
      // Contents that live in this process: a memory mount's tree, an overlay's upper layer.
      await run(
        parent,
        "mkdir /mem/d && echo mem > /mem/d/f && ln /mem/d/f /mem/hard && ln -s d/f /mem/sym && " +
          "chmod 640 /mem/d/f && chown 1000:1000 /mem/d/f && head -c 3000000 /dev/urandom > /mem/big && " +
          "echo ov > /ov/new && echo changed > /ov/lower-file && rm /ov/lower-gone",
      );
      const parentState = await run(parent, MOUNTS_STATE);
      assert.match(
        parentState,
        /^mem\nmem\nd\/f\n640 1000 1000 2\none-inode\n[0-9a-f]{32} {2}-\nov\nchanged\ngone\n$/,
      );
      // Default: each copy writes a layer of its own; the host dir and the others see nothing.
      const [a, b] = (await parent.fork(2)) as [VmSandbox, VmSandbox];
      copies.push(a, b);
      await Promise.all([a, b].map((c) => run(c, `echo ${c.id} > /work/same`)));
      assert.equal(await run(a, "cat /work/same"), `${a.id}\n`);
      assert.equal(await run(b, "cat /work/same"), `${b.id}\n`);
      assert.equal(existsSync(join(host, "same")), false, "an overlay copy wrote the host dir");
      assert.equal(
        await run(parent, "test -e /work/same && echo there || echo absent"),
        "absent\n",
      );
      assert.equal(await run(a, "cat /work/seed"), "from the host");
      // Each copy has the memory mount's and the overlay's contents, and writes its own.
      for (const c of [a, b]) assert.equal(await run(c, MOUNTS_STATE), parentState);
      const writeOwn = (c: VmSandbox): Promise<string> =>
        run(
          c,
          `echo ${c.id} > /mem/hard; echo ${c.id} > /ov/new; echo ${c.id} > /ov/lower-file; echo ${c.id} > /mem/own-${c.id}`,
        );
      await Promise.all([a, b].map(writeOwn));
      for (const c of [a, b])
        assert.equal(
          await run(c, "cat /mem/d/f /ov/new /ov/lower-file; ls /mem | grep -c own-"),
          `${c.id}\n`.repeat(3) + "1\n",
        );
      assert.equal(
        await run(parent, MOUNTS_STATE),
        parentState,
        "a copy's writes reached the parent",
      );
      lowerUntouched();
      // The memory mount's quota (8 MiB, 3 MB used) holds in a copy: its contents count.
      const full = await a.exec("head -c 6000000 /dev/zero > /mem/more");
      assert.match(full.stderr, /No space left on device/);
      await run(a, "rm -f /mem/more");
      // A fork of a fork: its copy has what the fork wrote, and writes on its own.
      const [aa] = (await a.fork(1)) as [VmSandbox];
      copies.push(aa);
      assert.equal(await run(aa, "cat /mem/d/f /ov/new"), `${a.id}\n${a.id}\n`);
      await run(aa, "echo grandchild > /mem/d/f; echo grandchild > /ov/new");
      assert.equal(await run(a, "cat /mem/d/f /ov/new"), `${a.id}\n${a.id}\n`);
      assert.equal(await run(aa, "cat /mem/hard /ov/new"), "grandchild\ngrandchild\n");
      lowerUntouched();
      // The copy's lower layer is the host dir as it is now.
      writeFileSync(join(host, "later"), "written after the fork");
      await waitUntil("the copy sees a host file written after the fork", async () => {
        return (await run(a, "cat /work/later 2>/dev/null || true")) === "written after the fork";
      });
      await Promise.all(copies.splice(0).map((c) => c.close()));

      const [ro] = (await parent.fork(1, { forkMounts: "readonly" })) as [VmSandbox];
      copies.push(ro);
      const refused = await ro.exec("echo x > /work/ro-write");
      assert.notEqual(refused.exitCode, 0);
      assert.match(refused.stderr, /Read-only file system/);
      assert.equal(await run(ro, "cat /work/seed"), "from the host");
      // `readonly` makes the copy's memory mount and overlay read-only too (contents kept).
      assert.equal(await run(ro, MOUNTS_STATE), parentState);
      for (const path of ["/mem/x", "/ov/x"]) {
        const r = await ro.exec(`echo x > ${path}`);
        assert.match(r.stderr, /Read-only file system/, path);
      }
      assert.equal(existsSync(join(host, "ro-write")), false);
      await Promise.all(copies.splice(0).map((c) => c.close()));

      // A checkpoint carries the mounts (the memory and overlay contents stored with it);
      // `share` writes through to the host, as asked.
      const info = await parent.checkpoint("with-mount");
      assert.ok(info.sizes.mountDataBytes >= 3_000_000, JSON.stringify(info.sizes));
      await run(parent, "echo after-checkpoint > /mem/d/f");
      await assert.rejects(
        Sandbox.create({ fromCheckpoint: "with-mount", mounts: { "/other": { type: "memory" } } }),
        (err: Error & { code?: string }) => err.code === "ErrInvalidConfig",
      );
      const shared = await Sandbox.create({
        fromCheckpoint: "with-mount",
        forkMounts: "share",
        timeoutSeconds: 200,
      });
      copies.push(shared);
      await run(shared, "echo shared > /work/shared");
      assert.equal(readFileSync(join(host, "shared"), "utf8"), "shared\n");
      // Its memory and overlay contents are the checkpoint's, its own (never shared).
      assert.equal(await run(shared, MOUNTS_STATE), parentState);
      await run(shared, "echo shared > /mem/d/f; echo shared > /ov/new");
      assert.equal(await run(parent, "cat /mem/d/f /ov/new"), "after-checkpoint\nov\n");
      lowerUntouched();
      // Another process restores the stored checkpoint: the contents come from the store.
      const cli = spawnSync(
        process.execPath,
        [
          "--import",
          "tsx",
          join(import.meta.dirname, "../../src/cli/main.ts"),
          "run",
          "--from-checkpoint",
          "with-mount",
          "--",
          "sh",
          "-c",
          MOUNTS_STATE,
        ],
        { encoding: "utf8", timeout: 180_000 },
      );
      assert.equal(cli.stdout, parentState, cli.stderr);
      // The source sandbox writes its own mount as before.
      await run(parent, "echo parent > /work/parent");
      assert.equal(readFileSync(join(host, "parent"), "utf8"), "parent\n");
    } finally {
      await Promise.all([...copies, parent].map((s) => s.close()));
    }
    assert.deepEqual(childQemuPids(), []);
    assert.deepEqual(runDirEntries(dataDir), []);
  },
);

test(
  "forks and checkpoints of a sandbox with disks: copies write private copies of the checkpoint-time content",
  { timeout: 600_000 },
  async () => {
    const base = scratchDir();
    const volume = await createVolume("ckpt-work", 16);
    const roImage = join(base, "ro.ext4");
    const roTree = join(base, "ro-tree");
    mkdirSync(roTree);
    writeFileSync(join(roTree, "ro-file"), "read-only content\n");
    const mkfs = spawnSync("mkfs.ext4", ["-q", "-F", "-d", roTree, roImage, "16M"], {
      encoding: "utf8",
    });
    assert.equal(mkfs.status, 0, mkfs.stderr);
    const parent = await Sandbox.create({
      timeoutSeconds: 500,
      disks: [
        { volume: "ckpt-work", guestPath: "/data" },
        { hostPath: roImage, guestPath: "/ro", readonly: true },
      ],
    });
    const copies: VmSandbox[] = [];
    const run = async (sb: VmSandbox, cmd: string): Promise<string> => (await sb.exec(cmd)).stdout;
    const objects = (): string[] => {
      const dir = join(checkpointsRoot(), "objects");
      return existsSync(dir) ? allFiles(dir).sort() : [];
    };
    try {
      await run(parent, "echo parent > /data/before && sync");
      copies.push(...(await parent.fork(2)));
      const [a, b] = copies as [VmSandbox, VmSandbox];
      await Promise.all(copies.map((c) => run(c, `echo ${c.id} > /data/same && sync`)));
      await run(parent, "echo parent-after > /data/same && sync");
      assert.equal(await run(a, "cat /data/same /data/before"), `${a.id}\nparent\n`);
      assert.equal(await run(b, "cat /data/same /data/before"), `${b.id}\nparent\n`);
      assert.equal(await run(parent, "cat /data/same"), "parent-after\n");
      // Its drive is the copy's own file, written through the page cache of a guest of its own:
      // read the disk itself again, past the cache (commands cannot drop caches).
      assert.equal(await run(a, "dd if=/data/same iflag=direct bs=4096 status=none"), `${a.id}\n`);
      const refused = await a.exec("echo x > /ro/x");
      assert.notEqual(refused.exitCode, 0);
      await Promise.all(copies.splice(0).map((c) => c.close()));

      // A stored checkpoint holds each disk's bytes at the checkpoint instant.
      const info = await parent.checkpoint("with-disks");
      assert.ok(info.sizes.diskDataBytes > 0, JSON.stringify(info.sizes));
      const withDisks = loadCheckpoint("with-disks");
      // The source goes on after it: what it writes and removes now is not in the checkpoint.
      await run(
        parent,
        "rm /data/before; echo parent-late > /data/same; echo x > /data/later; sync",
      );
      const ls = spawnSync(process.execPath, ["dist/cli/main.js", "checkpoint", "ls"], {
        encoding: "utf8",
      });
      assert.match(ls.stdout, /with-disks .*\/data=@ckpt-work,\/ro:ro \(/, ls.stderr);

      const STATE = "cat /data/before /data/same /ro/ro-file; ls /data; mount | grep -c ' /data '";
      const atCheckpoint = "parent\nparent-after\nread-only content\nbefore\nlost+found\nsame\n1\n";
      const [c1, c2] = (await Promise.all([
        Sandbox.create({ fromCheckpoint: "with-disks", timeoutSeconds: 300 }),
        Sandbox.create({ fromCheckpoint: "with-disks", timeoutSeconds: 300 }),
      ])) as [VmSandbox, VmSandbox];
      copies.push(c1, c2);
      for (const c of [c1, c2]) assert.equal(await run(c, STATE), atCheckpoint, c.id);
      // Each copy writes a disk of its own: not the other copy's, not the volume.
      await Promise.all([c1, c2].map((c) => run(c, `echo ${c.id} > /data/same && sync`)));
      for (const c of [c1, c2])
        assert.equal(
          await run(c, "dd if=/data/same iflag=direct bs=4096 status=none"),
          `${c.id}\n`,
        );
      assert.equal(await run(parent, "cat /data/same"), "parent-late\n");
      assert.notEqual((await c1.exec("echo x > /ro/x")).exitCode, 0, "read-only in the copy too");
      // A fork of a copy copies the copy's private disk, not the checkpoint's or the volume.
      const [grandchild] = (await c1.fork(1)) as [VmSandbox];
      copies.push(grandchild);
      assert.equal(
        await run(grandchild, "cat /data/same /ro/ro-file"),
        `${c1.id}\nread-only content\n`,
      );
      // The CLI starts a copy from it too.
      const cli = spawnSync(
        process.execPath,
        ["dist/cli/main.js", "run", "--from-checkpoint", "with-disks", "--", "sh", "-c", STATE],
        { encoding: "utf8", timeout: 180_000 },
      );
      assert.equal(cli.stdout, atCheckpoint, cli.stderr);

      // Disks of the caller's with it: refused (they come with the checkpoint).
      await assert.rejects(
        Sandbox.create({
          fromCheckpoint: "with-disks",
          disks: [{ volume: "ckpt-work", guestPath: "/data" }],
        }),
        (err: Error & { code?: string }) =>
          err.code === "ErrInvalidConfig" && /has the checkpoint's disks/.test(err.message),
      );
      // Stale (another VM shape) and foreign (planted) checkpoints with disks: refused.
      await assert.rejects(
        Sandbox.create({ fromCheckpoint: "with-disks", memoryMb: 640 }),
        (err: Error & { code?: string }) => err.code === "ErrSnapshotMismatch",
      );
      await assertPlantedRefused("with-disks", "planted-disks");
      await Promise.all(copies.splice(0).map((c) => c.close()));
      // rm drops every chunk only it used.
      const rm = spawnSync(
        process.execPath,
        ["dist/cli/main.js", "checkpoint", "rm", "with-disks"],
        {
          encoding: "utf8",
        },
      );
      assert.equal(rm.status, 0, rm.stderr);
      // Every object left is named by a checkpoint that is left: none of its disks' chunks.
      const named = new Set(
        listCheckpoints().flatMap((c) =>
          [c.state, c.upper, c.mountData, ...(c.disks ?? []).map((d) => d.file)].flatMap(
            (f) => f?.chunks ?? [],
          ),
        ),
      );
      assert.deepEqual(
        objects().filter((path) => !named.has(basename(path))),
        [],
      );
      // Its disks had chunks no other checkpoint shares: they are gone.
      const diskChunks = (withDisks.disks ?? []).flatMap((d) => d.file.chunks);
      assert.ok(
        diskChunks.some((d) => d !== "0" && !named.has(d)),
        "disk chunks of its own",
      );
    } finally {
      await Promise.all([...copies, parent].map((s) => s.close()));
    }
    // The volume holds what the source sandbox wrote, nothing of the copies.
    const dump = (path: string): string =>
      spawnSync("debugfs", ["-R", `cat ${path}`, volumePath("ckpt-work")], { encoding: "utf8" })
        .stdout;
    assert.equal(dump("/same"), "parent-late\n");
    assert.equal(dump("/later"), "x\n");
    assert.equal(dump("/before"), "");
    assert.equal(volume.name, "ckpt-work");
    assert.deepEqual(childQemuPids(), []);
    assert.deepEqual(runDirEntries(dataDir), []);
  },
);
