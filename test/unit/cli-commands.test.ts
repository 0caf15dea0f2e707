// The CLI surface without a VM: --help on every command, one-line errors, shell completion,
// diagnose, and the messages for sandboxes that do not exist.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { totalmem } from "node:os";
import { join } from "node:path";
import { scratchDir } from "../helpers/vm.js";

const CLI = ["--import", "tsx", join(import.meta.dirname, "../../src/cli/main.ts")];
const env = { ...process.env, WHEELLOCK_DATA_DIR: scratchDir("wheellock-cli-") };

function wheellock(args: string[]) {
  const r = spawnSync(process.execPath, [...CLI, ...args], {
    encoding: "utf8",
    env,
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const COMMANDS = [
  "run",
  "setup",
  "version",
  "exec",
  "list",
  "inspect",
  "kill",
  "rm",
  "prune",
  "gc",
  "log",
  "port-forward",
  "allow-list",
  "allow-list add",
  "allow-list delete",
  "cp",
  "diagnose",
  "completion",
  "volume",
  "volume create",
  "volume ls",
  "volume rm",
];

test("every command has --help", () => {
  for (const command of COMMANDS) {
    const r = wheellock([...command.split(" "), "--help"]);
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    // Aliases show as `list|ls`.
    assert.match(r.stdout, new RegExp(`^Usage: wheellock ${command}(\\|\\w+)? `), command);
  }
  const top = wheellock(["--help"]);
  for (const command of COMMANDS.filter((c) => !c.includes(" "))) {
    assert.match(top.stdout, new RegExp(`\\n  ${command}[ |]`), command);
  }
});

test("errors are one line; unknown sandboxes are named", () => {
  for (const args of [
    ["exec", "vm-0badc0de", "--", "true"],
    ["inspect", "vm-0badc0de"],
    ["kill", "vm-0badc0de"],
    ["log", "vm-0badc0de"],
  ]) {
    const r = wheellock(args);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "wheellock: sandbox not found: vm-0badc0de\n");
  }
  const missing = wheellock(["exec"]);
  assert.deepEqual(
    [missing.code, missing.stderr],
    [1, "wheellock: missing required argument 'id'\n"],
  );
  assert.equal(
    wheellock(["rm"]).stderr,
    "wheellock: invalid configuration: sandbox id required (or use --stopped)\n",
  );
  assert.match(
    wheellock(["run", "-d", "-it", "--", "sh"]).stderr,
    /--detach cannot be combined with -t/,
  );
  assert.match(wheellock(["run", "-p", "99999", "--rm=false"]).stderr, /port must be 1-65535/);
  assert.equal(
    wheellock(["cp", "vm-0badc0de:/x", "/nonexistent-dir/x"]).stderr,
    "wheellock: invalid configuration: no such host directory: /nonexistent-dir\n",
  );
  // A bad --mode is refused before anything is copied, not passed on as NaN.
  assert.equal(
    wheellock(["cp", "--mode", "abc", "/etc/hostname", "vm-0badc0de:/x"]).stderr,
    'wheellock: invalid configuration: invalid --mode "abc": expected octal permission bits like 644\n',
  );
  // The detached supervisor's error comes back as one line, and leaves no record behind.
  const bad = wheellock(["run", "-d", "--memory", "10"]);
  assert.deepEqual(
    [bad.code, bad.stdout, bad.stderr],
    [1, "", "wheellock: invalid configuration: memoryMb must be an integer >= 64, got 10\n"],
  );
  assert.equal(wheellock(["ls", "--json"]).stdout, "[]\n");
});

test("huge sizes and unrunnable platforms are refused in one line, no VM (review rev19 L1-L3)", () => {
  const hostMb = Math.floor(totalmem() / 2 ** 20);
  const memory = wheellock(["run", "--memory", "99999999999", "--", "true"]);
  assert.deepEqual(
    [memory.code, memory.stderr],
    [
      1,
      `wheellock: invalid configuration: memoryMb 99999999999 is more than the host's ${hostMb} MiB of memory\n`,
    ],
  );
  const volume = wheellock(["volume", "create", "y", "--size", "99999999999"]);
  assert.deepEqual(
    [volume.code, volume.stderr],
    [
      1,
      "wheellock: volume size must be a whole number of MB from 8 to 16777216 (16 TiB), got 99999999999\n",
    ],
  );
  for (const [platform, why] of [
    ["windows/x", "platform windows/x cannot run here: sandboxes run linux/amd64 guests"],
    ["linux/arm64", "platform linux/arm64 cannot run here: sandboxes run linux/amd64 guests"],
    ["linux", 'invalid platform "linux": expected os/arch[/variant], e.g. linux/amd64'],
  ] as const) {
    const r = wheellock(["run", "--platform", platform, "--", "true"]);
    assert.deepEqual(
      [r.code, r.stdout, r.stderr],
      [1, "", `wheellock: invalid configuration: ${why}\n`],
    );
  }
});

test("list, gc and prune on an empty data dir", () => {
  assert.equal(wheellock(["list"]).stdout, "ID  STATUS  IMAGE  CREATED  PID  PORTS\n");
  assert.equal(wheellock(["ls", "--json"]).stdout, "[]\n");
  assert.equal(wheellock(["gc"]).stdout, "Reconciled 0 sandboxes\n");
  assert.equal(wheellock(["prune"]).stdout, "Pruned 0 sandboxes\n");
});

test("completion scripts are valid and list the commands", () => {
  const bash = wheellock(["completion", "bash"]);
  assert.equal(bash.code, 0);
  assert.match(bash.stdout, /complete -F _wheellock wheellock/);
  assert.match(bash.stdout, /exec\) opts="-i --interactive -t --tty/);
  const check = spawnSync("bash", ["-n"], { input: bash.stdout, encoding: "utf8" });
  assert.equal(check.status, 0, check.stderr);
  assert.match(
    wheellock(["completion", "fish"]).stdout,
    /complete -c wheellock -n "__fish_use_subcommand" -a port-forward/,
  );
  assert.match(wheellock(["completion", "zsh"]).stdout, /^#compdef wheellock/);
  assert.equal(wheellock(["completion", "tcsh"]).code, 1);
});

test("diagnose reports every check, as text and JSON, and its exit status follows failures", () => {
  const json = wheellock(["diagnose", "--json"]);
  const report = JSON.parse(json.stdout) as {
    ok: boolean;
    checks: { name: string; status: string }[];
  };
  assert.deepEqual(
    report.checks.map((c) => c.name),
    [
      "qemu",
      "setpriv",
      "kernel",
      "accelerator",
      "image",
      "disk-space-data",
      "disk-space-cache",
      "ca",
    ],
  );
  assert.equal(json.code, report.ok ? 0 : 1);
  assert.equal(
    report.ok,
    report.checks.every((c) => c.status !== "fail"),
  );
  const broken = spawnSync(process.execPath, [...CLI, "diagnose"], {
    encoding: "utf8",
    env: { ...env, WHEELLOCK_QEMU: "/nonexistent/qemu" },
  });
  assert.equal(broken.status, 1);
  assert.match(broken.stdout, /^✗ qemu: WHEELLOCK_QEMU=\/nonexistent\/qemu does not exist$/m);
});

test("--rm=false is the reference CLI's spelling of --no-rm, but only before the command", async () => {
  const { normalizeRmFlag } = await import("../../src/cli/flags.js");
  assert.deepEqual(normalizeRmFlag(["run", "--rm=false", "--", "echo", "--rm=false"]), [
    "run",
    "--no-rm",
    "--",
    "echo",
    "--rm=false",
  ]);
  assert.deepEqual(normalizeRmFlag(["run", "--rm=true", "sh"]), ["run", "--rm", "sh"]);
});

test("--events to a path that cannot be written is one line, before any sandbox starts", () => {
  for (const detach of [[], ["-d"]]) {
    const r = wheellock([
      "run",
      ...detach,
      "--events",
      "/nonexistent-dir/events.jsonl",
      "--",
      "true",
    ]);
    assert.deepEqual(
      [r.code, r.stdout, r.stderr],
      [
        1,
        "",
        "wheellock: invalid configuration: --events: cannot open /nonexistent-dir/events.jsonl: ENOENT\n",
      ],
    );
  }
  assert.equal(wheellock(["ls", "--json"]).stdout, "[]\n");
});

test("push --chunk-size 0 is refused in one line (it meant 1-byte chunks: a push that never ends)", () => {
  // The image need not exist: the flag is checked before anything is read or sent.
  const r = wheellock(["push", "nosuch:1", "127.0.0.1:9/x:1", "--chunk-size", "0"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^wheellock: .*--chunk-size must be at least 1, got "0"\n$/);
});
