// `wheellock serve` on loopback, end to end with real VMs: the SDK's shared cases a third time
// (test/helpers/sandbox-cases.ts) against a sandbox served by a node; the CLI with --remote;
// node memory while a client does not read; kill -9 of a node mid-exec and its restart; two
// nodes with their own data dirs and placement between them.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrVMNotRunning, Sandbox, type NodeSandbox } from "../../src/index.js";
import { SANDBOX_OPTIONS, sandboxCases } from "../helpers/sandbox-cases.js";
import { CLI, pidAlive, waitUntil, wheellock } from "../helpers/lifecycle.js";
import {
  keepLogsOnFailure,
  rssBytes,
  startServe,
  supervisorPids,
  type ServeProcess,
} from "../helpers/serve-process.js";
import { isolateDataDir, scratchDir } from "../helpers/vm.js";

isolateDataDir();
const scratch = scratchDir();
function nodeDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `wheellock-test-${name}-`));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
const dirA = nodeDir("node-a");
const dirB = nodeDir("node-b");
let a: ServeProcess | undefined;
let b: ServeProcess | undefined;
let sb: NodeSandbox | undefined;
const localIds = (dir: string): string[] =>
  existsSync(join(dir, "sandboxes"))
    ? readdirSync(join(dir, "sandboxes")).filter((f) => f.startsWith("vm-"))
    : [];

const kept = keepLogsOnFailure("serve", () => [a, b]);

before(
  async () => {
    // Node A takes one sandbox: the next create must be placed on B.
    a = await startServe(dirA, ["--max-sandboxes", "1"]);
    sb = await Sandbox.create({ ...SANDBOX_OPTIONS, remote: { url: a.url, token: a.token } });
  },
  { timeout: 300_000 },
);

after(
  async () => {
    kept.save();
    await sb?.close().catch(() => undefined);
    await a?.stop();
    await b?.stop();
    // Whatever a failed test left: supervisors of both nodes (QEMU dies with them).
    for (const dir of [dirA, dirB])
      for (const pid of supervisorPids(dir, localIds(dir)))
        if (pidAlive(pid)) process.kill(pid, "SIGKILL");
  },
  { timeout: 120_000 },
);

/** The CLI against node A, token from the environment as a user would give it. */
function remoteCli(args: string[], input = ""): ReturnType<typeof wheellock> {
  process.env.WHEELLOCK_TOKEN = a?.token;
  return wheellock([...args.slice(0, 1), "--remote", a?.url as string, ...args.slice(1)], input);
}

describe("CLI --remote", { timeout: 400_000 }, () => {
  test("exec: output and exit codes as locally", async () => {
    const r = await remoteCli(["exec", sb!.id, "--", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert.deepEqual([r.code, r.stdout, r.stderr], [7, "out\n", "err\n"]);
    const stdin = await remoteCli(["exec", "-i", sb!.id, "--", "wc", "-c"], "12345");
    assert.equal(stdin.stdout.trim(), "5");
  });

  test("exec -it drives a shell through a real PTY and returns its status", async () => {
    const command = [
      process.execPath,
      ...CLI,
      "exec",
      "--remote",
      a!.url,
      "-it",
      sb!.id,
      "--",
      "sh",
    ]
      .map((x) => `'${x}'`)
      .join(" ");
    const child = spawn("script", ["-qfec", command, "/dev/null"], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, WHEELLOCK_TOKEN: a!.token },
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    await waitUntil(`a prompt: ${out}`, () => /# $/m.test(out), 60_000);
    child.stdin.write("tty; echo $((6*7))\r");
    await waitUntil(`42: ${out}`, () => /42/.test(out), 30_000);
    child.stdin.write("exit 4\r");
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    assert.match(out, /\/dev\/pts\/\d+/);
    assert.equal(code, 4);
  });

  test("cp both ways, list, inspect, log, allow-list", async () => {
    const src = join(scratch, "up.bin");
    writeFileSync(src, Buffer.alloc(300_000, "r"), { mode: 0o640 });
    assert.equal((await remoteCli(["cp", src, `${sb!.id}:/root/up.bin`])).code, 0);
    const down = join(scratch, "down.bin");
    const back = await remoteCli(["cp", `${sb!.id}:/root/up.bin`, down]);
    assert.equal(back.code, 0, back.stderr);
    assert.ok(readFileSync(down).equals(readFileSync(src)));
    const list = await remoteCli(["list"]);
    assert.match(
      list.stdout,
      new RegExp(`^${sb!.id.replace(".", "\\.")}\\s+running\\s+default`, "m"),
    );
    const inspect = JSON.parse((await remoteCli(["inspect", sb!.id])).stdout) as { node: string };
    assert.equal(inspect.node, a!.node);
    // A sandbox resumed from a memory snapshot prints no boot messages, so its console log
    // may be empty: the guest writes a marker to its console, which the node's log serves.
    await sb!.exec("echo console-marker-$((40+2)) > /dev/console");
    // The console reaches the log in batches: a few reads may come before the marker does.
    let log = await remoteCli(["log", sb!.id]);
    for (let tries = 0; !log.stdout.includes("console-marker-42") && tries < 50; tries++) {
      await new Promise((r) => setTimeout(r, 200));
      log = await remoteCli(["log", sb!.id]);
    }
    assert.equal(log.code, 0, log.stderr);
    assert.match(log.stdout, /console-marker-42/);
    // --remote belongs to the subcommand (`allow-list add --remote ...`), as locally.
    const allow = await wheellock(["allow-list", "add", "--remote", a!.url, sb!.id, "example.com"]);
    assert.equal(allow.code, 1);
    assert.match(allow.stderr, /without network interception/);
    const missing = await remoteCli(["exec", "vm-00000000@" + a!.node, "--", "true"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^wheellock: sandbox not found: vm-00000000/);
  });
});

describe("backpressure through the node", { timeout: 300_000 }, () => {
  test("a client that does not read: the node's and the supervisor's memory stay flat", async () => {
    const node = a!.child.pid as number;
    const [supervisor] = supervisorPids(dirA, [sb!.id.split("@")[0] as string]);
    const proc = sb!.spawn("head -c 300000000 /dev/zero");
    proc.stdin.end();
    proc.stdout.pause();
    await new Promise((r) => setTimeout(r, 1500));
    const before = [rssBytes(node), rssBytes(supervisor as number)];
    await new Promise((r) => setTimeout(r, 3000));
    const grown = [
      rssBytes(node) - (before[0] as number),
      rssBytes(supervisor as number) - (before[1] as number),
    ];
    assert.ok(
      grown.every((g) => g < 32 * 1024 * 1024),
      `grew by ${grown.join(", ")} bytes`,
    );
    assert.ok(
      proc.stdout.readableLength <= 1024 * 1024,
      `client holds ${proc.stdout.readableLength}`,
    );
    // What the stream holds now arrives in the 'data' events after resume(): counted there.
    let total = 0;
    proc.stdout.on("data", (c: Buffer) => (total += c.length));
    proc.stdout.resume();
    assert.equal((await proc.wait()).exitCode, 0);
    assert.equal(total, 300000000);
  });
});

describe("faults", { timeout: 600_000 }, () => {
  test("kill -9 of the node mid-exec: one clear error; a restarted node finds the sandbox", async () => {
    // Far longer than the wait below: the sleep must be killed, not end by itself.
    const proc = sb!.spawn("sleep 600");
    proc.stdin.end();
    await proc.pid;
    const port = new URL(a!.url).port;
    await a!.stop("SIGKILL");
    await assert.rejects(proc.wait(), (err: Error) => {
      assert.ok(err instanceof ErrVMNotRunning, String(err));
      assert.match(err.message, /connection to it was lost/);
      return true;
    });
    // The sandbox lives in its supervisor: a new `serve` on the same data dir serves it again.
    a = await startServe(dirA, ["--max-sandboxes", "1", "--listen", `127.0.0.1:${port}`]);
    assert.equal((await sb!.exec("echo back")).stdout, "back\n");
    // The lost client's command is killed: SIGKILL and the agent's reaping are asynchronous to
    // the next exec (a loaded TCG guest once still listed it a second later; under a load of
    // 12 on 2 cores, still after 20 s), so poll for it.
    await waitUntil(
      "the lost client's sleep is killed and reaped",
      async () => (await sb!.exec("cat /proc/[0-9]*/comm | grep -cx sleep")).stdout === "0\n",
      90_000,
    );
    const list = await remoteCli(["list", "--json"]);
    assert.deepEqual(
      (JSON.parse(list.stdout) as { id: string }[]).map((v) => v.id),
      [sb!.id],
    );
  });

  test("two nodes: placement skips the full one; a whole node killed leaves nothing after gc", async () => {
    b = await startServe(dirB);
    const token = { a: a!.token, b: b.token };
    // One token for both nodes, as an operator would deploy them.
    writeFileSync(join(dirB, "serve", "operator-token"), `${token.a}\n`);
    await b.stop();
    // B opens a directory to callers: the mount below is checked by the node and opened by
    // the supervisor only if it is still what the node checked (the identity travels along).
    const shared = join(scratch, "shared");
    mkdirSync(shared);
    writeFileSync(join(shared, "note.txt"), "from the node\n");
    b = await startServe(dirB, ["--host-path", shared]);
    // After the restart: B listens on a new port (the URL it had before is refused).
    const urls = [a!.url, b.url];
    const placed = await Sandbox.create({
      remote: { url: urls, token: token.a },
      mounts: { "/shared": { type: "host_fs", hostPath: shared, readonly: true } },
    });
    assert.match(placed.id, new RegExp(`@${b.node}$`));
    assert.equal((await placed.exec("cat /shared/note.txt")).stdout, "from the node\n");
    process.env.WHEELLOCK_TOKEN = token.a;
    const run = await wheellock([
      "run",
      "--remote",
      urls.join(","),
      "--",
      "sh",
      "-c",
      "echo ran; exit 5",
    ]);
    assert.deepEqual([run.code, run.stdout], [5, "ran\n"], run.stderr);
    // The whole node B goes: serve and its supervisors (QEMU follows by parent-death signal).
    const proc = placed.spawn("sleep 60");
    proc.stdin.end();
    await proc.pid;
    const local = placed.id.split("@")[0] as string;
    const pids = supervisorPids(dirB, [local]);
    await b.stop("SIGKILL");
    for (const pid of pids) process.kill(pid, "SIGKILL");
    await assert.rejects(proc.wait(), ErrVMNotRunning);
    b = await startServe(dirB);
    const view = JSON.parse(
      (await wheellock(["inspect", "--remote", b.url, placed.id])).stdout,
    ) as { status: string };
    assert.equal(view.status, "crashed");
    const gc = execFileSync(process.execPath, [...CLI, "gc"], {
      env: { ...process.env, WHEELLOCK_DATA_DIR: dirB },
      encoding: "utf8",
    });
    assert.match(gc, new RegExp(local));
    assert.equal((await wheellock(["rm", "--remote", b.url, placed.id])).code, 0);
    assert.deepEqual(localIds(dirB), []);
    const runDir = join(dirB, "run");
    assert.deepEqual(existsSync(runDir) ? readdirSync(runDir) : [], []);
  });
});

describe("serve --single", { timeout: 300_000 }, () => {
  test("serves the one sandbox of its plan and exits when it stops", async () => {
    const dir = nodeDir("single");
    const plan = JSON.stringify({ options: { hostname: "single-vm", env: { FROM: "plan" } } });
    const single = await startServe(dir, ["--single"], plan);
    try {
      assert.match(single.sandbox ?? "", new RegExp(`^vm-[0-9a-f]{8}@${single.node}$`));
      const remote = { url: single.url, token: single.token };
      await assert.rejects(Sandbox.create({ remote }), /serves one sandbox/);
      const one = Sandbox.connect(single.sandbox as string, { remote });
      assert.equal((await one.exec("hostname; printenv FROM")).stdout, "single-vm\nplan\n");
      const exited = new Promise<number | null>((resolve) => single.child.once("exit", resolve));
      await one.close();
      assert.equal(await exited, 0);
    } finally {
      await single.stop("SIGKILL");
    }
  });
});

// Review rev19 H2: the operator token wrote a script into a --host-path directory through a
// read-write mount, then named it as the policy script, which the node ran on the host.
describe(
  "serve --host-path-ro: policy scripts only from a root callers cannot write",
  { timeout: 300_000 },
  () => {
    test("a script written through a mount is refused; the read-only root is read-only", async () => {
      const dir = nodeDir("host-path-ro");
      const [rw, ro] = [join(dir, "rw"), join(dir, "ro")];
      mkdirSync(rw);
      mkdirSync(ro);
      writeFileSync(join(ro, "policy.mjs"), "export default [];\n");
      const marker = join(dir, "ran-on-host");
      const node = await startServe(join(dir, "data"), ["--host-path", rw, "--host-path-ro", ro]);
      const remote = { url: node.url, token: node.token };
      let box: NodeSandbox | undefined;
      try {
        box = await Sandbox.create({
          ...SANDBOX_OPTIONS,
          allowedHosts: ["example.com"],
          mounts: {
            "/w": { type: "host_fs", hostPath: rw },
            "/r": { type: "host_fs", hostPath: ro, readonly: true },
          },
          remote,
        });
        await box.writeFile(
          "/w/hooks.mjs",
          `import { writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(marker)}, "x");\nexport default [];\n`,
        );
        assert.ok(existsSync(join(rw, "hooks.mjs")), "the write went through the mount");
        const configured = await box.configure({ policyScript: join(rw, "hooks.mjs") }).then(
          () => "accepted",
          (err: Error) => err.message,
        );
        assert.equal(existsSync(marker), false, "the caller's script ran on the host");
        assert.match(configured, /callers can write .*--host-path-ro/);
        // Nothing is planted in the read-only root, and a script there is taken.
        await assert.rejects(box.writeFile("/r/hooks.mjs", "export default [];\n"));
        assert.equal(existsSync(join(ro, "hooks.mjs")), false);
        await box.configure({ policyScript: join(ro, "policy.mjs") });
        await assert.rejects(
          Sandbox.create({ mounts: { "/r": { type: "host_fs", hostPath: ro } }, remote }),
          /read-only directory \(serve --host-path-ro\)/,
        );
      } finally {
        await box?.close();
        await node.stop("SIGKILL");
      }
    });
  },
);

// Last: the shared table ends by closing the sandbox the tests above use.
describe(
  "served sandbox (Sandbox.create({ remote }) against serve on loopback)",
  { timeout: 900_000 },
  () => {
    sandboxCases(() => sb as NodeSandbox);
  },
);
