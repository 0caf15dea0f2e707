/**
 * Where a secret's value may go (issue 19, finding 3): only over TLS unless the secret allows
 * plain HTTP, only to the entry's port (443 for an entry without one; 80 too for plain HTTP
 * with allowHttp), only in Authorization, Proxy-Authorization and the headers it lists. A
 * placeholder anywhere else blocks the request and nothing is forwarded.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { ErrInvalidConfig } from "../../src/errors.js";
import type { HttpRequestHead, RequestVerdict } from "../../src/net/intercept/contract.js";
import { SecretSet, createHttpPolicy } from "../../src/net/http-policy/index.js";
import type { SecretSpec } from "../../src/net/http-policy/index.js";
import { bodyOf, header, req } from "./net-http-policy-fixtures.js";

const VALUE = "sk-live-scope-3f9a7c";

function setup(over: Partial<SecretSpec> = {}) {
  const policy = createHttpPolicy({
    secrets: [{ name: "API_KEY", value: VALUE, hosts: ["api.example.com"], ...over }],
  });
  return { policy, ph: policy.placeholders().API_KEY as string };
}

const bearer = (ph: string): Partial<HttpRequestHead> => ({
  headers: [
    ["Host", "api.example.com"],
    ["Authorization", `Bearer ${ph}`],
  ],
});

function blocked(v: RequestVerdict, code: string, what: string): string {
  assert.equal(v.action, "block", `${what}: ${JSON.stringify(v)}`);
  const b = v as Extract<RequestVerdict, { action: "block" }>;
  assert.equal(b.code, code, what);
  assert.match(b.reason, /API_KEY/, what);
  assert.ok(!JSON.stringify(v).includes(VALUE), `${what}: value in the verdict`);
  return b.reason;
}

function sentValue(v: RequestVerdict, name: string, expected: string, what: string): void {
  assert.equal(v.action, "forward", `${what}: ${JSON.stringify(v)}`);
  const out = (v as Extract<RequestVerdict, { action: "forward" }>).request;
  assert.deepEqual(header(out, name), [expected], what);
}

test("plain HTTP to the secret's host never carries the value: port 80, 8080, even 443", async () => {
  const { policy, ph } = setup();
  for (const port of [80, 8080, 443]) {
    const v = await policy.onRequest(req({ scheme: "http", port, ...bearer(ph) }), bodyOf());
    const reason = blocked(v, "secret_requires_tls", `http:${port}`);
    assert.match(reason, /only sent over TLS/);
    assert.ok(!reason.includes(ph));
  }
  // An explicit port does not lift the TLS requirement.
  const explicit = setup({ hosts: ["api.example.com:8080"] });
  const v = await explicit.policy.onRequest(
    req({ scheme: "http", port: 8080, ...bearer(explicit.ph) }),
    bodyOf(),
  );
  blocked(v, "secret_requires_tls", "explicit port over http");
});

test("an entry without a port means 443; another TLS port needs an explicit entry", async () => {
  const { policy, ph } = setup();
  sentValue(
    await policy.onRequest(req({ port: 443, ...bearer(ph) }), bodyOf()),
    "authorization",
    `Bearer ${VALUE}`,
    "https:443",
  );
  const other = await policy.onRequest(req({ port: 8443, ...bearer(ph) }), bodyOf());
  assert.match(blocked(other, "secret_leak", "https:8443"), /port 8443.*bound to port 443/);
  const explicit = setup({ hosts: ["api.example.com:8443", "*.example.com"] });
  sentValue(
    await explicit.policy.onRequest(req({ port: 8443, ...bearer(explicit.ph) }), bodyOf()),
    "authorization",
    `Bearer ${VALUE}`,
    "explicit :8443",
  );
  const v = await explicit.policy.onRequest(
    req({ host: "b.example.com", port: 8443, ...bearer(explicit.ph) }),
    bodyOf(),
  );
  blocked(v, "secret_leak", "glob without port on :8443");
});

test("allowHttp: plain HTTP on 80 (entry without port) or the entry's port; TLS still works", async () => {
  const { policy, ph } = setup({ allowHttp: true });
  for (const [scheme, port] of [
    ["http", 80],
    ["https", 443],
  ] as const)
    sentValue(
      await policy.onRequest(req({ scheme, port, ...bearer(ph) }), bodyOf()),
      "authorization",
      `Bearer ${VALUE}`,
      `${scheme}:${port}`,
    );
  for (const [scheme, port] of [
    ["http", 8080],
    ["http", 443],
    ["https", 80],
  ] as const) {
    const v = await policy.onRequest(req({ scheme, port, ...bearer(ph) }), bodyOf());
    blocked(v, "secret_leak", `${scheme}:${port}`);
  }
  const explicit = setup({ hosts: ["api.example.com:8080"], allowHttp: true });
  sentValue(
    await explicit.policy.onRequest(
      req({ scheme: "http", port: 8080, ...bearer(explicit.ph) }),
      bodyOf(),
    ),
    "authorization",
    `Bearer ${VALUE}`,
    "http:8080 explicit",
  );
});

test("a placeholder outside the secret's places is blocked even toward its host", async () => {
  const { policy, ph } = setup({ headers: ["X-Api-Key"] });
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const cases: Array<[string, Partial<HttpRequestHead>, RegExp]> = [
    ["unlisted header", { headers: [["X-Other-Key", ph]] }, /header X-Other-Key/],
    ["cookie", { headers: [["Cookie", `k=${ph}`]] }, /header Cookie/],
    ["base64 in a header", { headers: [["X-Blob", b64(`{"k":"${ph}"}`)]] }, /header X-Blob/],
    ["header name", { headers: [[`X-${ph}`, "1"]] }, /a header name/],
    ["path", { target: `/v1/${ph}` }, /the path/],
    ["query without inQuery", { target: `/v1?key=${ph}` }, /the query/],
    [
      "percent-encoded query",
      { target: `/v1?key=%${ph.charCodeAt(0).toString(16)}${ph.slice(1)}` },
      /the query/,
    ],
  ];
  for (const [what, over, where] of cases) {
    const v = await policy.onRequest(req(over), bodyOf());
    const reason = blocked(v, "secret_leak", what);
    assert.match(reason, where, what);
    assert.match(reason, /only in Authorization, Proxy-Authorization, X-Api-Key/, what);
    assert.ok(!reason.includes(ph), what);
  }
  // Controls: the listed header (any case) and Authorization carry it.
  sentValue(
    await policy.onRequest(req({ headers: [["x-api-key", ph]] }), bodyOf()),
    "x-api-key",
    VALUE,
    "listed header",
  );
});

test("Basic credentials are substituted in Authorization and Proxy-Authorization", async () => {
  const { policy, ph } = setup();
  const basic = `Basic ${Buffer.from(`user:${ph}`).toString("base64")}`;
  for (const name of ["Authorization", "Proxy-Authorization"]) {
    const v = await policy.onRequest(req({ headers: [[name, basic]] }), bodyOf());
    assert.equal(v.action, "forward", name);
    const [got] = header((v as { request: HttpRequestHead }).request, name);
    assert.equal(Buffer.from((got ?? "").slice(6), "base64").toString(), `user:${VALUE}`, name);
  }
});

test("one secret over TLS only, another allowing HTTP: a plain request carrying both is blocked", async () => {
  const policy = createHttpPolicy({
    secrets: [
      { name: "OPEN", value: "open-value", hosts: ["api.example.com"], allowHttp: true },
      { name: "API_KEY", value: VALUE, hosts: ["api.example.com"] },
    ],
  });
  const { OPEN: open, API_KEY: key } = policy.placeholders() as Record<string, string>;
  const both = req({
    scheme: "http",
    port: 80,
    headers: [
      ["Authorization", `Bearer ${open}`],
      ["Proxy-Authorization", `Bearer ${key}`],
    ],
  });
  const v = await policy.onRequest(both, bodyOf());
  blocked(v, "secret_requires_tls", "both");
  assert.ok(!JSON.stringify(v).includes("open-value"));
  const one = req({ scheme: "http", port: 80, headers: [["Authorization", `Bearer ${open}`]] });
  sentValue(await policy.onRequest(one, bodyOf()), "authorization", "Bearer open-value", "open");
});

test("hooks run first: a callback moving the placeholder into an unlisted header is blocked", async () => {
  const policy = createHttpPolicy({
    secrets: [{ name: "API_KEY", value: VALUE, hosts: ["api.example.com"] }],
    rules: [{ hook: (ctx) => ({ setHeaders: { "X-Copy": ctx.header("authorization") ?? "" } }) }],
  });
  const ph = policy.placeholders().API_KEY as string;
  const v = await policy.onRequest(req(bearer(ph)), bodyOf());
  assert.match(blocked(v, "secret_leak", "hook copy"), /header X-Copy/);
});

test("config: headers must be header names the proxy does not own; inspect shows the scope", () => {
  const bad: Array<[unknown, RegExp]> = [
    ["X-Api-Key", /headers must be an array/],
    [["Host"], /"Host" is managed by the proxy/],
    [["content-length"], /managed by the proxy/],
    [["bad name"], /bad header name/],
    [[7], /header names must be strings/],
  ];
  for (const [headers, re] of bad)
    assert.throws(
      () =>
        createHttpPolicy({
          secrets: [{ name: "K", value: VALUE, hosts: ["a.test"], headers: headers as string[] }],
        }),
      (err: Error) =>
        err instanceof ErrInvalidConfig && re.test(err.message) && !err.message.includes(VALUE),
    );
  const set = new SecretSet([
    {
      name: "K",
      value: VALUE,
      hosts: ["a.test"],
      headers: ["X-Api-Key", "x-api-key"],
      allowHttp: true,
    },
  ]);
  const shown = inspect(set);
  assert.match(shown, /Authorization', 'Proxy-Authorization', 'X-Api-Key' \]/);
  assert.match(shown, /allowHttp: true/);
  assert.ok(!shown.includes(VALUE) && !JSON.stringify(set).includes(VALUE));
});
