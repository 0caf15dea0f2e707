// `policy suggest`: the minimal allowlist for a recorded run, globs where siblings share a
// parent, never over shared suffixes, and refusals no entry would fix left out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseEventLines, suggestAllowlist } from "../../src/observe/index.js";

function net(host: string, extra: Record<string, unknown> = {}) {
  return {
    type: "network",
    timestamp: "2026-12-04T00:00:00Z",
    network: {
      method: "GET",
      url: `https://${host}/`,
      scheme: "https",
      host,
      port: 443,
      blocked: false,
      ...extra,
    },
  };
}

test("siblings become one glob; a lone host stays exact; the apex stays beside its glob", () => {
  const s = suggestAllowlist([
    net("files.pypi.org"),
    net("upload.pypi.org"),
    net("pypi.org"),
    net("api.github.com"),
    net("files.pypi.org"),
    { type: "exec", exec: {} },
  ]);
  assert.deepEqual(s.allowHosts, ["*.pypi.org", "api.github.com", "pypi.org"]);
  assert.deepEqual(s.entries.find((e) => e.entry === "*.pypi.org")?.covers, [
    "files.pypi.org",
    "upload.pypi.org",
  ]);
  assert.equal(s.eventsRead, 5);
});

test("globs climb while siblings keep merging", () => {
  const s = suggestAllowlist([
    net("a.eu.cdn.example.com"),
    net("b.eu.cdn.example.com"),
    net("a.us.cdn.example.com"),
    net("b.us.cdn.example.com"),
  ]);
  assert.deepEqual(s.allowHosts, ["*.cdn.example.com"]);
});

test("never a glob over a public or shared hosting suffix", () => {
  const s = suggestAllowlist([
    net("example.com"),
    net("other.com"),
    net("alice.github.io"),
    net("bob.github.io"),
    net("a.s3.amazonaws.com"),
    net("b.s3.amazonaws.com"),
    net("x.co.uk"),
    net("y.co.uk"),
  ]);
  assert.deepEqual(s.allowHosts, [
    "a.s3.amazonaws.com",
    "alice.github.io",
    "b.s3.amazonaws.com",
    "bob.github.io",
    "example.com",
    "other.com",
    "x.co.uk",
    "y.co.uk",
  ]);
});

test("allowlist refusals and audit marks count; other refusals do not; odd ports are kept", () => {
  const s = suggestAllowlist([
    net("denied.example.org", { blocked: true, code: "host_not_allowed" }),
    net("audited.example.net", { audit: { code: "host_not_allowed" } }),
    net("leak.example.org", { blocked: true, code: "secret_leak" }),
    net("169.254.169.254", { blocked: true, code: "private_address" }),
    net("api.example.io", { port: 8443 }),
    net("10.9.8.7", { scheme: "http", port: 80 }),
    {
      type: "network",
      network: {
        method: "",
        url: "tcp://db.example.io:5432",
        scheme: "tcp",
        host: "db.example.io",
        port: 5432,
        blocked: false,
      },
    },
    {
      type: "network",
      network: {
        method: "",
        url: "udp://x:53",
        scheme: "udp",
        host: "x",
        port: 53,
        blocked: true,
        code: "protocol_not_allowed",
      },
    },
  ]);
  // 10.9.8.7 was reached (private hosts allowed) but no suggestion names a private literal.
  assert.deepEqual(s.allowHosts, [
    "api.example.io:8443",
    "audited.example.net",
    "denied.example.org",
  ]);
  assert.deepEqual(s.allowTcp, ["db.example.io:5432"]);
});

test("siblings on the same odd port merge into a glob with that port", () => {
  const s = suggestAllowlist([
    net("a.cdn.test", { port: 8080 }),
    net("b.cdn.test", { port: 8080 }),
    net("c.cdn.test"),
  ]);
  assert.deepEqual(s.allowHosts, ["*.cdn.test:8080", "c.cdn.test"]);
  assert.deepEqual(s.entries[0]?.covers, ["a.cdn.test:8080", "b.cdn.test:8080"]);
});

test("an events file: JSON lines, bad lines counted and skipped", () => {
  const { events, badLines } = parseEventLines(
    `${JSON.stringify(net("a.test"))}\nnot json\n\n{"type":"exec"}\n`,
  );
  assert.equal(events.length, 2);
  assert.equal(badLines, 1);
  assert.deepEqual(suggestAllowlist(events).allowHosts, ["a.test"]);
});

test("never a glob over a suffix of the Public Suffix List (the review's list) or a bucket host", () => {
  const parents = [
    "storage.googleapis.com",
    "trycloudflare.com",
    "blogspot.com",
    "co.kr",
    "com.tw",
    "r2.dev",
    "ngrok.app",
    "supabase.co",
    "cloudfunctions.net",
    "deno.dev",
    "loca.lt",
    "azureedge.net",
    "a.run.app",
  ];
  const s = suggestAllowlist(parents.flatMap((p) => [net(`x1.${p}`), net(`x2.${p}`)]));
  assert.deepEqual(
    s.allowHosts.filter((e) => e.startsWith("*")),
    [],
  );
  assert.equal(s.allowHosts.length, parents.length * 2);
  // A registrable domain still gets its glob.
  const own = suggestAllowlist([net("a.pypi.org"), net("b.pypi.org")]);
  assert.deepEqual(own.allowHosts, ["*.pypi.org"]);
});

test("private, loopback and metadata hosts and requests an approver refused are never suggested", () => {
  const refused = { blocked: true, code: "host_not_allowed", port: 35001 };
  const s = suggestAllowlist([
    // Refused as "not in the allowlist" by an older proxy, or let through by audit mode.
    net("169.254.169.254", { ...refused, port: 80 }),
    net("10.0.2.2", refused),
    net("127.0.0.1", { port: 8080 }),
    net("localhost", refused),
    net("localhost.localdomain", refused),
    net("metadata.google.internal", { port: 80 }),
    net("slow.test", { ...refused, approval: { decision: "timeout", waitedMs: 30000 } }),
    net("no.test", { ...refused, approval: { decision: "deny", waitedMs: 5 } }),
    net("full.test", { ...refused, approval: { decision: "cap", waitedMs: 0 } }),
    net("api.test", { ...refused, approval: { decision: "once", waitedMs: 5 } }),
    net("other.test", refused),
  ]);
  assert.deepEqual(s.allowHosts, ["api.test:35001", "other.test:35001"]);
});

test("never a glob over wildcard DNS, request-capture (OAST) or tunnel suffixes the PSL lacks", () => {
  const pairs = [
    ["8-8-8-8.nip.io", "1-1-1-1.nip.io"],
    ["a.sslip.io", "b.sslip.io"],
    ["app.lvh.me", "api.lvh.me"],
    ["c5k3.oast.fun", "d9x1.oast.fun"],
    ["x.oastify.com", "y.oastify.com"],
    ["eo1.m.pipedream.net", "eo2.m.pipedream.net"],
    ["a.webhook.site", "b.webhook.site"],
    ["vm1.eastus.cloudapp.azure.com", "vm2.eastus.cloudapp.azure.com"],
    ["x-1.app.github.dev", "x-2.app.github.dev"],
    ["u1.localhost.run", "u2.localhost.run"],
  ];
  const s = suggestAllowlist(pairs.flat().map((h) => net(h)));
  assert.deepEqual(
    s.allowHosts.filter((e) => e.startsWith("*")),
    [],
  );
  assert.equal(s.allowHosts.length, pairs.length * 2);
});

test("hosts no proxy could have recorded are not read: no allowlist syntax comes out", () => {
  const s = suggestAllowlist([
    net("*"),
    net("*.com"),
    net("evil.test,*"),
    net("a.test:1"),
    net("a b.test"),
    net("ok.test", { port: 70000 }),
    net("fine.test"),
  ]);
  assert.deepEqual(s.allowHosts, ["fine.test"]);
  assert.equal(s.eventsRead, 1);
});
