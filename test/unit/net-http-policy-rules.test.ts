import { test } from "node:test";
import assert from "node:assert/strict";
import { ErrInvalidConfig } from "../../src/errors.js";
import type { HttpRequestHead, RequestVerdict } from "../../src/net/intercept/contract.js";
import { createHttpPolicy, type HookRule } from "../../src/net/http-policy/index.js";
import { compilePathGlob } from "../../src/util/path-glob.js";
import { bodyOf, header, req, res } from "./net-http-policy-fixtures.js";
import { cpuMsSince } from "../helpers/timing.js";

function forwarded(v: RequestVerdict): HttpRequestHead {
  assert.equal(v.action, "forward", JSON.stringify(v));
  return (v as Extract<RequestVerdict, { action: "forward" }>).request;
}

const run = async (rules: HookRule[], r: Partial<HttpRequestHead> = {}) =>
  createHttpPolicy({ rules }).onRequest(req(r), bodyOf());

test("config errors are one-line ErrInvalidConfig naming the rule and the field", () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ action: "block", path: "/a/[b" }, /hook rule #1: bad path glob "\/a\/\[b": unclosed \[/],
    [{ action: "block", path: "/a\\" }, /trailing backslash/],
    [{ action: "block", hosts: ["bad host"] }, /hook rule #1: allowlist entry "bad host"/],
    [
      { name: "n", setHeaders: { "X-A": "a\r\nX-B: b" } },
      /hook rule "n": setHeaders: header "X-A": value has CR, LF, NUL/,
    ],
    [{ setHeaders: { "X A": "1" } }, /bad header name "X A"/],
    [{ setHeaders: { "X-A": "a\u0000" } }, /NUL/],
    [{ setHeaders: { "Content-Length": "1" } }, /managed by the proxy/],
    [{ deleteHeaders: ["Transfer-Encoding"] }, /managed by the proxy/],
    [{ setHeaders: { Host: "other.test" } }, /managed by the proxy/],
    [{ phase: "after", setResponseHeaders: { "Transfer-Encoding": "x" } }, /managed by the proxy/],
    [{ phase: "after", setHeaders: { A: "1" } }, /setHeaders needs phase "before"/],
    [{ bodyReplacements: [{ find: "a" }] }, /bodyReplacements needs phase "after"/],
    [{ phase: "during", action: "block" }, /phase must be "before" or "after"/],
    [{ action: "deny" }, /action must be/],
    [{ action: "block", set_headers: { A: "1" } }, /unknown field set_headers/],
    [{ action: "block", hook: () => undefined }, /callback hooks cannot set action "block"/],
    [{ action: "block", setHeaders: { A: "1" } }, /block rule cannot also change/],
    [{ hosts: ["a.test"] }, /does nothing/],
    [{ action: "mutate" }, /does nothing/],
    [{ rewritePath: "no-slash" }, /does not start with "\/"/],
    [{ rewritePath: "/a b" }, /spaces/],
    [{ rewritePath: "/a?b" }, /"\?"/],
    [{ setQuery: { "": "x" } }, /empty parameter name/],
    [{ methods: ["GET POST"], action: "block" }, /bad method/],
    [{ action: "block", timeoutMs: 0 }, /timeoutMs/],
    [{ phase: "after", bodyReplacements: [{ find: "" }] }, /empty find/],
    [{ phase: "after", bodyReplacements: [{ find: 1 }] }, /string find/],
    [{ hook: "not a function" }, /hook must be a function/],
    ["nope", /hook rule #1 is not an object/],
  ];
  for (const [rule, re] of bad) {
    assert.throws(
      () => createHttpPolicy({ rules: [rule as HookRule] }),
      (err: Error) =>
        err instanceof ErrInvalidConfig && re.test(err.message) && !err.message.includes("\n"),
      `${JSON.stringify(rule)} → ${re}`,
    );
  }
});

test("path globs follow Go path.Match", () => {
  const m = (p: string, s: string) => compilePathGlob(p).test(s);
  assert.equal(m("/v1/*", "/v1/items"), true);
  assert.equal(m("/v1/*", "/v1/items/2"), false, "* stops at /");
  assert.equal(m("/v1/*/x", "/v1/a/x"), true);
  assert.equal(m("/v?", "/v1"), true);
  assert.equal(m("/v?", "/v/"), false);
  assert.equal(m("/[a-c]x", "/bx"), true);
  assert.equal(m("/[^a-c]x", "/bx"), false);
  assert.equal(m("/[^a-c]x", "/dx"), true);
  assert.equal(m("/a\\*", "/a*"), true);
  assert.equal(m("/a\\*", "/ab"), false);
  assert.equal(m("/a.b", "/axb"), false, "regex characters are literal");
  assert.equal(m("/(x)+", "/(x)+"), true);
});

test("path globs: classes, escapes, and no catastrophic backtracking on guest paths", async () => {
  const m = (p: string, s: string) => compilePathGlob(p).test(s);
  assert.equal(m("/[]a]", "/]"), true, "] first in a class is literal");
  assert.equal(m("/[a-]", "/-"), true);
  assert.equal(m("/[\\]]x", "/]x"), true);
  assert.equal(m("/[ab]", "/"), false);
  assert.equal(m("/[^a]", "/"), false, "nothing but / matches /");
  assert.equal(m("/a\\/b", "/a/b"), true, "escaped slash is a slash");
  assert.equal(m("/*", "/"), true);
  assert.equal(m("/**x", "/abx"), true);
  assert.equal(m("/*a*b", "/xaxb"), true);
  assert.equal(m("/*a*b", "/xaxbx"), false);
  const evil = `/${"a".repeat(20000)}`;
  const cpu0 = process.cpuUsage();
  assert.equal(m("/*a*a*a*a*a*a*a*b", evil), false);
  assert.equal(
    (await run([{ action: "block", path: "/*a*a*a*a*a*a*a*b" }], { target: evil })).action,
    "forward",
  );
  // CPU time, not wall time (a loaded machine); backtracking would take minutes of it.
  assert.ok(cpuMsSince(cpu0) < 1000, `took ${cpuMsSince(cpu0)} ms of CPU`);
});

test("matching: hosts (globs, any), methods (case-insensitive), path; all must hold", async () => {
  const rule: HookRule = {
    action: "block",
    hosts: ["*.example.com", "other.test"],
    methods: ["post", "PUT"],
    path: "/v1/*",
  };
  const blocked = async (r: Partial<HttpRequestHead>) => (await run([rule], r)).action === "block";
  assert.equal(await blocked({ method: "POST", target: "/v1/x" }), true);
  assert.equal(await blocked({ method: "put", target: "/v1/x?q=1" }), true, "query is not path");
  assert.equal(await blocked({ method: "POST", host: "other.test", target: "/v1/x" }), true);
  assert.equal(await blocked({ method: "GET", target: "/v1/x" }), false, "method");
  assert.equal(await blocked({ method: "POST", target: "/v2/x" }), false, "path");
  assert.equal(
    await blocked({ method: "POST", host: "example.com", target: "/v1/x" }),
    false,
    "host",
  );
  const v = await run([rule], { method: "POST", target: "/v1/x" });
  assert.deepEqual(v, {
    action: "block",
    code: "blocked_by_rule",
    reason: "blocked by hook rule #1",
  });
});

test("path matching sees through percent-encoding and dot segments (block cannot be dodged)", async () => {
  const rule: HookRule = { name: "no-admin", action: "block", path: "/admin/*" };
  for (const target of [
    "/admin/x",
    "/%61dmin/x",
    "/public/../admin/x",
    "/./admin/x",
    "/%2e%2e/admin/x",
  ])
    assert.equal((await run([rule], { target })).action, "block", target);
  assert.equal((await run([rule], { target: "/administrator/x" })).action, "forward");
});

test("empty target path matches as /", async () => {
  assert.equal((await run([{ action: "block", path: "/" }], { target: "" })).action, "block");
});

test("request mutations: set then delete headers, set then delete query, rewrite path", async () => {
  const out = forwarded(
    await run(
      [
        {
          name: "m",
          setHeaders: { "X-New": "1", accept: "text/plain" },
          deleteHeaders: ["X-Drop", "X-New"],
          setQuery: { x: "2", "a b": "c&d" },
          deleteQuery: ["gone"],
          rewritePath: "/v2/new",
        },
      ],
      {
        target: "/v1/old?keep=%20raw&x=1&gone=1&x=3&gone=2",
        headers: [
          ["Host", "api.example.com"],
          ["Accept", "*/*"],
          ["X-Drop", "a"],
          ["x-drop", "b"],
        ],
      },
    ),
  );
  assert.deepEqual(out.headers, [
    ["Host", "api.example.com"],
    ["accept", "text/plain"],
  ]);
  // Untouched parameters keep their bytes; x is set in place, the duplicate removed.
  assert.equal(out.target, "/v2/new?keep=%20raw&x=2&a%20b=c%26d");
});

test("rules apply in order: a later rule sees an earlier rule's change", async () => {
  const rules: HookRule[] = [
    { rewritePath: "/internal" },
    { name: "second", action: "block", path: "/internal" },
  ];
  const v = await run(rules, { target: "/public" });
  assert.equal(v.action === "block" && v.reason, 'blocked by hook rule "second"');
  const swapped = await run([rules[1] as HookRule, rules[0] as HookRule], { target: "/public" });
  assert.equal(forwarded(swapped).target, "/internal");
});

test("block stops processing: later rules do not run", async () => {
  let ran = false;
  const v = await run([{ action: "block" }, { hook: () => void (ran = true) }]);
  assert.equal(v.action, "block");
  assert.equal(ran, false);
});

test("response rules: block, set then delete headers; non-matching rules skipped", async () => {
  const policy = createHttpPolicy({
    rules: [
      { phase: "after", hosts: ["other.test"], action: "block" },
      {
        phase: "after",
        setResponseHeaders: { "X-Added": "1", "X-Gone": "2" },
        deleteResponseHeaders: ["X-Gone", "Server"],
      },
    ],
  });
  const v = await policy.onResponse(
    req(),
    res({
      headers: [
        ["Server", "s"],
        ["Content-Type", "text/plain"],
      ],
    }),
    bodyOf(),
  );
  assert.equal(v.action, "forward");
  if (v.action !== "forward") return;
  assert.deepEqual(v.response.headers, [
    ["Content-Type", "text/plain"],
    ["X-Added", "1"],
  ]);
  assert.equal(v.body, undefined);
  assert.equal(v.transformBody, undefined);
  const blocked = await policy.onResponse(req({ host: "other.test" }), res(), bodyOf());
  assert.equal(blocked.action === "block" && blocked.code, "blocked_by_rule");
});

test("no rules, no secrets: requests and responses pass unchanged", async () => {
  const policy = createHttpPolicy();
  const r = req();
  assert.deepEqual(await policy.onRequest(r, bodyOf()), { action: "forward", request: r });
  const s = res();
  assert.deepEqual(await policy.onResponse(r, s, bodyOf()), { action: "forward", response: s });
});

test("whole-body replacements: in order, Accept-Encoding: identity asked upstream", async () => {
  const policy = createHttpPolicy({
    rules: [
      { phase: "after", path: "/v1/*", bodyReplacements: [{ find: "cat", replace: "dog" }] },
      { phase: "after", bodyReplacements: [{ find: "dog", replace: "wolf" }, { find: "x" }] },
    ],
  });
  const sent = forwarded(
    await policy.onRequest(req({ headers: [["Accept-Encoding", "gzip"]] }), bodyOf()),
  );
  assert.deepEqual(header(sent, "accept-encoding"), ["identity"]);
  const v = await policy.onResponse(sent, res(), bodyOf("a cat, x, a dog"));
  assert.equal(v.action === "forward" && v.body?.toString(), "a wolf, , a wolf");
  const elsewhere = forwarded(
    await createHttpPolicy({
      rules: [{ phase: "after", path: "/other", bodyReplacements: [{ find: "a" }] }],
    }).onRequest(req({ headers: [["Accept-Encoding", "gzip"]] }), bodyOf()),
  );
  assert.deepEqual(header(elsewhere, "accept-encoding"), ["gzip"], "only where a rule rewrites");
});
