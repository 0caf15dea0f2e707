import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import type { HttpRequestHead, RequestVerdict } from "../../src/net/intercept/contract.js";
import {
  MAX_BUFFERED_BODY_BYTES,
  createHttpPolicy,
  type HookRule,
} from "../../src/net/http-policy/index.js";
import { bodyOf, header, req, res } from "./net-http-policy-fixtures.js";
import { PROMPTLY_MS } from "../helpers/timing.js";

function forwarded(v: RequestVerdict) {
  assert.equal(v.action, "forward", JSON.stringify(v));
  return v as Extract<RequestVerdict, { action: "forward" }>;
}

const onRequest = (rules: HookRule[], r: Partial<HttpRequestHead> = {}, body = "") =>
  createHttpPolicy({ rules }).onRequest(req(r), bodyOf(body));

test("request callback sees method, host, path, query, headers and body", async () => {
  let seen: unknown;
  const body = bodyOf('{"a":1}');
  await createHttpPolicy({
    rules: [
      {
        name: "look",
        hook: async (ctx) => {
          seen = {
            rule: ctx.rule,
            method: ctx.method,
            host: ctx.host,
            port: ctx.port,
            scheme: ctx.scheme,
            path: ctx.path,
            x: ctx.query.get("x"),
            accept: ctx.header("ACCEPT"),
            body: (await ctx.body()).toString(),
            again: (await ctx.body()).toString(),
          };
        },
      },
    ],
  }).onRequest(req(), body);
  assert.deepEqual(seen, {
    rule: '"look"',
    method: "GET",
    host: "api.example.com",
    port: 443,
    scheme: "https",
    path: "/v1/items",
    x: "1",
    accept: "*/*",
    body: '{"a":1}',
    again: '{"a":1}',
  });
  assert.equal(body.reads, 1, "the body is read from the proxy once");
});

test("request callback body read is bounded", async () => {
  const v = await onRequest(
    [{ hook: async (ctx) => void (await ctx.body(4)) }],
    {},
    "more than four bytes",
  );
  assert.equal(
    v.action === "block" && v.reason,
    "hook rule #1 failed: body is larger than 4 bytes",
  );
});

test("request callback results: allow, block, changes, body, direct response", async () => {
  assert.equal((await onRequest([{ hook: () => "allow" }])).action, "forward");
  assert.equal((await onRequest([{ hook: () => undefined }])).action, "forward");
  const b = await onRequest([{ name: "gate", hook: () => ({ action: "block", reason: "no" }) }]);
  assert.deepEqual(b, { action: "block", code: "blocked_by_rule", reason: '"gate": no' });
  const b2 = await onRequest([{ hook: () => "block" }]);
  assert.equal(b2.action === "block" && b2.reason, "blocked by hook rule #1");

  const changed = forwarded(
    await onRequest(
      [
        {
          hook: () => ({
            headers: { "X-Only": "1", "Content-Length": "999" },
            setQuery: { y: "2" },
            deleteQuery: ["x"],
            path: "/v9",
            body: "new body",
          }),
        },
      ],
      {
        headers: [
          ["Host", "api.example.com"],
          ["Content-Length", "3"],
          ["Accept", "*/*"],
        ],
      },
    ),
  );
  // Full replacement keeps framing headers as the guest sent them.
  assert.deepEqual(changed.request.headers, [
    ["Host", "api.example.com"],
    ["Content-Length", "3"],
    ["X-Only", "1"],
  ]);
  assert.equal(changed.request.target, "/v9?y=2");
  assert.equal(changed.body?.toString(), "new body");

  const replacedQuery = forwarded(await onRequest([{ hook: () => ({ query: { a: "1 2" } }) }]));
  assert.equal(replacedQuery.request.target, "/v1/items?a=1%202");

  const direct = await onRequest([
    {
      hook: () => ({
        respond: { status: 418, headers: { "X-Teapot": "yes" }, body: "short and stout" },
      }),
    },
    { hook: () => assert.fail("later rules do not run after a direct response") },
  ]);
  assert.deepEqual(direct, {
    action: "respond",
    response: { status: 418, headers: [["X-Teapot", "yes"]] },
    body: Buffer.from("short and stout"),
  });
});

test("a later callback sees the earlier callback's body and changes", async () => {
  let seen = "";
  await onRequest(
    [
      { hook: () => ({ body: "replaced", setHeaders: { "X-Step": "1" } }) },
      {
        hook: async (ctx) =>
          void (seen = `${(await ctx.body()).toString()} ${ctx.header("x-step")}`),
      },
    ],
    {},
    "original",
  );
  assert.equal(seen, "replaced 1");
});

test("static changes of a rule apply before its own callback", async () => {
  let seen: string | undefined;
  await onRequest([
    { setHeaders: { "X-Static": "s" }, hook: (ctx) => void (seen = ctx.header("x-static")) },
  ]);
  assert.equal(seen, "s");
});

test("bad callback results fail closed with a reason", async () => {
  const bad: unknown[] = [
    { setHeaders: { "X-A": "1\r\nX-Evil: 1" } },
    { setHeaders: { "Transfer-Encoding": "chunked" } },
    { headers: { "Bad Name": "1" } },
    { path: "relative" },
    { path: "/x?y" },
    { query: { a: 1 } },
    { deleteHeaders: "X" },
    { body: 42 },
    { respond: { status: 99 } },
    { respond: { status: 200, headers: { "Content-Length": "5" } } },
    { action: "maybe" },
    42,
  ];
  for (const r of bad) {
    const v = await onRequest([{ hook: () => r as never }]);
    assert.equal(v.action, "block", JSON.stringify(r));
    assert.equal(v.action === "block" && v.code, "blocked_by_rule");
  }
});

test("callback timeout and throw fail closed; the signal aborts on timeout", async () => {
  let aborted = false;
  const start = Date.now();
  const slow = await onRequest([
    {
      name: "slow",
      timeoutMs: 50,
      hook: (ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener("abort", () => {
            aborted = true;
            resolve(undefined);
          });
        }),
    },
  ]);
  assert.deepEqual(slow, {
    action: "block",
    code: "blocked_by_rule",
    reason: 'hook rule "slow" timed out after 50 ms',
  });
  assert.ok(Date.now() - start < PROMPTLY_MS, "the 50 ms timeout ended the wait");
  assert.equal(aborted, true);
  const thrown = await onRequest([
    {
      hook: () => {
        throw new Error("boom\nsecond line");
      },
    },
  ]);
  assert.equal(thrown.action === "block" && thrown.reason, "hook rule #1 failed: boom second line");
  const rejectedLate = await onRequest([
    {
      timeoutMs: 10,
      hook: () => new Promise((_r, reject) => setTimeout(() => reject(new Error("late")), 30)),
    },
  ]);
  assert.equal(rejectedLate.action, "block");
  await new Promise((r) => setTimeout(r, 50)); // a late rejection must not surface as unhandled
  const respTimeout = await createHttpPolicy({
    rules: [{ phase: "after", timeoutMs: 20, hook: () => new Promise(() => undefined) }],
  }).onResponse(req(), res(), bodyOf());
  assert.equal(
    respTimeout.action === "block" && respTimeout.reason,
    "hook rule #1 timed out after 20 ms",
  );
});

test("response callback: sees status, headers, body; changes status, headers, body, replacements", async () => {
  let seen: unknown;
  const policy = createHttpPolicy({
    rules: [
      { phase: "after", bodyReplacements: [{ find: "one", replace: "1" }] },
      {
        phase: "after",
        hook: async (ctx) => {
          seen = [
            ctx.status,
            ctx.header("content-type"),
            ctx.isSse,
            (await ctx.body()).toString(),
            ctx.request.path,
          ];
          return {
            status: 201,
            setHeaders: { "X-Intercepted": "callback" },
            body: "one two three",
            bodyReplacements: [{ find: "two", replace: "2" }],
          };
        },
      },
      { phase: "after", bodyReplacements: [{ find: "three", replace: "3" }] },
    ],
  });
  const v = await policy.onResponse(req(), res(), bodyOf("upstream one"));
  assert.deepEqual(seen, [200, "application/json", false, "upstream one", "/v1/items"]);
  assert.equal(v.action, "forward");
  if (v.action !== "forward") return;
  assert.equal(v.response.status, 201);
  assert.deepEqual(header(v.response, "x-intercepted"), ["callback"]);
  assert.equal(v.body?.toString(), "1 2 3", "every rule's replacements apply to the new body");
});

test("response callback: full header replacement keeps framing headers; block with reason", async () => {
  const p = createHttpPolicy({
    rules: [{ phase: "after", hook: () => ({ headers: { "X-Only": "1" } }) }],
  });
  const v = await p.onResponse(
    req(),
    res({
      headers: [
        ["Transfer-Encoding", "chunked"],
        ["Server", "x"],
      ],
    }),
    bodyOf(),
  );
  assert.equal(
    v.action === "forward" && JSON.stringify(v.response.headers),
    '[["Transfer-Encoding","chunked"],["X-Only","1"]]',
  );
  const b = await createHttpPolicy({
    rules: [
      {
        phase: "after",
        name: "deny",
        hook: (ctx) => (ctx.status >= 500 ? { action: "block", reason: "upstream down" } : "allow"),
      },
    ],
  }).onResponse(req(), res({ status: 503 }), bodyOf());
  assert.deepEqual(b, {
    action: "block",
    code: "blocked_by_rule",
    reason: '"deny": upstream down',
  });
});

test("compressed upstream body (Accept-Encoding ignored) is decoded, rewritten, sent plain", async () => {
  const p = createHttpPolicy({
    rules: [{ phase: "after", bodyReplacements: [{ find: "cat", replace: "dog" }] }],
  });
  const v = await p.onResponse(
    req(),
    res({
      headers: [
        ["Content-Encoding", "gzip"],
        ["Content-Type", "text/plain"],
      ],
    }),
    bodyOf(gzipSync("a cat")),
  );
  assert.equal(v.action, "forward");
  if (v.action !== "forward") return;
  assert.equal(v.body?.toString(), "a dog");
  assert.deepEqual(header(v.response, "content-encoding"), []);
  const bomb = await p.onResponse(
    req(),
    res({ headers: [["Content-Encoding", "gzip"]] }),
    bodyOf(gzipSync(Buffer.alloc(MAX_BUFFERED_BODY_BYTES + 1))),
  );
  assert.equal(bomb.action, "block", "a decompression bomb is bounded");
  const unknown = await p.onResponse(
    req(),
    res({ headers: [["Content-Encoding", "zstd"]] }),
    bodyOf("x"),
  );
  assert.equal(unknown.action === "block" && /zstd/.test(unknown.reason), true);
});

test("body over the buffer limit with replacements: blocked, never passed unrewritten", async () => {
  const p = createHttpPolicy({
    rules: [{ phase: "after", bodyReplacements: [{ find: "a", replace: "b" }] }],
  });
  const big = {
    async readBody(limit: number): Promise<Buffer> {
      throw new Error(`body larger than ${limit} bytes`);
    },
  };
  const v = await p.onResponse(req(), res(), big);
  assert.equal(v.action, "block");
  assert.match(v.action === "block" ? v.reason : "", /could not be rewritten.*16777216/);
});

test("SSE responses with replacements stream through transformBody, length headers untouched here", async () => {
  const p = createHttpPolicy({
    rules: [{ phase: "after", bodyReplacements: [{ find: "secret", replace: "[x]" }] }],
  });
  const body = bodyOf();
  const v = await p.onResponse(
    req(),
    res({ headers: [["Content-Type", "Text/Event-Stream; charset=utf-8"]] }),
    body,
  );
  assert.equal(v.action, "forward");
  if (v.action !== "forward" || !v.transformBody) return assert.fail("expected transformBody");
  assert.equal(body.reads, 0, "an event stream is never buffered");
  const chunks: Buffer[] = [];
  for await (const c of Readable.from([Buffer.from("event: secret\ndata: a secret\n\n")]).pipe(
    v.transformBody(),
  ))
    chunks.push(c as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), "event: secret\ndata: a [x]\n\n");
  const gz = await p.onResponse(
    req(),
    res({
      headers: [
        ["Content-Type", "text/event-stream"],
        ["Content-Encoding", "gzip"],
      ],
    }),
    bodyOf(),
  );
  assert.equal(gz.action, "block", "a compressed stream cannot be rewritten: fail closed");
});

test("a callback's new body drops the upstream's Content-Encoding, not one it sets itself", async () => {
  const replaced = createHttpPolicy({
    rules: [{ phase: "after", hook: () => ({ body: "plain" }) }],
  });
  const v = await replaced.onResponse(
    req(),
    res({ headers: [["Content-Encoding", "gzip"]] }),
    bodyOf(gzipSync("x")),
  );
  assert.equal(
    v.action === "forward" && JSON.stringify([v.response.headers, v.body?.toString()]),
    '[[],"plain"]',
  );
  const own = createHttpPolicy({
    rules: [
      {
        phase: "after",
        hook: () => ({ body: gzipSync("mine"), setHeaders: { "Content-Encoding": "gzip" } }),
      },
    ],
  });
  const w = await own.onResponse(req(), res({ headers: [] }), bodyOf("upstream"));
  assert.deepEqual(w.action === "forward" && w.response.headers, [["Content-Encoding", "gzip"]]);
});
