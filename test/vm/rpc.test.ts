// `wheellock rpc` as matchlock's SDKs drive it, end to end on real VMs (issue 12; reference/
// matchlock-rpc.md §14.1): one process and one VM (the default image, built offline by setup)
// for exec modes, files, the memory workspace and its events, port forwarding, the CLI on an
// rpc sandbox, and network callbacks against an HTTP server on 127.0.0.1. (An image from a
// local registry, the entrypoint's early failure and EOF mid-command: rpc-image.test.ts.)
import assert from "node:assert/strict";
import { createServer as httpServer, type IncomingHttpHeaders, type Server } from "node:http";
import {
  createServer,
  connect,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { waitUntil, wheellock } from "../helpers/lifecycle.js";
import { isolateDataDir, scratchDir } from "../helpers/vm.js";
import { type Message, type WireClient } from "../unit/rpc-client.js";
import {
  EXIT_BOUND_MS,
  endInput,
  qemuOf,
  startRpcProcess,
  type RpcProcess,
} from "../unit/rpc-process.js";

isolateDataDir();
const scratch = scratchDir("wheellock-rpc-vm-");
const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64");
const text = (m: Message, key = "stdout") =>
  Buffer.from((m.result?.[key] as string) ?? "", "base64").toString();

function startRpc(): RpcProcess {
  return startRpcProcess();
}

/** The host side of the guest's HTTP requests: records each request's path and headers. */
const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
let http: Server;
let httpPort = 0;
/** The client's callback socket (what the SDKs serve): records lines, answers by path. */
const hookLines: Array<Record<string, unknown>> = [];
let hooks: NetServer;
const hookPath = join(scratch, "hook.sock");

function answerHook(socket: Socket, line: Record<string, unknown>): void {
  const headers = (line.request_headers ?? {}) as Record<string, string[]>;
  if (line.phase === "after")
    return void socket.end(
      `${JSON.stringify({ response: { set_body_base64: b64("body from the hook\n") } })}\n`,
    );
  if (line.path === "/blocked") return void socket.end('{"action":"block"}\n');
  if (line.path === "/silent") return; // never answers: timeout_ms, then fail-open
  socket.end(
    `${JSON.stringify({ action: "mutate", request: { headers: { ...headers, "X-Hooked": ["yes"] } } })}\n`,
  );
}

before(async () => {
  http = httpServer((req, res) => {
    seen.push({ url: req.url ?? "", headers: req.headers });
    res.end(`host saw ${req.url}\n`);
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  httpPort = (http.address() as AddressInfo).port;
  hooks = createServer((socket) => {
    let buf = "";
    socket.on("error", () => undefined);
    socket.on("data", (d) => {
      buf += d;
      if (!buf.includes("\n")) return;
      const line = JSON.parse(buf.slice(0, buf.indexOf("\n"))) as Record<string, unknown>;
      hookLines.push(line);
      answerHook(socket, line);
    });
  });
  await new Promise<void>((r) => hooks.listen(hookPath, r));
});

after(() => {
  http.close();
  hooks.close();
});

describe("one rpc process, one VM", () => {
  let rpc: RpcProcess;
  let c: WireClient;
  let id = "";

  before(async () => {
    rpc = startRpc();
    c = rpc.client;
    const r = await c.call(
      "create",
      {
        image: "default",
        resources: { cpus: 1, memory_mb: 384, disk_size_mb: 1024, timeout_seconds: 1800 },
        env: { FROM_ENV: "yes" },
        launch_entrypoint: true,
        image_config: {
          entrypoint: ["/bin/sh", "-c"],
          cmd: ["echo entrypoint-up; exec sleep 3600"],
        },
        vfs: {
          workspace: "/workspace",
          mounts: { "/workspace": { type: "memory" } },
          interception: {
            emit_events: true,
            rules: [{ ops: ["remove"], path: "/workspace/keep/*", action: "block" }],
          },
        },
        network: {
          allowed_hosts: ["api.test"],
          add_hosts: [{ host: "api.test", ip: "10.0.2.2" }],
          block_private_ips: false,
          intercept: true,
          interception: {
            callback_socket: hookPath,
            rules: [
              {
                name: "static",
                hosts: ["api.test"],
                path: "/static",
                set_headers: { "x-static": "1" },
              },
              {
                name: "cb",
                hosts: ["api.test"],
                path: "/[bhs]*",
                callback_id: "network_hook_2",
                timeout_ms: 3000,
              },
              {
                name: "after",
                phase: "after",
                hosts: ["api.test"],
                path: "/after",
                callback_id: "network_hook_3",
                timeout_ms: 10_000,
              },
            ],
          },
        },
      },
      600_000,
    );
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    id = r.result?.id as string;
  });

  after(async () => {
    if (!c.ended) c.input.end();
    await rpc.exited;
  });

  test("create answers a vm- id; the sandbox is listed as running and reachable from the CLI", async () => {
    assert.match(id, /^vm-[0-9a-f]{8}$/);
    const listed = await wheellock(["list"]);
    assert.match(listed.stdout, new RegExp(`${id}\\s+running`));
    const viaCli = await wheellock(["exec", id, "--", "echo", "via the CLI"]);
    assert.deepEqual([viaCli.code, viaCli.stdout], [0, "via the CLI\n"]);
  });

  test("exec: env, the workspace as working dir, stdout/stderr apart, exit code", async () => {
    const r = await c.call(
      "exec",
      { command: "echo $FROM_ENV; pwd; echo oops >&2; exit 3" },
      60_000,
    );
    assert.deepEqual(
      [r.result?.exit_code, text(r), text(r, "stderr")],
      [3, "yes\n/workspace\n", "oops\n"],
    );
    const dir = await c.call("exec", { command: "pwd", working_dir: "/tmp" }, 60_000);
    assert.equal(text(dir), "/tmp\n");
  });

  test("exec_stream, exec_pipe and exec_tty (size, resize, Ctrl-D at EOF)", async () => {
    const s = c.request("exec_stream", {
      command: "echo one; sleep 0.3; echo two >&2; echo three",
    });
    assert.equal((await c.response(s, 60_000)).result?.exit_code, 0);
    assert.equal(c.data(s, "exec_stream.stdout"), "one\nthree\n");
    assert.equal(c.data(s, "exec_stream.stderr"), "two\n");
    const p = c.request("exec_pipe", { command: "tr a-z A-Z; echo done >&2" });
    await c.waitFor((m) => m.method === "exec_pipe.ready" && m.params?.id === p, 60_000);
    c.send({
      jsonrpc: "2.0",
      method: "exec_pipe.stdin",
      id: 9001,
      params: { id: p, data: b64("from ") },
    });
    c.send({ jsonrpc: "2.0", method: "exec_pipe.stdin", params: { id: p, data: b64("stdin\n") } });
    c.send({ jsonrpc: "2.0", method: "exec_pipe.stdin_eof", params: { id: p } });
    assert.equal((await c.response(p, 60_000)).result?.exit_code, 0);
    assert.equal(c.data(p, "exec_pipe.stdout"), "FROM STDIN\n");
    assert.equal(c.data(p, "exec_pipe.stderr"), "done\n");
    const t = c.request("exec_tty", {
      command: "stty size; read x; stty size; cat",
      rows: 30,
      cols: 100,
    });
    await c.waitFor(() => c.data(t, "exec_tty.stdout").includes("30 100"), 60_000);
    c.send({ jsonrpc: "2.0", method: "exec_tty.resize", params: { id: t, rows: 50, cols: 132 } });
    c.send({ jsonrpc: "2.0", method: "exec_tty.stdin", params: { id: t, data: b64("go\r") } });
    await c.waitFor(() => c.data(t, "exec_tty.stdout").includes("50 132"), 60_000);
    c.send({ jsonrpc: "2.0", method: "exec_tty.stdin_eof", params: { id: t } });
    const tty = await c.response(t, 60_000);
    assert.equal(tty.result?.exit_code, 0);
    assert.equal(c.notes(t, "exec_tty.stderr").length, 0);
  });

  test("cancel ends a running command with -32003 and the session goes on", async () => {
    const id = c.request("exec", { command: "sleep 600" });
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual((await c.call("cancel", { id })).result, { cancelled: true });
    assert.equal((await c.response(id, 60_000)).error?.code, -32003);
    // Only the entrypoint's sleep is left: the guest killed the cancelled one.
    const sleeps = async () =>
      text(
        await c.call(
          "exec",
          { command: "cat /proc/[0-9]*/comm 2>/dev/null | grep -cx sleep" },
          60_000,
        ),
      ).trim();
    // The guest kills and reaps it asynchronously: poll with a deadline (a loaded TCG guest
    // can take seconds), not a fixed number of tries.
    let count = "";
    await waitUntil(
      "the cancelled sleep is gone",
      async () => (count = await sleeps()) === "1",
      120_000,
    );
    assert.equal(count, "1");
  });

  test("files on the root disk and the memory workspace; file events; the workspace's block rule", async () => {
    const bytes = Buffer.from([0, 1, 2, 255, 10, 13, 0x80]);
    assert.deepEqual(
      (
        await c.call(
          "write_file",
          { path: "/tmp/deep/new/f.bin", content: b64(bytes), mode: 0o600 },
          60_000,
        )
      ).result,
      {},
    );
    assert.deepEqual(
      Buffer.from(
        (await c.call("read_file", { path: "/tmp/deep/new/f.bin" }, 60_000)).result
          ?.content as string,
        "base64",
      ),
      bytes,
    );
    const from = c.messages.length;
    await c.call("write_file", { path: "/workspace/keep/a.txt", content: b64("hello") }, 60_000);
    const list = await c.call("list_files", { path: "/workspace/keep" }, 60_000);
    const [entry] = list.result?.files as Array<Record<string, unknown>>;
    assert.deepEqual(
      [entry?.name, entry?.size, entry?.mode, entry?.is_dir],
      ["a.txt", 5, 0o644, false],
    );
    assert.equal(typeof entry?.mod_time, "string");
    const dirs = await c.call("list_files", { path: "/workspace" }, 60_000);
    const names = (
      dirs.result?.files as Array<{ name: string; is_dir: boolean; mode: number }>
    ).map((f) => [f.name, f.is_dir, f.mode >= 2 ** 31]);
    assert.deepEqual(names, [["keep", true, true]]);
    const write = await c.waitFor(
      (m) => m.method === "event" && (m.params?.file as { op?: string })?.op === "write",
      30_000,
      from,
    );
    assert.deepEqual((write.params as { file: object }).file, {
      op: "write",
      path: "/workspace/keep/a.txt",
      size: 5,
    });
    const rm = await c.call(
      "exec",
      { command: "rm /workspace/keep/a.txt; cat /workspace/keep/a.txt" },
      60_000,
    );
    assert.match(text(rm, "stderr"), /Operation not permitted/);
    assert.equal(text(rm), "hello");
    assert.equal((await c.call("read_file", { path: "/nope" }, 60_000)).error?.code, -32002);
  });

  test("port_forward: a host port reaches a guest TCP service", async () => {
    const server =
      'setsid perl -MIO::Socket::INET -e \'$s=IO::Socket::INET->new(LocalAddr=>"127.0.0.1",LocalPort=>7070,Listen=>4,ReuseAddr=>1) or die;' +
      " while($c=$s->accept){ $l=<$c>; print $c uc $l; close $c }' </dev/null >/dev/null 2>&1 &";
    await c.call("exec", { command: server }, 60_000);
    const r = await c.call(
      "port_forward",
      { forwards: [{ local_port: 0, remote_port: 7070 }], addresses: ["127.0.0.1"] },
      60_000,
    );
    const [b] = r.result?.bindings as Array<{
      address: string;
      local_port: number;
      remote_port: number;
    }>;
    assert.deepEqual([b?.address, b?.remote_port], ["127.0.0.1", 7070]);
    let answer = "";
    for (let i = 0; i < 50 && answer === ""; i++) {
      answer = await new Promise<string>((resolve) => {
        const s = connect(b?.local_port ?? 0, "127.0.0.1", () => s.write("hello guest\n"));
        let got = "";
        s.on("data", (d) => (got += d));
        s.on("close", () => resolve(got));
        s.on("error", () => resolve(""));
      });
      if (answer === "") await new Promise((r2) => setTimeout(r2, 200));
    }
    assert.equal(answer, "HELLO GUEST\n");
  });

  test("network callbacks: mutate before the request leaves, block, fail-open on silence, rewrite the response; events", async () => {
    // The body, then the status on a line of its own; the failure instead when there is none.
    // `command` runs under `sh -c`, so the URL is quoted: an unquoted `&` in the query sends curl
    // to the background, the shell exits at once and exec answers with no output at all.
    const curl = async (path: string) => {
      const r = await c.call(
        "exec",
        { command: `curl -sS -m 60 -w '\\n%{http_code}' 'http://api.test:${httpPort}${path}'` },
        120_000,
      );
      const failure = { error: r.error, exit_code: r.result?.exit_code, stderr: text(r, "stderr") };
      return text(r) || `failed: ${JSON.stringify(failure)}`;
    };
    assert.equal(await curl("/hooked?q=1&q=2"), "host saw /hooked?q=1&q=2\n\n200");
    const hooked = seen.find((s) => s.url.startsWith("/hooked"));
    assert.equal(hooked?.headers["x-hooked"], "yes");
    const line = hookLines.find((l) => l.path === "/hooked");
    assert.deepEqual(
      [line?.callback_id, line?.phase, line?.host, line?.method, line?.query],
      ["network_hook_2", "before", "api.test", "GET", { q: "1" }],
    );
    assert.deepEqual((line?.request_headers as Record<string, string[]>)["User-Agent"]?.length, 1);
    assert.equal(await curl("/static"), "host saw /static\n\n200");
    assert.equal(seen.find((s) => s.url === "/static")?.headers["x-static"], "1");
    assert.match(await curl("/blocked"), /\n403$/);
    assert.equal(
      seen.some((s) => s.url === "/blocked"),
      false,
    );
    const started = Date.now();
    assert.equal(await curl("/silent"), "host saw /silent\n\n200");
    assert.ok(Date.now() - started >= 3000, "waited for timeout_ms");
    assert.equal(await curl("/after"), "body from the hook\n\n200");
    const net = await c.waitFor(
      (m) =>
        m.method === "event" &&
        m.params?.type === "network" &&
        (m.params?.network as { blocked?: boolean }).blocked === true,
      30_000,
    );
    assert.deepEqual(
      [
        (net.params?.network as Record<string, unknown>).status_code,
        (net.params?.network as Record<string, unknown>).block_reason,
      ],
      [403, "request blocked by policy"],
    );
  });

  test("log has the console and the entrypoint's output; close answers {}; exit 0 soon after EOF; rm", async () => {
    const log = Buffer.from(
      (await c.call("log", undefined, 60_000)).result?.content as string,
      "base64",
    ).toString();
    assert.match(log, /entrypoint-up/);
    const s = c.request("log_stream");
    await c.waitFor(() => c.data(s, "log_stream.data").includes("entrypoint-up"), 30_000);
    // close does not wait for the open log_stream (the reference would hang here).
    // Bounded, not hung: a 2 s graceful stop then the kill, with slack for a loaded machine
    // (a fixed 3 s limit measured the machine as much as the product).
    const closing = Date.now();
    assert.deepEqual((await c.call("close", { timeout_seconds: 2 }, 30_000)).result, {});
    assert.ok(Date.now() - closing < EXIT_BOUND_MS, `close took ${Date.now() - closing} ms`);
    assert.equal((await c.response(s)).error?.code, -32003);
    const exit = await endInput(rpc);
    assert.equal(exit.code, 0);
    assert.ok(exit.afterEofMs < EXIT_BOUND_MS, `exited ${exit.afterEofMs} ms after EOF`);
    assert.deepEqual(qemuOf(id), []);
    const rm = await wheellock(["rm", id]);
    assert.deepEqual([rm.code, rm.stdout], [0, `Removed ${id}\n`]);
  });
});
