// The `wheellock` CLI end to end, as a user at a terminal would run it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { wheellockIntoHead } from "../helpers/broken-pipe.js";
import { isolateDataDir, runDirEntries, scratchDir } from "../helpers/vm.js";
import { ANSWER_GRACE_MS } from "../../src/cli/approve-prompt.js";

const dataDir = isolateDataDir();
const CLI = ["--import", "tsx", join(import.meta.dirname, "../../src/cli/main.ts")];

function wheellock(args: string[], input?: string, env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, [...CLI, ...args], {
    input: input ?? "",
    encoding: "utf8",
    timeout: 180_000,
    env,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("run streams output, keeps stderr apart and exits with the command's status", () => {
  const r = wheellock(["run", "--", "sh", "-c", "echo out; echo err >&2; exit 5"]);
  assert.equal(r.stdout, "out\n");
  assert.equal(r.stderr, "err\n");
  assert.equal(r.code, 5);
});

test("run -i pipes stdin; options reach the guest", () => {
  const dir = scratchDir("wl-cli-");
  const envFile = join(dir, "env");
  writeFileSync(envFile, "# comment\nFROM_FILE=file\nBOTH=file\n");
  const r = wheellock(
    [
      "run",
      "-i",
      "-e",
      "BOTH=flag",
      "--env-file",
      envFile,
      "-w",
      "/tmp",
      "-u",
      "1000",
      "--hostname",
      "cli-host",
      "--disk-size",
      "1024",
      "--cpus",
      "2",
      "--memory",
      "300",
      "--",
      "sh",
      "-c",
      'cat; echo "$FROM_FILE $BOTH"; pwd; id -u; hostname; nproc; grep MemTotal /proc/meminfo; df -k / | tail -1',
    ],
    "piped-input\n",
  );
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.deepEqual(lines.slice(0, 6), [
    "piped-input",
    "file flag",
    "/tmp",
    "1000",
    "cli-host",
    "2",
  ]);
  const memKb = Number(/MemTotal:\s+(\d+)/.exec(lines[6] ?? "")?.[1]);
  assert.ok(memKb > 200_000 && memKb <= 300 * 1024, `MemTotal ${memKb} kB`);
  // The writable layer is the --disk-size disk: its size shows as the root filesystem's.
  const rootKb = Number((lines[7] ?? "").trim().split(/\s+/)[1]);
  assert.ok(rootKb > 900 * 1024 && rootKb <= 1024 * 1024, `root fs ${rootKb} kB`);
});

test("signal deaths map to 128+N", () => {
  // No `--`: options after the command are the command's own (`-c`), as with `docker run`.
  const r = wheellock(["run", "sh", "-c", "kill -KILL $$"]);
  assert.equal(r.code, 137);
});

test("--timeout stops the sandbox with a clear error and exit 124", () => {
  const r = wheellock(["run", "--timeout", "2", "--", "sleep", "60"]);
  assert.equal(r.code, 124);
  assert.match(r.stderr, /timed out after 2 s/);
});

test("bad input gets a one-line error and a non-zero exit", () => {
  const cases: Array<[string[], RegExp]> = [
    [["run", "--memory", "12abc", "--", "true"], /--memory must be a positive integer/],
    [["run", "--cpus", "-1", "--", "true"], /error|cpus/],
    [["run", "--bogus-flag", "--", "true"], /unknown option '--bogus-flag'/],
    [["run"], /command required/],
    [["run", "--kernel", "/nonexistent/vmlinuz", "--", "true"], /nonexistent\/vmlinuz/],
    // Loopback only (tests never reach the internet): nothing listens on port 2. The exact
    // "image not found" case, against a real registry, is in image.test.ts.
    [
      ["run", "--image", "127.0.0.1:2/no-such-image:1", "--", "true"],
      /registry 127\.0\.0\.1:2 unreachable/,
    ],
    [["run", "-u", "nosuchuser", "--", "true"], /unknown user: nosuchuser/],
    [["run", "-e", "=x", "--", "true"], /name/],
  ];
  for (const [args, pattern] of cases) {
    const r = wheellock(args);
    assert.notEqual(r.code, 0, `${args.join(" ")} should fail`);
    assert.match(r.stderr, pattern, args.join(" "));
    assert.equal(
      r.stderr.trim().split("\n").length,
      1,
      `one line for ${args.join(" ")}: ${r.stderr}`,
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  }
  const noQemu = wheellock(["run", "--", "true"], "", {
    ...process.env,
    WHEELLOCK_QEMU: "/nonexistent/qemu",
  });
  assert.equal(noQemu.code, 1);
  assert.match(noQemu.stderr, /^wheellock: .*\/nonexistent\/qemu.*\n$/);
  assert.deepEqual(runDirEntries(dataDir), [], "failed runs leave nothing behind");
});

test("run -- yes | head -c1: no stack trace, status 141, no QEMU or run dir left", async () => {
  // A shell reports 141 (128 + SIGPIPE) for any writer whose reader went away.
  assert.deepEqual(await wheellockIntoHead(["run", "--", "yes"]), { code: 141, stderr: "" });
  assert.deepEqual(runDirEntries(dataDir), []);
  const qemu = spawnSync("pgrep", ["-f", `qemu-system.*${dataDir}`], { encoding: "utf8" });
  assert.equal(qemu.stdout, "", "no QEMU left running");
});

test("version", () => {
  const r = wheellock(["version"]);
  assert.match(r.stdout, /^wheellock \d+\.\d+\.\d+\n$/);
});

/** The CLI on a real terminal: `script` gives it a PTY on stdin/stdout (and stderr). */
function atTerminal(args: string[]) {
  const command = [process.execPath, ...CLI, ...args].map((a) => `'${a}'`).join(" ");
  const child = spawn("script", ["-qfec", command, "/dev/null"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return {
    output: () => out,
    type: (keys: string) => child.stdin.write(keys),
    /** Resolves once the output so far matches (a slow CI machine gets 150 s). */
    waitFor: async (pattern: RegExp) => {
      const start = Date.now();
      while (!pattern.test(out)) {
        if (Date.now() - start > 150_000)
          throw new Error(`timed out waiting for ${pattern}; got ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    exited,
  };
}

test("run -it drives an interactive shell through a real PTY", async () => {
  const term = atTerminal(["run", "-it", "--", "sh"]);
  await term.waitFor(/# $/m);
  term.type("tty; echo $((6*7))\r");
  await term.waitFor(/42/);
  // Ctrl-C reaches the guest: it interrupts the sleep, not the CLI.
  term.type("sleep 30\r");
  await new Promise((r) => setTimeout(r, 1500));
  term.type("\x03");
  term.type("echo after-int\r");
  await term.waitFor(/after-int\r*\n/);
  term.type("exit 9\r");
  const code = await term.exited;
  assert.match(term.output(), /\/dev\/pts\/\d+/);
  assert.equal(code, 9);
});

test(
  "run -it --approve asks at the terminal (once, deny); --max-cpu-seconds stops a busy sandbox",
  { timeout: 6 * 60_000 },
  async () => {
    const seen: string[] = [];
    const upstream = createServer((req, res) => {
      seen.push(req.url ?? "");
      res.end("ok\n");
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
    const port = (upstream.address() as AddressInfo).port;
    const eventsFile = join(scratchDir("wl-cli-approve-"), "events.jsonl");
    // A TCG boot took 1.3 s of CPU here (an idle VM ~0.06 s a second), the two questions a few
    // more: the budget leaves room for a slow one (Debian's kernel) and the loop spends the rest.
    const maxCpuSeconds = 15;
    const term = atTerminal([
      "run",
      "-it",
      "--approve",
      "--approve-timeout",
      "120",
      "--max-cpu-seconds",
      String(maxCpuSeconds),
      "--events",
      eventsFile,
      "--allow-private-host",
      "--allow-host",
      "api.test",
      ...["api.test", "once.test", "deny.test"].flatMap((n) => ["--resolve", `${n}:127.0.0.1`]),
      "--",
      "sh",
    ]);
    try {
      const curl = (host: string, path: string) =>
        `curl -sS -m 150 -o /dev/null -w %{http_code} http://${host}:${port}${path}`;
      const questions = () => term.output().match(/allow \[o\]nce/g)?.length ?? 0;
      await term.waitFor(/# $/m);
      term.type(`echo R1=$(${curl("once.test", "/tty-once")})\r`);
      await term.waitFor(/wants GET http:\/\/once\.test:\d+\/tty-once .*allow \[o\]nce/);
      // The question names the command that asked (attribution).
      assert.match(term.output(), /exec \d+ \(curl [^)]*\) wants GET http:\/\/once\.test/);
      // Keys typed as a question appears answer nothing (a person typing into the guest).
      const afterGrace = () => new Promise((r) => setTimeout(r, ANSWER_GRACE_MS + 100));
      await afterGrace();
      term.type("o");
      await term.waitFor(/R1=200/);
      term.type(`echo R2=$(${curl("once.test", "/tty-again")})\r`);
      await term.waitFor(/wants GET http:\/\/once\.test:\d+\/tty-again/);
      assert.equal(questions(), 2, "once lets one request through: the next is asked again");
      await afterGrace();
      term.type("d");
      await term.waitFor(/R2=403/);
      assert.deepEqual(seen, ["/tty-once"]);
      // Keys reach the guest again once no question is open.
      term.type("echo typed-$((2+3))\r");
      await term.waitFor(/typed-5/);
      term.type("while :; do :; done\r");
      const code = await term.exited;
      assert.equal(code, 122, term.output());
      assert.match(
        term.output(),
        new RegExp(
          `wheellock: sandbox vm-[0-9a-f]{8} stopped: its VM used [0-9.]+ s of CPU time, ` +
            `more than ${maxCpuSeconds} s \\(maxCpuSeconds\\)\\r?\\n`,
        ),
      );
      assert.doesNotMatch(term.output(), /\n\s+at /, "no stack trace");
      const events = readFileSync(eventsFile, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, Record<string, unknown> | string>);
      const decided = events.flatMap((e) =>
        e.type === "approval" && typeof e.approval === "object" && e.approval.state === "decided"
          ? [e.approval.decision]
          : [],
      );
      assert.deepEqual(decided, ["once", "deny"]);
      const stopped = events.find(
        (e) =>
          e.type === "lifecycle" &&
          typeof e.lifecycle === "object" &&
          e.lifecycle.state === "stopped",
      );
      const lifecycle = stopped?.lifecycle as { code?: string; reason?: string } | undefined;
      assert.equal(lifecycle?.code, "ErrBudgetExceeded", JSON.stringify(stopped));
      assert.match(
        lifecycle?.reason ?? "",
        new RegExp(`more than ${maxCpuSeconds} s \\(maxCpuSeconds\\)`),
      );
      const usage = events.find((e) => e.type === "usage")?.usage as { cpuSeconds: number };
      assert.ok(usage.cpuSeconds > maxCpuSeconds, `usage ${JSON.stringify(usage)}`);
    } finally {
      upstream.close();
    }
  },
);

test("killing the CLI with SIGKILL leaves no QEMU behind", async () => {
  const child = spawn(process.execPath, [...CLI, "run", "--", "sleep", "120"], { stdio: "ignore" });
  // Wait until its VM is up (a run dir with a QEMU child of the CLI).
  const start = Date.now();
  let qemuPid: number | undefined;
  while (qemuPid === undefined) {
    if (Date.now() - start > 120_000) throw new Error("VM did not start");
    const r = spawnSync("pgrep", ["-P", String(child.pid), "-f", "qemu-system"], {
      encoding: "utf8",
    });
    if (r.status === 0) qemuPid = Number(r.stdout.trim().split("\n")[0]);
    else await new Promise((res) => setTimeout(res, 200));
  }
  child.kill("SIGKILL");
  const deadline = Date.now() + 10_000;
  let alive = true;
  while (alive && Date.now() < deadline) {
    try {
      process.kill(qemuPid, 0);
      await new Promise((res) => setTimeout(res, 100));
    } catch {
      alive = false;
    }
  }
  assert.equal(alive, false, "QEMU must die with its owner");
  // The next wheellock process sweeps the dead owner's run dir.
  assert.equal(runDirEntries(dataDir).length, 1);
  wheellock(["run", "--", "true"]);
  assert.deepEqual(runDirEntries(dataDir), []);
});
