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
  assert.deepEqual(s.allowHosts, [
    "10.9.8.7",
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
