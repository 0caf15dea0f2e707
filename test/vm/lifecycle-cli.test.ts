// Long-lived sandboxes through the CLI and the SDK, end to end, on one detached sandbox:
// run -d, list/inspect, exec (exit codes, stdin, -w/-u, -it through a real PTY), cp, log,
// published ports and port-forward to an HTTP server in the guest, Sandbox.connect with 20
// concurrent execs, kill, rm.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { join } from "node:path";
import { wheellockIntoHead } from "../helpers/broken-pipe.js";
import { isolateDataDir, runDirEntries, scratchDir } from "../helpers/vm.js";
import {
  CLI,
  inspect,
  killAllSupervisors,
  pidAlive,
  startDetached,
  waitUntil,
  wheellock,
  wheellockSync,
} from "../helpers/lifecycle.js";
import { Sandbox, ErrVMNotRunning } from "../../src/index.js";

const dataDir = isolateDataDir();
const scratch = scratchDir();
let id = "";

// A one-line HTTP/1.0 server in the guest (the default image has perl, no python or nc).
const HTTP_SERVER =
  'setsid perl -MIO::Socket::INET -e \'$s=IO::Socket::INET->new(LocalAddr=>"127.0.0.1",' +
  "LocalPort=>8080,Listen=>16,ReuseAddr=>1) or die; while($c=$s->accept){ $r=<$c>; " +
  'print $c "HTTP/1.0 200 OK\\r\\n\\r\\nguest says $r"; close $c }\' </dev/null >/dev/null 2>&1 &';

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: "127.0.0.1", port, path, timeout: 20_000 }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on("error", reject);
  });
}

before(async () => {
  id = await startDetached(["-p", "0:8080", "--", "sh", "-c", "echo from-the-run-command"]);
});

after(async () => {
  await wheellock(["kill", "--all"]);
  killAllSupervisors(dataDir);
});

test("run -d prints the id and returns; list, list --json, --running and inspect agree", () => {
  const table = wheellockSync(["list"]);
  assert.equal(table.code, 0);
  const [header, row] = table.stdout.trim().split("\n");
  assert.match(header ?? "", /^ID\s+STATUS\s+IMAGE\s+CREATED\s+PID\s+PORTS$/);
  assert.match(
    row ?? "",
    new RegExp(`^${id}\\s+running\\s+default\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\s+\\d+`),
  );
  const json = JSON.parse(wheellockSync(["ls", "--json", "--running"]).stdout) as { id: string }[];
  assert.deepEqual(
    json.map((r) => r.id),
    [id],
  );
  const record = inspect(id);
  assert.equal(record.status, "running");
  assert.ok(pidAlive(record.supervisorPid));
  assert.ok(record.qemuPid && pidAlive(record.qemuPid));
  assert.equal(record.ports[0]?.remotePort, 8080);
  assert.ok((record.ports[0]?.localPort ?? 0) > 0);
  const missing = wheellockSync(["inspect", "vm-00000000"]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, "wheellock: sandbox not found: vm-00000000\n");
});

test("exec propagates exit codes, keeps stderr apart, forwards stdin, honours -w and -u", async () => {
  const r = await wheellock(["exec", id, "--", "sh", "-c", "echo out; echo err >&2; exit 7"]);
  assert.deepEqual([r.code, r.stdout, r.stderr], [7, "out\n", "err\n"]);
  const piped = await wheellock(
    ["exec", "-i", id, "--", "sh", "-c", "cat; echo done"],
    "in-data\n",
  );
  assert.equal(piped.stdout, "in-data\ndone\n");
  const opts = await wheellock([
    "exec",
    "-w",
    "/tmp",
    "-u",
    "1000",
    id,
    "--",
    "sh",
    "-c",
    "pwd; id -u",
  ]);
  assert.equal(opts.stdout, "/tmp\n1000\n");
  const killed = await wheellock(["exec", id, "--", "sh", "-c", "kill -KILL $$"]);
  assert.equal(killed.code, 137);
  const noCmd = await wheellock(["exec", id]);
  assert.equal(noCmd.code, 1);
  assert.match(noCmd.stderr, /^wheellock: .*command required/);
});

/** Every process below `pid` (children first found through /proc). */
function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift() as number;
    for (const entry of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (ppid === parent) {
          out.push(Number(entry));
          queue.push(Number(entry));
        }
      } catch {
        // gone meanwhile
      }
    }
  }
  return out;
}

/** The terminal one of these processes has as stdout (the CLI, under `script`). */
function terminalOf(pids: number[]): string {
  for (const pid of pids) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const tty = readlinkSync(`/proc/${pid}/fd/1`);
      if (cmdline.includes("exec") && tty.startsWith("/dev/pts/")) return tty;
    } catch {
      // gone meanwhile
    }
  }
  throw new Error("no CLI process with a terminal found");
}

test("exec -it drives a shell through a real PTY, window resizes included", async () => {
  const command = [process.execPath, ...CLI, "exec", "-it", id, "--", "sh"]
    .map((a) => `'${a}'`)
    .join(" ");
  const child = spawn("script", ["-qfec", command, "/dev/null"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  const waitFor = (pattern: RegExp) =>
    waitUntil(`output matches ${pattern}: ${out}`, () => pattern.test(out), 60_000);
  await waitFor(/# $/m);
  child.stdin.write("tty; echo $((6*7))\r");
  await waitFor(/42/);
  // A window resize on the host terminal reaches the guest PTY: set the size of the terminal
  // `script` gave the CLI (the kernel then sends the CLI SIGWINCH) and ask the guest.
  const cliTerminal = terminalOf(descendantsOf(child.pid as number));
  execFileSync("stty", ["-F", cliTerminal, "rows", "41", "cols", "97"]);
  // The resize travels host signal -> CLI -> supervisor -> agent; ask until it has arrived.
  for (let attempt = 0; !/^41 97\r?$/m.test(out); attempt++) {
    if (attempt === 20) assert.fail(`the guest never saw the new size: ${out}`);
    child.stdin.write("stty size\r");
    await new Promise((r) => setTimeout(r, 1500));
  }
  child.stdin.write("exit 4\r");
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  assert.match(out, /\/dev\/pts\/\d+/);
  assert.equal(code, 4);
});

test("cp copies files both ways, keeping the mode", async () => {
  const src = join(scratch, "in.bin");
  const data = Buffer.alloc(700_000, "wheellock");
  writeFileSync(src, data, { mode: 0o751 });
  const up = await wheellock(["cp", src, `${id}:/root/in.bin`]);
  assert.equal(up.code, 0, up.stderr);
  const mode = await wheellock(["exec", id, "--", "stat", "-c", "%a %s", "/root/in.bin"]);
  assert.equal(mode.stdout, "751 700000\n");
  const dest = join(scratch, "out.bin");
  const down = await wheellock(["cp", `${id}:/root/in.bin`, dest]);
  assert.equal(down.code, 0, down.stderr);
  assert.ok(readFileSync(dest).equals(data));
  const missing = await wheellock(["cp", `${id}:/nope`, dest]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^wheellock: \/nope: .*No such file/);
  assert.ok(readFileSync(dest).equals(data), "a failed copy leaves the destination alone");
  const intoDir = await wheellock(["cp", `${id}:/root/in.bin`, scratch]);
  assert.equal(intoDir.code, 0, intoDir.stderr);
});

test("exec and cp - into a closed pipe (| head -c1): quiet, 141, the guest command is gone", async () => {
  assert.deepEqual(await wheellockIntoHead(["exec", id, "--", "yes"]), { code: 141, stderr: "" });
  const running = () =>
    wheellockSync(["exec", id, "--", "sh", "-c", "cat /proc/[0-9]*/comm | grep -cx yes"]).stdout;
  await waitUntil("the guest's yes is gone", () => running() === "0\n");
  const made = await wheellock(["exec", id, "--", "sh", "-c", "head -c 4000000 /dev/zero >/big"]);
  assert.equal(made.code, 0, made.stderr);
  assert.deepEqual(await wheellockIntoHead(["cp", `${id}:/big`, "-"]), { code: 141, stderr: "" });
  // The sandbox keeps serving.
  assert.equal((await wheellock(["exec", id, "--", "echo", "still-here"])).stdout, "still-here\n");
});

test("log shows the serial console and the run command's output", async () => {
  await waitUntil("the run command's output is logged", () =>
    wheellockSync(["log", id]).stdout.includes("from-the-run-command"),
  );
  const log = wheellockSync(["log", id]).stdout;
  // (A sandbox resumed from a memory snapshot has no boot messages; the console marker
  // below shows the serial console is in the log either way.)
  assert.match(log, /command exited with status 0/);
  // -f follows what the guest writes to its console from now on.
  const follow = spawn(process.execPath, [...CLI, "log", "-f", id], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let followed = "";
  follow.stdout.on("data", (c: Buffer) => (followed += c.toString()));
  await waitUntil("log -f printed the old log", () => followed.includes("from-the-run-command"));
  await wheellock(["exec", id, "--", "sh", "-c", "echo console-marker-$((40+2)) > /dev/console"]);
  await waitUntil("log -f shows new console output", () => followed.includes("console-marker-42"));
  follow.kill("SIGINT");
  assert.equal(await new Promise((resolve) => follow.once("exit", resolve)), 0);
});

test("published port and port-forward reach an HTTP server in the guest", async () => {
  const started = await wheellock(["exec", id, "--", "sh", "-c", HTTP_SERVER]);
  assert.equal(started.code, 0, started.stderr);
  const published = inspect(id).ports[0]?.localPort ?? 0;
  let first: { status: number; body: string } | undefined;
  for (let i = 0; i < 50 && !first; i++) {
    first = await httpGet(published, "/p").catch(() => undefined);
    if (!first) await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(first, { status: 200, body: "guest says GET /p HTTP/1.1\r\n" });

  const pf = spawn(process.execPath, [...CLI, "port-forward", id, "0:8080"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  pf.stderr.on("data", (c: Buffer) => (err += c.toString()));
  await waitUntil(
    "port-forward listens",
    () => /Forwarding 127\.0\.0\.1:\d+ -> sandbox:8080/.test(err),
    60_000,
  );
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(err)?.[1]);
  const answers = await Promise.all([1, 2, 3].map((n) => httpGet(port, `/f${n}`)));
  assert.deepEqual(
    answers.map((a) => a.body),
    [1, 2, 3].map((n) => `guest says GET /f${n} HTTP/1.1\r\n`),
  );
  pf.kill("SIGINT");
  assert.equal(await new Promise((resolve) => pf.once("exit", resolve)), 0);

  const refused = spawn(process.execPath, [...CLI, "port-forward", id, "0:9"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let rerr = "";
  refused.stderr.on("data", (c: Buffer) => (rerr += c.toString()));
  await waitUntil("port-forward listens", () => /Forwarding 127\.0\.0\.1:\d+/.test(rerr), 60_000);
  await assert.rejects(httpGet(Number(/127\.0\.0\.1:(\d+)/.exec(rerr)?.[1]), "/"));
  await waitUntil("the refusal is reported", () =>
    /connect 127\.0\.0\.1:9: Connection refused/.test(rerr),
  );
  refused.kill("SIGINT");
  await new Promise((resolve) => refused.once("exit", resolve));
});

test("allow-list on an open-mode sandbox is a one-line error", async () => {
  const r = await wheellock(["allow-list", "add", id, "example.com"]);
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    "wheellock: allow-list updates unavailable: sandbox was started without network interception\n",
  );
});

test("SDK: Sandbox.connect runs 20 concurrent execs and moves files", async () => {
  const sb = Sandbox.connect(id);
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      sb.exec(["sh", "-c", `sleep 0.2; echo run-${i}; exit ${i % 4}`]),
    ),
  );
  results.forEach((r, i) => {
    assert.equal(r.stdout, `run-${i}\n`);
    assert.equal(r.exitCode, i % 4);
  });
  await sb.writeFile("/tmp/sdk.txt", "from the sdk\n", { mode: 0o600 });
  assert.equal((await sb.readFile("/tmp/sdk.txt")).toString(), "from the sdk\n");
  const entry = (await sb.listFiles("/tmp")).find((e) => e.name === "sdk.txt");
  assert.equal(entry?.mode && entry.mode & 0o777, 0o600);
  await assert.rejects(sb.readFile("/nope"), { code: "ErrFile" });
  const piped = await sb.exec("cat", { stdin: "stdin via sdk" });
  assert.equal(piped.stdout, "stdin via sdk");
  assert.ok(Sandbox.list().some((r) => r.id === id && r.status === "running"));
});

test("SDK: Sandbox.startDetached starts a sandbox like run -d; callbacks are refused", async () => {
  await assert.rejects(
    Sandbox.startDetached({ networkHooks: [{ hosts: ["a.test"], hook: () => undefined }] }),
    /options\.networkHooks\.0\.hook: callbacks cannot be passed to a detached sandbox/,
  );
  const remote = await Sandbox.startDetached(
    { memoryMb: 256, env: { FROM_SDK: "yes" }, hostname: "sdk-detached" },
    { gracefulShutdownSeconds: 1 },
  );
  try {
    const r = await remote.exec("echo $FROM_SDK; hostname");
    assert.deepEqual([r.exitCode, r.stdout], [0, "yes\nsdk-detached\n"]);
    assert.equal(inspect(remote.id).status, "running");
    // The supervisor outlives its starter: it is not our child, and the CLI manages it by id.
    const listed = await wheellock(["list", "--running"]);
    assert.match(listed.stdout, new RegExp(remote.id));
  } finally {
    assert.equal((await wheellock(["kill", remote.id])).code, 0);
    assert.equal((await wheellock(["rm", remote.id])).stdout, `Removed ${remote.id}\n`);
  }
});

test("kill stops it gracefully, rm removes it, and nothing is left", async () => {
  const { supervisorPid, qemuPid } = inspect(id);
  const notStopped = await wheellock(["rm", id]);
  assert.equal(notStopped.code, 1);
  assert.match(notStopped.stderr, /cannot remove running sandbox/);
  const killed = await wheellock(["kill", id]);
  assert.deepEqual([killed.code, killed.stdout], [0, `Killed ${id}\n`]);
  assert.equal(inspect(id).status, "stopped");
  assert.ok(!pidAlive(supervisorPid));
  assert.ok(!qemuPid || !pidAlive(qemuPid));
  assert.throws(() => Sandbox.connect(id), ErrVMNotRunning);
  const again = await wheellock(["exec", id, "--", "true"]);
  assert.equal(again.stderr, `wheellock: sandbox ${id} is not running (status: stopped)\n`);
  assert.equal((await wheellock(["rm", id])).stdout, `Removed ${id}\n`);
  assert.equal(wheellockSync(["list", "--json"]).stdout.trim(), "[]");
  assert.deepEqual(runDirEntries(dataDir), []);
});
