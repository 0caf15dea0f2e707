// The sandbox API's behaviour, as one table of cases that every kind of sandbox must pass:
// the VM in this process, a detached one through `Sandbox.connect`, and (later) one served
// by `wheellock serve`. Each kind runs the same cases on one shared sandbox; the sandbox must
// have been created with `SANDBOX_OPTIONS`.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { waitUntil } from "./lifecycle.js";
import {
  ErrFile,
  ErrTimeout,
  ErrVMNotRunning,
  type SandboxApi,
  type SandboxOptions,
} from "../../src/index.js";

const MIB = 1024 * 1024;

export const SANDBOX_OPTIONS: SandboxOptions = {
  hostname: "shared-vm",
  env: { SANDBOX_WIDE: "yes" },
};

/** `current()` is the sandbox under test (created in the caller's `before`). */
export function sandboxCases(current: () => SandboxApi): void {
  describe("exec", () => {
    test("exit codes come back as the command's status", async () => {
      const sb = current();
      assert.equal((await sb.exec("true")).exitCode, 0);
      assert.equal((await sb.exec("exit 3")).exitCode, 3);
      assert.equal((await sb.exec(["sh", "-c", "exit 255"])).exitCode, 255);
    });

    test("a command killed by a signal reports 128+N and the signal name", async () => {
      const sb = current();
      const r = await sb.exec("kill -TERM $$");
      assert.equal(r.exitCode, 128 + 15);
      assert.equal(r.signal, "SIGTERM");
    });

    test("stdout and stderr are kept apart", async () => {
      const sb = current();
      const r = await sb.exec("echo out1; echo err1 >&2; echo out2; echo err2 >&2");
      assert.equal(r.stdout, "out1\nout2\n");
      assert.equal(r.stderr, "err1\nerr2\n");
    });

    test("a missing program exits 127 with a message, like a shell", async () => {
      const sb = current();
      const r = await sb.exec(["/no/such/program"]);
      assert.equal(r.exitCode, 127);
      assert.match(r.stderr, /no\/such\/program/);
    });

    test("stdin round trip, including EOF", async () => {
      const sb = current();
      const payload = randomBytes(300_000).toString("base64");
      const r = await sb.exec("cat", { stdin: payload });
      assert.equal(r.stdout, payload);
      const counted = await sb.exec("wc -c", {
        stdin: Readable.from([Buffer.from("abc"), Buffer.from("de")]),
      });
      assert.equal(counted.stdout.trim(), "5");
    });

    test("env: sandbox-wide, per command, and defaults", async () => {
      const sb = current();
      const r = await sb.exec('echo "$SANDBOX_WIDE $PER_CMD $HOME $PATH"', {
        env: { PER_CMD: "a b" },
      });
      assert.equal(
        r.stdout.trim(),
        "yes a b /root /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      );
    });

    test("working directory", async () => {
      const sb = current();
      assert.equal((await sb.exec("pwd", { cwd: "/tmp" })).stdout, "/tmp\n");
      assert.equal((await sb.exec("pwd")).stdout, "/\n");
    });

    test("user as uid, uid:gid and name", async () => {
      const sb = current();
      assert.equal((await sb.exec("id -u; id -g", { user: "1000" })).stdout, "1000\n1000\n");
      assert.equal((await sb.exec("id -u; id -g", { user: "1234:4321" })).stdout, "1234\n4321\n");
      const nobody = await sb.exec("id -un; echo $HOME", { user: "nobody" });
      assert.equal(nobody.stdout.split("\n")[0], "nobody");
      assert.equal((await sb.exec("id -u")).stdout, "0\n");
    });

    test("an unknown user name is a clear error", async () => {
      const sb = current();
      await assert.rejects(sb.exec("true", { user: "no-such-user" }), /unknown user: no-such-user/);
    });

    test("hostname is applied", async () => {
      const sb = current();
      assert.equal((await sb.exec("hostname")).stdout.trim(), "shared-vm");
    });

    test("10 concurrent execs each get their own output", async () => {
      const sb = current();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          sb.exec(`sleep 0.$((RANDOM % 5)); echo run-${i}; exit ${i}`),
        ),
      );
      results.forEach((r, i) => {
        assert.equal(r.stdout, `run-${i}\n`);
        assert.equal(r.exitCode, i);
      });
    });

    test("50 MB of output streams through with bounded host memory", async () => {
      const sb = current();
      const proc = sb.spawn("head -c 52428800 /dev/zero");
      proc.stdin.end();
      let total = 0;
      let peakBuffered = 0;
      for await (const chunk of proc.stdout) {
        total += (chunk as Buffer).length;
        peakBuffered = Math.max(peakBuffered, proc.stdout.readableLength);
      }
      assert.equal((await proc.wait()).exitCode, 0);
      assert.equal(total, 52428800);
      // The protocol's guest->host window (1 MiB) bounds what can pile up on the host.
      assert.ok(peakBuffered <= 2 * MIB, `host buffered ${peakBuffered} bytes`);
    });

    test("a reader that stops reading stops the guest producer", async () => {
      const sb = current();
      const proc = sb.spawn("head -c 20000000 /dev/zero; echo done >&2");
      proc.stdin.end();
      proc.stdout.pause();
      await new Promise((r) => setTimeout(r, 1500));
      // Nothing read: at most the window (1 MiB) can have arrived.
      assert.ok(proc.stdout.readableLength <= 2 * MIB, `buffered ${proc.stdout.readableLength}`);
      let total = proc.stdout.readableLength;
      proc.stdout.on("data", (c: Buffer) => (total += c.length));
      proc.stdout.resume();
      await proc.wait();
      assert.equal(total >= 20000000, true);
    });

    test("output still piped when the command exits arrives whole, however late it is read", async () => {
      const sb = current();
      // More than the window (1 MiB), less than the window plus the pipe: the command exits
      // with the rest in its pipe while the agent waits for credit. The agent used to count
      // that wait as 100 ms of silence and end the stream without the rest.
      const bytes = MIB + 200 * 1024;
      const marker = `/tmp/late-reader-${process.pid}`;
      const proc = sb.spawn(`head -c ${bytes} /dev/zero; touch ${marker}`);
      proc.stdin.end();
      proc.stdout.pause();
      await waitUntil("the command has exited", async () => {
        return (await sb.exec(["test", "-e", marker])).exitCode === 0;
      });
      await new Promise((r) => setTimeout(r, 500));
      let total = 0;
      proc.stdout.on("data", (c: Buffer) => (total += c.length));
      proc.stdout.resume();
      assert.equal((await proc.wait()).exitCode, 0);
      await sb.exec(["rm", "-f", marker]);
      assert.equal(total, bytes);
    });

    test("PTY: a terminal with the requested size, resizable", async () => {
      const sb = current();
      const proc = sb.spawn("stty size; read line; stty size; tty", {
        tty: { rows: 33, cols: 101 },
      });
      let out = "";
      proc.stdout.on("data", (c: Buffer) => (out += c.toString()));
      await proc.pid;
      await waitFor(() => out.includes("33 101"));
      proc.resize(40, 120);
      proc.stdin.write("go\n");
      const exit = await proc.wait();
      assert.equal(exit.exitCode, 0);
      assert.match(out, /33 101/);
      assert.match(out, /40 120/);
      assert.match(out, /\/dev\/pts\/\d+/);
    });

    test("signals reach the command's process group", async () => {
      const sb = current();
      const proc = sb.spawn(
        "trap 'echo got-int; exit 7' INT; echo ready; while true; do sleep 0.1; done",
      );
      proc.stdin.end();
      let out = "";
      proc.stdout.on("data", (c: Buffer) => (out += c.toString()));
      await waitFor(() => out.includes("ready"));
      proc.kill("SIGINT");
      const exit = await proc.wait();
      assert.equal(exit.exitCode, 7);
      assert.match(out, /got-int/);
    });

    test("per-command timeout kills the command", async () => {
      const sb = current();
      await assert.rejects(sb.exec("sleep 30", { timeoutMs: 500 }), ErrTimeout);
      // The sandbox is still usable afterwards.
      assert.equal((await sb.exec("echo alive")).stdout, "alive\n");
    });
  });

  describe("files", () => {
    test("write and read back a 20 MB file by checksum", async () => {
      const sb = current();
      const data = randomBytes(20 * 1024 * 1024);
      await sb.writeFile("/tmp/big/nested/blob.bin", data, { mode: 0o600 });
      const sum = createHash("sha256").update(data).digest("hex");
      const guestSum = await sb.exec("sha256sum /tmp/big/nested/blob.bin");
      assert.equal(guestSum.stdout.split(" ")[0], sum);
      const back = await sb.readFile("/tmp/big/nested/blob.bin");
      assert.equal(createHash("sha256").update(back).digest("hex"), sum);
      const info = await sb.stat("/tmp/big/nested/blob.bin");
      assert.equal(info.sizeBytes, data.length);
      assert.equal(info.mode & 0o777, 0o600);
    });

    test("list, stat, mkdir -p, remove", async () => {
      const sb = current();
      await sb.mkdir("/srv/a/b/c");
      await sb.writeFile("/srv/a/file.txt", "hello");
      await sb.exec("ln -s file.txt /srv/a/link");
      const names = (await sb.listFiles("/srv/a")).map(
        (f) => `${f.name}:${f.isDir ? "d" : f.isSymlink ? "l" : "f"}`,
      );
      assert.deepEqual(names, ["b:d", "file.txt:f", "link:l"]);
      const link = await sb.stat("/srv/a/link", { followSymlinks: false });
      assert.equal(link.linkTarget, "file.txt");
      assert.equal((await sb.stat("/srv/a/link")).sizeBytes, 5);
      await sb.remove("/srv/a", { recursive: true });
      await assert.rejects(
        sb.stat("/srv/a"),
        (err: unknown) => err instanceof ErrFile && err.errno === "ENOENT",
      );
    });

    test("reading a missing file or a directory fails clearly", async () => {
      const sb = current();
      await assert.rejects(
        sb.readFile("/nope/missing"),
        (err: unknown) => err instanceof ErrFile && err.errno === "ENOENT",
      );
      await assert.rejects(sb.readFile("/etc"), ErrFile);
    });

    test("files written as root can be owned by another user", async () => {
      const sb = current();
      await sb.writeFile("/tmp/owned.txt", "x", { uid: 1000, gid: 1000 });
      assert.equal((await sb.exec("stat -c %u:%g /tmp/owned.txt")).stdout.trim(), "1000:1000");
    });
  });

  describe("ports, allowlist and file options", () => {
    test("openPort reaches a guest TCP service; a closed port is refused", async () => {
      const sb = current();
      // A one-shot upper-casing echo service (perl is in the default image).
      const server = sb.spawn([
        "perl",
        "-MIO::Socket::INET",
        "-e",
        '$s=IO::Socket::INET->new(LocalAddr=>"127.0.0.1",LocalPort=>7070,Listen=>1,ReuseAddr=>1) or die; print "listening\\n"; $|=1; $c=$s->accept; while(<$c>){ print $c uc }',
      ]);
      server.stdin.end();
      let said = "";
      server.stdout.on("data", (c: Buffer) => (said += c.toString()));
      await waitFor(() => said.includes("listening"));
      const conn = sb.openPort(7070);
      await conn.connected;
      conn.writable.end("hello port\n");
      const chunks: Buffer[] = [];
      for await (const chunk of conn.readable) chunks.push(chunk as Buffer);
      assert.equal(Buffer.concat(chunks).toString(), "HELLO PORT\n");
      await conn.done;
      assert.equal((await server.wait()).exitCode, 0);
      await assert.rejects(sb.openPort(7071).connected, /ECONNREFUSED|refused/i);
    });

    test("an open-mode sandbox has no allowlist to change", async () => {
      const sb = current();
      assert.deepEqual(await sb.allowedHosts(), {
        intercepting: false,
        hosts: [],
        approvedHosts: [],
        emptyDeniesAll: false,
      });
      await assert.rejects(sb.allowHosts("example.test"), { code: "ErrInvalidConfig" });
      await assert.rejects(sb.disallowHosts("example.test"), { code: "ErrInvalidConfig" });
    });

    test("readFileStream streams; mkdir takes a mode; a missing path is ErrFile ENOENT", async () => {
      const sb = current();
      await sb.mkdir("/tmp/modes/deep", { mode: 0o750 });
      assert.equal((await sb.stat("/tmp/modes/deep")).mode & 0o777, 0o750);
      await sb.writeFile("/tmp/modes/deep/f", Buffer.alloc(3 * 1024 * 1024, 7));
      let total = 0;
      for await (const chunk of sb.readFileStream("/tmp/modes/deep/f"))
        total += (chunk as Buffer).length;
      assert.equal(total, 3 * 1024 * 1024);
      await assert.rejects(
        sb.listFiles("/tmp/modes/missing"),
        (err: unknown) => err instanceof ErrFile && err.errno === "ENOENT",
      );
    });
  });

  describe("hardening (not privileged)", () => {
    test("commands cannot load modules, reboot, ptrace the agent, or administer the network", async () => {
      const sb = current();
      const r = await sb.exec(
        "grep CapBnd /proc/self/status; cat /proc/self/status | grep NoNewPrivs; " +
          "echo 1 > /proc/sys/kernel/sysrq 2>/dev/null; " +
          "busybox reboot -f 2>&1; echo rebooted=$?",
      );
      const bounding = BigInt(`0x${/CapBnd:\s+([0-9a-f]+)/.exec(r.stdout)?.[1] ?? "0"}`);
      for (const cap of [12n, 13n, 16n, 17n, 19n, 21n, 22n, 38n, 39n]) {
        assert.equal((bounding >> cap) & 1n, 0n, `capability ${cap} must be dropped`);
      }
      assert.match(r.stdout, /NoNewPrivs:\s+1/);
      // Root may write sysctls without any capability: /proc/sys is read-only for commands
      // (the local port range was part of an attack on attribution), and stays so.
      const sysctl = await sb.exec(
        "echo '40000 40000' > /proc/sys/net/ipv4/ip_local_port_range; " +
          "mount -o remount,rw /proc/sys 2>/dev/null || echo remount refused; " +
          "cat /proc/sys/net/ipv4/ip_local_port_range",
      );
      assert.match(sysctl.stderr, /Read-only file system/);
      assert.match(sysctl.stdout, /^remount refused\n/);
      assert.doesNotMatch(sysctl.stdout, /40000\s+40000/);
      // The VM survived the reboot attempt.
      assert.equal((await sb.exec("echo still-here")).stdout, "still-here\n");
    });

    test("guest processes cannot open the control port to inject frames", async () => {
      const sb = current();
      const r = await sb.exec(
        "dev=$(basename $(dirname $(grep -l '^wheellock.ctl$' /sys/class/virtio-ports/*/name))); " +
          'echo dev=$dev; printf "W\\001garbage" > /dev/$dev && echo opened',
      );
      assert.match(r.stdout, /dev=vport\d+p\d+/);
      assert.doesNotMatch(r.stdout, /opened/);
      assert.match(r.stderr, /busy/i);
      assert.equal((await sb.exec("echo channel-intact")).stdout, "channel-intact\n");
    });

    test("a process cannot open the agent's memory", async () => {
      const sb = current();
      const r = await sb.exec(
        "cat /proc/1/mem 2>&1 | head -c 200; cat /proc/1/environ 2>&1 | head -c 100",
      );
      assert.match(r.stdout, /Permission denied|Operation not permitted|Input\/output error/);
    });
  });

  describe("events", () => {
    test("each exec is reported with command, exit code and duration", async () => {
      const sb = current();
      const events = sb.events();
      await sb.exec(["sh", "-c", "exit 4"]);
      const { value } = await events.next();
      await events.return?.();
      assert.equal(value?.type, "exec");
      if (value?.type === "exec") {
        assert.deepEqual(value.exec.command, ["sh", "-c", "exit 4"]);
        assert.equal(value.exec.exitCode, 4);
        assert.ok(value.exec.durationMs >= 0);
      }
    });
  });

  // Last: it closes the shared sandbox.
  describe("close", () => {
    test("close is idempotent, and later calls reject with ErrVMNotRunning", async () => {
      const sb = current();
      await sb.close();
      await sb.close();
      await assert.rejects(sb.exec("true"), ErrVMNotRunning);
      await assert.rejects(sb.readFile("/etc/hostname"), ErrVMNotRunning);
      await assert.rejects(sb.allowedHosts(), ErrVMNotRunning);
    });
  });
}

async function waitFor(cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}
