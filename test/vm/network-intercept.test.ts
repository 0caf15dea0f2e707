// Intercept mode end to end: curl in the guest against HTTP/HTTPS/TCP/UDP servers this test
// runs on 127.0.0.1 (private hosts allowed, names mapped by resolve overrides; the HTTPS server
// has a test CA given as upstreamCa). One SDK sandbox for the policy checks, one detached CLI
// sandbox for secrets on the supervisor's stdin, allow-list, --add-host and --events, and one
// foreground `run --events`.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  ErrHostNotAllowed,
  ErrSecretLeak,
  networkEventError,
  Sandbox,
  type SandboxEvent,
  type VmSandbox,
} from "../../src/index.js";
import { isolateDataDir, runDirEntries, scratchDir } from "../helpers/vm.js";
import { InterceptServers, makeTestCa } from "../helpers/intercept-servers.js";
import {
  inspect,
  killAllSupervisors,
  startDetached,
  waitUntil,
  wheellock,
} from "../helpers/lifecycle.js";

const dataDir = isolateDataDir();
const scratch = scratchDir();
const NAMES = ["api.test", "other.test", "denied.test", "late.test", "tcp.test"];
const testCa = makeTestCa(scratch, ["api.test", "other.test", "denied.test", "late.test"]);
const servers = new InterceptServers();
const REAL_SECRET = "real-secret-7c1e9d2b44a0";
const CLI_SECRET = "cli-secret-51f0aa93c8e2";
const resolveOverrides = Object.fromEntries(NAMES.map((n) => [n, "127.0.0.1"]));

before(() => servers.start(testCa));
after(() => servers.close());

/** curl in the guest: `-w` appends the status on its own line; `-m` bounds every call. */
const curl = (args: string) => `curl -sS -m 60 -o /dev/stdout -w '\\n%{http_code}' ${args}`;

function lastLine(text: string): string {
  return text.trimEnd().split("\n").at(-1) ?? "";
}

describe("SDK sandbox in intercept mode", () => {
  let sb: VmSandbox;
  const events: SandboxEvent[] = [];
  const network = () => events.flatMap((e) => (e.type === "network" ? [e.network] : []));
  let h = "";
  let hs = "";

  before(async () => {
    sb = await Sandbox.create({
      memoryMb: 384,
      timeoutSeconds: 0,
      allowPrivateHosts: true,
      resolveOverrides,
      allowedHosts: ["api.test", "other.test"],
      upstreamCa: [testCa.caPath],
      // The test servers listen on random ports: an entry without a port would mean 443. The
      // plain-HTTP port is bound too, to show that naming it does not let the value cross it.
      secrets: {
        API_KEY: {
          value: REAL_SECRET,
          hosts: [`api.test:${servers.httpsPort}`, `api.test:${servers.httpPort}`],
          headers: ["X-Api-Key"],
        },
      },
      allowTcp: [`tcp.test:${servers.tcpPort}`],
      networkHooks: [
        {
          phase: "before",
          hosts: ["api.test"],
          path: "/hooked/*",
          setHeaders: { "x-hooked": "yes" },
          rewritePath: "/rewritten",
        },
        { phase: "before", hosts: ["api.test"], path: "/blocked", action: "block" },
        {
          phase: "after",
          hosts: ["api.test"],
          path: "/sse",
          bodyReplacements: [{ find: "world", replace: "there" }],
        },
        // After-phase rules see the request as forwarded (path already rewritten).
        {
          phase: "after",
          hosts: ["api.test"],
          path: "/rewritten",
          setResponseHeaders: { "x-after": "set" },
        },
      ],
    });
    h = `http://api.test:${servers.httpPort}`;
    hs = `https://api.test:${servers.httpsPort}`;
    void (async () => {
      for await (const e of sb.events()) events.push(e);
    })();
  });
  after(async () => sb?.close());

  test("allowed host over HTTP and HTTPS (the guest trusts the CA); events with the real scheme", async () => {
    const r = await sb.exec(`${curl(`${h}/plain`)}; echo; ${curl(`${hs}/secure`)}`);
    assert.match(r.stdout, /ok http GET \/plain\n\n200\nok https GET \/secure\n\n200/, r.stderr);
    await waitUntil("events", () => network().some((e) => e.url.endsWith("/secure")));
    const ev = network().find((e) => e.url.endsWith("/secure"));
    assert.equal(ev?.url, `https://api.test:${servers.httpsPort}/secure`);
    assert.equal(ev?.scheme, "https");
    assert.equal(ev?.status, 200);
    assert.equal(ev?.blocked, false);
  });

  test("the CA is in the guest's bundle and env, before the first command", async () => {
    const r = await sb.exec(
      'echo "$SSL_CERT_FILE $CURL_CA_BUNDLE $REQUESTS_CA_BUNDLE $NODE_EXTRA_CA_CERTS"; ' +
        "grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/wheellock-ca.crt",
    );
    // Snapshots are taken before this setup, so a restored guest must get it too.
    console.log(`# sandbox restored from a snapshot: ${sb.restoredFromSnapshot}`);
    const ca = "/etc/ssl/certs/wheellock-ca.crt";
    assert.equal(r.stdout, `${ca} ${ca} ${ca} ${ca}\n1\n`);
    // Without the env variables, curl's default bundle (the system one) trusts it too.
    const sys = await sb.exec(
      `unset SSL_CERT_FILE CURL_CA_BUNDLE; ${curl(`--cacert /etc/ssl/certs/ca-certificates.crt ${hs}/sysbundle`)}`,
    );
    assert.equal(lastLine(sys.stdout), "200", sys.stderr);
  });

  test("a host not in the allowlist is blocked, with the reason in the event", async () => {
    const r = await sb.exec(curl(`http://denied.test:${servers.httpPort}/denied-http`));
    assert.equal(lastLine(r.stdout), "403");
    const tls = await sb.exec(curl(`https://denied.test:${servers.httpsPort}/denied-https`));
    assert.notEqual(lastLine(tls.stdout), "200");
    assert.equal(servers.requestsFor("/denied-").length, 0);
    await waitUntil("blocked event", () => network().some((e) => e.host === "denied.test"));
    const ev = network().find((e) => e.host === "denied.test");
    assert.equal(ev?.blocked, true);
    assert.equal(ev?.code, "host_not_allowed");
    assert.ok(ev?.reason, "a reason");
    // The reference API's typed error for it.
    assert.equal(ev?.errorCode, "ErrHostNotAllowed");
    assert.ok(ev && networkEventError(ev) instanceof ErrHostNotAllowed);
  });

  test("the server receives the real secret; no process or file in the guest holds it", async () => {
    const r = await sb.exec(
      `echo "$API_KEY"; ${curl(`-H "Authorization: Bearer $API_KEY" ${hs}/with-secret`)}`,
    );
    const placeholder = r.stdout.split("\n")[0] ?? "";
    assert.notEqual(placeholder, REAL_SECRET);
    assert.ok(placeholder.length >= 16, placeholder);
    assert.equal(lastLine(r.stdout), "200", r.stderr);
    const got = servers.requestsFor("/with-secret")[0];
    assert.equal(got?.headers.authorization, `Bearer ${REAL_SECRET}`);
    // The pattern must not contain the value itself, or grep's own cmdline would match.
    const pattern = `${REAL_SECRET.slice(0, -1)}[${REAL_SECRET.slice(-1)}]`;
    const scan = await sb.exec(
      `sleep 30 & grep -l '${pattern}' /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null; ` +
        `grep -rlsI '${pattern}' /etc /root /tmp /var /home /run 2>/dev/null; echo scanned`,
    );
    assert.equal(scan.stdout, "scanned\n");
    // Control: the same scan does find the value when a process does hold it.
    const control = await sb.exec(`grep -c '${pattern}' /proc/self/environ`, {
      env: { CONTROL: REAL_SECRET },
    });
    assert.equal(control.stdout, "1\n");
    assert.ok(!JSON.stringify(events).includes(REAL_SECRET));
  });

  test("a placeholder sent toward another host is blocked (403, secret_leak), never forwarded", async () => {
    const r = await sb.exec(
      curl(`-H "X-Token: $API_KEY" http://other.test:${servers.httpPort}/leak-attempt`),
    );
    assert.equal(lastLine(r.stdout), "403");
    assert.equal(servers.requestsFor("/leak-attempt").length, 0);
    await waitUntil("leak event", () => network().some((e) => e.code === "secret_leak"));
    const leak = network().find((e) => e.code === "secret_leak");
    assert.equal(leak?.errorCode, "ErrSecretLeak");
    assert.ok(leak && networkEventError(leak) instanceof ErrSecretLeak);
  });

  test("the secret never crosses plain HTTP, nor goes into a header it does not list", async () => {
    const plain = await sb.exec(curl(`-H "Authorization: Bearer $API_KEY" ${h}/secret-over-http`));
    assert.equal(lastLine(plain.stdout), "403", plain.stderr);
    const unlisted = await sb.exec(curl(`-H "X-Unlisted: $API_KEY" ${hs}/secret-unlisted`));
    assert.equal(lastLine(unlisted.stdout), "403", unlisted.stderr);
    // Neither reached the server, with the value or the placeholder.
    assert.deepEqual(servers.requestsFor("/secret-over-http"), []);
    assert.deepEqual(servers.requestsFor("/secret-unlisted"), []);
    await waitUntil("secret events", () =>
      ["/secret-over-http", "/secret-unlisted"].every((p) =>
        network().some((e) => e.url.endsWith(p)),
      ),
    );
    const codeFor = (p: string) => network().find((e) => e.url.endsWith(p))?.code;
    assert.equal(codeFor("/secret-over-http"), "secret_requires_tls");
    assert.equal(codeFor("/secret-unlisted"), "secret_leak");
    // Control: over TLS, the listed header and Authorization carry the value.
    const listed = await sb.exec(
      curl(`-H "Authorization: Bearer $API_KEY" -H "X-Api-Key: $API_KEY" ${hs}/secret-listed`),
    );
    assert.equal(lastLine(listed.stdout), "200", listed.stderr);
    const got = servers.requestsFor("/secret-listed")[0];
    assert.equal(got?.tls, true);
    assert.equal(got?.headers.authorization, `Bearer ${REAL_SECRET}`);
    assert.equal(got?.headers["x-api-key"], REAL_SECRET);
    assert.ok(!JSON.stringify(events).includes(REAL_SECRET));
  });

  test("SNI/Host mismatch (domain fronting) is refused", async () => {
    // TLS to api.test, then a Host header naming another allowed host.
    const r = await sb.exec(curl(`-H "Host: other.test" ${hs}/fronted`));
    assert.notEqual(lastLine(r.stdout), "200");
    // And the reverse: SNI other.test via --resolve to the same address, Host api.test.
    const r2 = await sb.exec(
      `ip=$(getent hosts other.test | cut -d' ' -f1); ` +
        curl(
          `--resolve other.test:${servers.httpsPort}:$ip -H "Host: api.test" https://other.test:${servers.httpsPort}/fronted2`,
        ),
    );
    assert.notEqual(lastLine(r2.stdout), "200");
    assert.equal(servers.requestsFor("/fronted").length, 0);
  });

  test("CONNECT is refused", async () => {
    const r = await sb.exec(curl(`-p -x ${h} ${hs}/via-connect`));
    assert.notEqual(lastLine(r.stdout), "200");
    assert.equal(servers.requestsFor("/via-connect").length, 0);
    assert.equal(servers.seen.filter((s) => s.method === "CONNECT").length, 0);
  });

  test("raw TCP: allowed by an allowTcp rule, refused elsewhere", async () => {
    const ok = await sb.exec(`echo ping | curl -sS -m 20 telnet://tcp.test:${servers.tcpPort}`);
    assert.equal(ok.stdout, "pong:ping\n", ok.stderr);
    // Same server, reached under a name that is allowed for HTTP but has no raw-TCP rule.
    const refused = await sb.exec(
      `echo ping | curl -sS -m 20 telnet://api.test:${servers.tcpPort}`,
    );
    assert.doesNotMatch(refused.stdout, /pong/);
  });

  test("UDP other than DNS is refused; IPv6 is absent", async () => {
    const before = servers.udpMessages;
    const send =
      `perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(PeerAddr=>"10.0.2.2:${servers.udpPort}",` +
      `Proto=>"udp") or die; print $s "x" for 1..5'`;
    await sb.exec(send);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(servers.udpMessages, before);
    const v6 = await sb.exec(
      "grep -v ' lo$' /proc/net/if_inet6 | grep -v '^fe80' ; curl -sS -6 -m 10 http://[2001:db8::1]/; echo rc=$?",
    );
    assert.match(v6.stdout, /^rc=[1-9]/m);
  });

  test("allowlist changes at run time take effect", async () => {
    const url = `http://late.test:${servers.httpPort}/late`;
    assert.equal(lastLine((await sb.exec(curl(url))).stdout), "403");
    assert.deepEqual(await sb.allowHosts("late.test"), ["late.test"]);
    assert.equal(lastLine((await sb.exec(curl(url))).stdout), "200");
    assert.deepEqual(await sb.disallowHosts("late.test"), ["late.test"]);
    assert.equal(lastLine((await sb.exec(curl(url))).stdout), "403");
    assert.ok(!(await sb.allowedHosts()).hosts.includes("late.test"));
  });

  test("hooks: header set, path rewrite, response header, block, SSE data: replacement", async () => {
    const r = await sb.exec(`curl -sS -m 60 -D - ${hs}/hooked/x`);
    const got = servers.requestsFor("/rewritten").at(-1);
    assert.equal(got?.headers["x-hooked"], "yes");
    assert.match(r.stdout, /x-after: set/i);
    const blocked = await sb.exec(curl(`${h}/blocked`));
    assert.equal(lastLine(blocked.stdout), "403");
    assert.equal(servers.requestsFor("/blocked").length, 0);
    const sse = await sb.exec(`curl -sS -m 60 -N ${hs}/sse`);
    assert.equal(sse.stdout, "event: greeting\ndata: hello there\n\ndata: goodbye there\n\n");
  });

  test("a 1 GB download through interception keeps host memory bounded", async () => {
    const size = 1024 * 1024 * 1024;
    global.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
    try {
      const r = await sb.exec(
        `curl -sS -m 1500 -o /dev/null -w '%{size_download} %{speed_download}' '${h}/big?size=${size}'`,
        { timeoutMs: 1_600_000 },
      );
      const [got, speed] = r.stdout.split(" ").map(Number);
      assert.equal(got, size, r.stderr);
      console.log(
        `# 1 GiB through intercept: ${((speed ?? 0) / 1e6).toFixed(1)} MB/s, host RSS ` +
          `${(baseline / 2 ** 20).toFixed(0)} -> peak ${(peak / 2 ** 20).toFixed(0)} MiB`,
      );
    } finally {
      clearInterval(sampler);
    }
    assert.ok(peak - baseline < 256 * 2 ** 20, `RSS grew by ${(peak - baseline) / 2 ** 20} MiB`);
  });
});

describe("CLI: detached sandbox with secrets, allow-list, --add-host and --events", () => {
  let id = "";
  const eventsPath = join(scratch, "detached-events.jsonl");

  before(async () => {
    process.env.CLI_KEY = CLI_SECRET;
    id = await startDetached([
      "--allow-private-host",
      ...NAMES.flatMap((n) => ["--resolve", `${n}:127.0.0.1`]),
      "--allow-host",
      "api.test",
      // One over TLS in a listed header, one in another header over plain HTTP (`;http`):
      // the options must survive the hand-over to the supervisor on its stdin.
      "--secret",
      `CLI_KEY@api.test:${servers.httpsPort};header=X-A`,
      "--secret",
      `INLINE_KEY=${CLI_SECRET}-inline@api.test:${servers.httpPort};header=X-B;http`,
      "--upstream-ca",
      testCa.caPath,
      "--add-host",
      "db.local:10.1.2.3",
      "--events",
      eventsPath,
    ]);
  });
  after(async () => {
    delete process.env.CLI_KEY;
    await wheellock(["kill", "--all"]);
    killAllSupervisors(dataDir);
  });

  test("secrets reach the server, never the supervisor's argv, record, logs or inspect", async () => {
    const r = await wheellock([
      "exec",
      id,
      "--",
      "sh",
      "-c",
      `${curl(`-H "X-A: $CLI_KEY" https://api.test:${servers.httpsPort}/cli-secret-tls`)}; echo; ` +
        curl(`-H "X-B: $INLINE_KEY" http://api.test:${servers.httpPort}/cli-secret-http`),
    ]);
    assert.deepEqual(r.stdout.match(/^\d{3}$/gm), ["200", "200"], r.stderr);
    const tls = servers.requestsFor("/cli-secret-tls")[0];
    assert.equal(tls?.tls, true);
    assert.equal(tls?.headers["x-a"], CLI_SECRET);
    const http = servers.requestsFor("/cli-secret-http")[0];
    assert.equal(http?.tls, false);
    assert.equal(http?.headers["x-b"], `${CLI_SECRET}-inline`);
    const record = inspect(id) as unknown as { supervisorPid: number };
    const argv = readFileSync(`/proc/${record.supervisorPid}/cmdline`, "utf8");
    assert.ok(!argv.includes(CLI_SECRET), "argv");
    assert.ok(!argv.split("\0").some((a) => a === "--secret" || a.startsWith("--secret=")), argv);
    const found = execFileSync("sh", ["-c", `grep -rlsF '${CLI_SECRET}' '${dataDir}' || true`], {
      encoding: "utf8",
    });
    assert.equal(found, "");
    assert.ok(!JSON.stringify(inspect(id)).includes(CLI_SECRET));
  });

  test("--add-host lands in the guest's /etc/hosts", async () => {
    const r = await wheellock(["exec", id, "--", "getent", "hosts", "db.local"]);
    assert.match(r.stdout, /^10\.1\.2\.3\s+db\.local$/m, r.stderr);
  });

  test("allow-list add|delete changes the running sandbox", async () => {
    const url = `http://late.test:${servers.httpPort}/cli-late`;
    const get = async () =>
      lastLine((await wheellock(["exec", id, "--", "sh", "-c", curl(url)])).stdout);
    assert.equal(await get(), "403");
    // The secrets' host entries joined the list after the user's.
    const base = `api.test,api.test:${servers.httpsPort},api.test:${servers.httpPort}`;
    const add = await wheellock(["allow-list", "add", id, "late.test"]);
    assert.equal(add.stdout, `Added to ${id}: late.test\nCurrent allow-list: ${base},late.test\n`);
    assert.equal(await get(), "200");
    const del = await wheellock(["allow-list", "delete", id, "late.test"]);
    assert.equal(del.stdout, `Removed from ${id}: late.test\nCurrent allow-list: ${base}\n`);
    assert.equal(await get(), "403");
  });

  test("--events FILE gets the network events as JSON lines", async () => {
    await waitUntil("events file", () => {
      if (!existsSync(eventsPath)) return false;
      return readFileSync(eventsPath, "utf8").includes("/cli-late");
    });
    const lines = readFileSync(eventsPath, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const net = lines.filter((l: { type: string }) => l.type === "network");
    assert.ok(
      net.some(
        (l: { network: { host: string; blocked: boolean } }) =>
          l.network.host === "late.test" && l.network.blocked,
      ),
    );
    assert.ok(net.some((l: { network: { status?: number } }) => l.network.status === 200));
    assert.ok(!readFileSync(eventsPath, "utf8").includes(CLI_SECRET));
    assert.equal(statSync(eventsPath).mode & 0o777, 0o600);
  });
});

test("CLI: foreground run with --events and a TypeScript --policy-script; a one-line error for a missing secret env", async () => {
  const missing = await wheellock(["run", "--secret", "NOPE_NOT_SET@api.test", "--", "true"]);
  assert.equal(missing.code, 1);
  assert.equal(
    missing.stderr,
    "wheellock: invalid configuration: --secret NOPE_NOT_SET: $NOPE_NOT_SET is not set in the environment\n",
  );
  const eventsPath = join(scratch, "fg-events.jsonl");
  // TypeScript on purpose (the annotation makes it invalid JS): the CLI loads it through tsx.
  const scriptPath = join(scratch, "policy.ts");
  writeFileSync(
    scriptPath,
    `const rules: Array<Record<string, unknown>> = [
      { phase: "after", hosts: ["api.test"], path: "/fg-run",
        hook: async (ctx: { status: number; request: { path: string } }) =>
          ({ body: "script saw " + ctx.status + " " + ctx.request.path + "\\n" }) },
    ];
    export default rules;\n`,
  );
  const r = await wheellock([
    "run",
    "--memory",
    "256",
    "--allow-private-host",
    "--resolve",
    "api.test:127.0.0.1",
    "--allow-host",
    "api.test",
    "--events",
    eventsPath,
    "--policy-script",
    scriptPath,
    "--",
    "sh",
    "-c",
    `curl -sS -m 60 http://api.test:${servers.httpPort}/fg-run`,
  ]);
  assert.equal(r.stdout, "script saw 200 /fg-run\n", r.stderr);
  const lines = readFileSync(eventsPath, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as SandboxEvent);
  const net = lines.flatMap((e) => (e.type === "network" ? [e.network] : []));
  assert.equal(net.length, 1);
  assert.equal(net[0]?.url, `http://api.test:${servers.httpPort}/fg-run`);
  assert.equal(net[0]?.status, 200);
  assert.ok(lines.some((e) => e.type === "exec"));
  assert.deepEqual(runDirEntries(dataDir), []);
});
