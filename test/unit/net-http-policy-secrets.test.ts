import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { ErrInvalidConfig } from "../../src/errors.js";
import type { HttpRequestHead, RequestVerdict } from "../../src/net/intercept/contract.js";
import { SecretSet, createHttpPolicy } from "../../src/net/http-policy/index.js";
import { bodyOf, header, req, res } from "./net-http-policy-fixtures.js";

const VALUE = "sk-live-REAL&VALUE=42";
const spec = (over = {}) => ({
  name: "API_KEY",
  value: VALUE,
  hosts: ["api.example.com"],
  ...over,
});

function forwarded(v: RequestVerdict): HttpRequestHead {
  assert.equal(v.action, "forward", JSON.stringify(v));
  return (v as Extract<RequestVerdict, { action: "forward" }>).request;
}

function setup(over = {}) {
  const policy = createHttpPolicy({ secrets: [spec(over)] });
  const ph = policy.placeholders().API_KEY as string;
  return { policy, ph };
}

test("placeholders: SANDBOX_SECRET_ + 32 hex, one per secret, new for every sandbox", () => {
  const a = createHttpPolicy({ secrets: [spec(), spec({ name: "OTHER" })] });
  const b = createHttpPolicy({ secrets: [spec()] });
  const pa = a.placeholders();
  assert.deepEqual(Object.keys(pa), ["API_KEY", "OTHER"]);
  for (const p of Object.values(pa)) assert.match(p, /^SANDBOX_SECRET_[0-9a-f]{32}$/);
  assert.notEqual(pa.API_KEY, pa.OTHER);
  assert.notEqual(pa.API_KEY, b.placeholders().API_KEY);
  assert.deepEqual(a.placeholders(), pa, "stable for the sandbox's lifetime");
});

test("secretHosts: every secret's patterns, de-duplicated, for the allowlist", () => {
  const p = createHttpPolicy({
    secrets: [
      spec({ hosts: ["api.example.com", "*.b.test"] }),
      spec({ name: "B", hosts: ["*.b.test"] }),
    ],
  });
  assert.deepEqual(p.secretHosts(), ["api.example.com", "*.b.test"]);
});

test("allowed host over TLS: value in Authorization and the listed headers, never the body", async () => {
  const { policy, ph } = setup({ headers: ["X-Twice"] });
  const v = await policy.onRequest(
    req({
      target: "/v1/items?q=1",
      headers: [
        ["Host", "api.example.com"],
        ["Authorization", `Bearer ${ph}`],
        ["x-twice", `${ph}:${ph}`],
      ],
    }),
    bodyOf(`body ${ph}`),
  );
  const out = forwarded(v);
  assert.deepEqual(header(out, "authorization"), [`Bearer ${VALUE}`]);
  assert.deepEqual(header(out, "x-twice"), [`${VALUE}:${VALUE}`], "names case-insensitive");
  assert.equal(out.target, "/v1/items?q=1");
  assert.equal((v as { body?: Buffer }).body, undefined, "body never rewritten");
});

test("Basic auth: credentials decoded, placeholder replaced, re-encoded", async () => {
  const { policy, ph } = setup();
  const basic = Buffer.from(`user:${ph}`).toString("base64");
  const out = forwarded(
    await policy.onRequest(req({ headers: [["Authorization", `Basic ${basic}`]] }), bodyOf()),
  );
  const [value] = header(out, "authorization");
  assert.match(value ?? "", /^Basic [A-Za-z0-9+/=]+$/);
  assert.equal(Buffer.from((value ?? "").slice(6), "base64").toString(), `user:${VALUE}`);
});

test("inQuery: opt-in query replacement, value percent-encoded so it stays one parameter", async () => {
  const { policy, ph } = setup({ inQuery: true });
  const out = forwarded(await policy.onRequest(req({ target: `/p?key=${ph}&b=2` }), bodyOf()));
  assert.equal(out.target, `/p?key=${encodeURIComponent(VALUE)}&b=2`);
  assert.equal(new URLSearchParams(out.target.split("?")[1]).get("key"), VALUE);
  // The path is still no place for it.
  const path = await policy.onRequest(req({ target: `/p/${ph}?key=${ph}` }), bodyOf());
  assert.equal(path.action === "block" && path.code, "secret_leak");
});

test("host patterns: globs and ports; empty hosts means every host (reference)", async () => {
  const glob = createHttpPolicy({ secrets: [spec({ hosts: ["*.example.com:8443"] })] });
  const gp = glob.placeholders().API_KEY as string;
  const h = (host: string, port: number) => req({ host, port, headers: [["Authorization", gp]] });
  assert.deepEqual(
    header(forwarded(await glob.onRequest(h("a.example.com", 8443), bodyOf())), "authorization"),
    [VALUE],
  );
  const wrongPort = await glob.onRequest(h("a.example.com", 443), bodyOf());
  assert.equal(wrongPort.action === "block" && wrongPort.code, "secret_leak");
  const any = createHttpPolicy({ secrets: [spec({ hosts: [] })] });
  const ap = any.placeholders().API_KEY as string;
  const out = forwarded(
    await any.onRequest(req({ host: "x.test", headers: [["Authorization", ap]] }), bodyOf()),
  );
  assert.deepEqual(header(out, "authorization"), [VALUE]);
  assert.deepEqual(any.secretHosts(), []);
});

test("leak: placeholder toward another host is blocked in every place and encoding", async () => {
  const { policy, ph } = setup();
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const pct = (s: string) => [...s].map((c) => `%${c.charCodeAt(0).toString(16)}`).join("");
  const cases: Array<[string, Partial<HttpRequestHead>]> = [
    ["header value", { headers: [["X-Key", `token ${ph}`]] }],
    ["header name", { headers: [[`X-${ph}`, "1"]] }],
    ["Basic", { headers: [["Authorization", `Basic ${b64(`u:${ph}`)}`]] }],
    ["Basic, odd offset", { headers: [["Authorization", `Basic ${b64(`xy:${ph}`)}`]] }],
    ["base64 in a custom header", { headers: [["X-Blob", b64(`{"k":"${ph}"}`)]] }],
    ["base64url in the query", { target: `/?t=${Buffer.from(`..${ph}`).toString("base64url")}` }],
    ["query", { target: `/x?k=${ph}` }],
    ["path", { target: `/upload/${ph}` }],
    ["percent-encoded path", { target: `/${pct(ph)}` }],
    ["encoded header value", { headers: [["X-Key", pct(ph)]] }],
    ["double-encoded", { target: `/?k=${pct(ph).replace(/%/g, "%25")}` }],
    ["upper-cased", { target: `/?k=${ph.toUpperCase()}` }],
    ["host label", { host: `${ph.toLowerCase()}.evil.test` }],
  ];
  for (const [what, over] of cases) {
    const v = await policy.onRequest(req({ host: "evil.test", headers: [], ...over }), bodyOf());
    assert.equal(v.action, "block", what);
    if (v.action !== "block") continue;
    assert.equal(v.code, "secret_leak", what);
    assert.match(v.reason, /API_KEY/, what);
    assert.ok(!v.reason.includes(VALUE) && !v.reason.includes(ph), what);
  }
  // Controls: the same request without the placeholder passes, and the body is not scanned.
  const clean = await policy.onRequest(req({ host: "evil.test" }), bodyOf(ph));
  assert.equal(clean.action, "forward");
});

test("leak check covers every secret: one allowed here, another not", async () => {
  const policy = createHttpPolicy({
    secrets: [spec(), spec({ name: "OTHER", value: "other-real", hosts: ["other.test"] })],
  });
  const { API_KEY: a, OTHER: o } = policy.placeholders() as Record<string, string>;
  const v = await policy.onRequest(
    req({
      headers: [
        ["Authorization", a as string],
        ["Proxy-Authorization", o as string],
      ],
    }),
    bodyOf(),
  );
  assert.equal(v.action === "block" && v.code, "secret_leak");
  assert.match((v as { reason: string }).reason, /OTHER/);
});

test("callbacks see placeholders only, before and after; a copied placeholder is caught", async () => {
  const seen: string[] = [];
  const policy = createHttpPolicy({
    secrets: [spec({ headers: ["X-Copied"] })],
    rules: [
      {
        hook: (ctx) => {
          seen.push(JSON.stringify(ctx.headers), ctx.query.toString());
          // Try to move the placeholder into a header of a request to a host not allowed.
          return { setHeaders: { "X-Copied": ctx.header("authorization") ?? "" } };
        },
      },
      { phase: "after", hook: (ctx) => void seen.push(JSON.stringify(ctx.request.headers)) },
    ],
  });
  const ph = policy.placeholders().API_KEY as string;
  const ok = forwarded(
    await policy.onRequest(req({ headers: [["Authorization", `Bearer ${ph}`]] }), bodyOf()),
  );
  assert.deepEqual(header(ok, "x-copied"), [`Bearer ${VALUE}`], "allowed host: substituted");
  await policy.onResponse(ok, res(), bodyOf());
  // The proxy might hand back a copy of the forwarded request: conceal works without identity.
  await policy.onResponse({ ...ok, headers: [...ok.headers] }, res(), bodyOf());
  assert.ok(seen.length === 4 && seen.every((s) => !s.includes(VALUE)), seen.join("\n"));
  assert.ok(seen[2]?.includes(ph) && seen[3]?.includes(ph));
  const leak = await policy.onRequest(
    req({ host: "evil.test", headers: [["Authorization", `Bearer ${ph}`]] }),
    bodyOf(),
  );
  assert.equal(leak.action === "block" && leak.code, "secret_leak");
});

test("the real value never shows in inspect, JSON, String or config errors", async () => {
  const set = new SecretSet([spec()]);
  const policy = createHttpPolicy({ secrets: [spec()] });
  const outputs = [
    inspect(set, { depth: 10, showHidden: true }),
    JSON.stringify(set),
    String(set),
    inspect(policy, { depth: 10, showHidden: true }),
    JSON.stringify(policy),
    String(policy.placeholders()),
    JSON.stringify(policy.placeholders()),
  ];
  for (const o of outputs) assert.ok(!o.includes(VALUE), o);
  assert.match(inspect(set), /API_KEY/);
  const bad = [
    spec({ hosts: ["bad host!"] }),
    spec({ name: "1BAD" }),
    spec({ value: `${VALUE}\r\nX-Injected: 1` }),
    spec({ hosts: "api.example.com" }),
    spec({ hosts: undefined }),
  ];
  for (const s of bad) {
    assert.throws(
      () => createHttpPolicy({ secrets: [s as never] }),
      (err: Error) => err instanceof ErrInvalidConfig && !err.message.includes("sk-live"),
    );
  }
  assert.throws(() => createHttpPolicy({ secrets: [spec(), spec()] }), /given twice/);
  assert.throws(() => createHttpPolicy({ secrets: [spec({ value: "" })] }), /empty value/);
});

test("redact: real values in text become placeholders; block reasons are redacted", async () => {
  const policy = createHttpPolicy({
    secrets: [spec()],
    rules: [
      {
        phase: "after",
        hook: async (ctx) => ({ action: "block", reason: (await ctx.body()).toString() }),
      },
    ],
  });
  const ph = policy.placeholders().API_KEY as string;
  assert.equal(policy.redact(`url?k=${VALUE}`), `url?k=${ph}`);
  // A server that echoes the secret, and a callback that puts the echo into its reason.
  const v = await policy.onResponse(req(), res(), bodyOf(`echo ${VALUE}`));
  assert.equal(v.action, "block");
  assert.ok(
    v.action === "block" && !v.reason.includes(VALUE) && v.reason.includes(ph),
    JSON.stringify(v),
  );
});
