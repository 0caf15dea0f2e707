/**
 * The proxy honours whatever an HttpPolicy decides: block, rewrite (head and body), answer
 * directly, replace or stream-transform the response, block a response, and a policy that
 * throws is a refusal.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Transform } from "node:stream";
import type { HttpPolicy, InterceptUpstream } from "../../src/net/intercept/index.js";
import { createHttpPolicy } from "../../src/net/http-policy/index.js";
import { createCa } from "../../src/net/tls/index.js";
import { guestRequest, settle, upstreamFixture, type Upstreams } from "./net-intercept-guest.js";

const ca = createCa();
const fixture = upstreamFixture(ca);
const up = (): Upstreams => fixture.up();
const proxy = (httpPolicy: HttpPolicy) => fixture.proxy({ httpPolicy });

const get = (p: InterceptUpstream, path = "/x", body?: Buffer) =>
  guestRequest(p, {
    name: "api.test",
    port: up().httpsPort,
    tls: true,
    caPem: ca.certPem,
    path,
    ...(body ? { method: "POST", body } : {}),
  });

const forwardResponse: HttpPolicy["onResponse"] = async (_req, response) => ({
  action: "forward",
  response,
});

test("a blocking request policy gives 403 and an event with its code", async () => {
  const { p, events } = proxy({
    onRequest: async () => ({
      action: "block",
      code: "secret_leak",
      reason: "placeholder to api.test",
    }),
    onResponse: forwardResponse,
  });
  const res = await get(p);
  assert.equal(res.status, 403);
  await settle(events);
  assert.equal(events[0]?.code, "secret_leak");
  assert.equal(events[0]?.blocked, true);
});

test("a rewritten request head and body reach the upstream; the policy can read the body", async () => {
  let seenBody = "";
  const { p } = proxy({
    onRequest: async (request, body) => {
      seenBody = (await body.readBody(1024)).toString();
      return {
        action: "forward",
        request: {
          ...request,
          target: "/rewritten?q=1",
          headers: [...request.headers, ["Authorization", "Bearer real-secret"]],
        },
        body: Buffer.from("new body"),
      };
    },
    onResponse: forwardResponse,
  });
  const res = await get(p, "/orig", Buffer.from("guest body"));
  assert.equal(seenBody, "guest body");
  const seen = JSON.parse(res.body.toString());
  assert.equal(seen.url, "/rewritten?q=1");
  assert.equal(seen.body, "new body");
  assert.ok((seen.headers as string[]).includes("Bearer real-secret"));
});

test("a body the policy read is forwarded as read", async () => {
  const { p } = proxy({
    onRequest: async (request, body) => {
      await body.readBody(1024);
      return { action: "forward", request };
    },
    onResponse: forwardResponse,
  });
  const res = await get(p, "/b", Buffer.from("kept as is"));
  assert.equal(JSON.parse(res.body.toString()).body, "kept as is");
});

test("a body over the policy's read limit is refused, not forwarded half-read", async () => {
  const { p } = proxy({
    onRequest: async (request, body) => {
      await body.readBody(4).catch(() => undefined);
      return { action: "forward", request };
    },
    onResponse: forwardResponse,
  });
  const res = await get(p, "/b", Buffer.alloc(64 * 1024, 0x62));
  assert.equal(res.status, 413);
});

test("a policy can answer a request itself", async () => {
  const { p, events } = proxy({
    onRequest: async () => ({
      action: "respond",
      response: { status: 418, headers: [["X-Hook", "1"]] },
      body: Buffer.from("from the hook"),
    }),
    onResponse: forwardResponse,
  });
  const res = await get(p);
  assert.equal(res.status, 418);
  assert.equal(res.headers["x-hook"], "1");
  assert.equal(res.body.toString(), "from the hook");
  await settle(events);
  assert.equal(events[0]?.status, 418);
  assert.equal(events[0]?.blocked, false);
});

test("response policies: replace the body, stream-transform it, or block it", async () => {
  const passRequest: HttpPolicy["onRequest"] = async (request) => ({ action: "forward", request });
  const replaced = proxy({
    onRequest: passRequest,
    onResponse: async (_req, response, body) => {
      const text = (await body.readBody(1 << 20)).toString();
      return {
        action: "forward",
        response: { ...response, headers: [...response.headers, ["X-Seen", String(text.length)]] },
        body: Buffer.from(text.replace("GET", "X-REPLACED")),
      };
    },
  });
  const r1 = await get(replaced.p);
  assert.match(r1.body.toString(), /X-REPLACED/);
  assert.ok(Number(r1.headers["x-seen"]) > 0);
  assert.equal(Number(r1.headers["content-length"]), r1.body.length);

  const upper = proxy({
    onRequest: passRequest,
    onResponse: async (_req, response) => ({
      action: "forward",
      response,
      transformBody: () =>
        new Transform({
          transform(chunk: Buffer, _e, cb) {
            cb(null, Buffer.from(chunk.toString().toUpperCase()));
          },
        }),
    }),
  });
  const r2 = await get(upper.p, "/lower");
  assert.match(r2.body.toString(), /"URL":"\/LOWER"/);

  const blocked = proxy({
    onRequest: passRequest,
    onResponse: async () => ({ action: "block", code: "blocked_by_rule", reason: "no" }),
  });
  const r3 = await get(blocked.p);
  assert.equal(r3.status, 403);
  await settle(blocked.events);
  assert.equal(blocked.events[0]?.code, "blocked_by_rule");
});

test("a policy that throws refuses the request", async () => {
  const { p, events } = proxy({
    onRequest: async () => {
      throw new Error("hook timed out");
    },
    onResponse: forwardResponse,
  });
  const res = await get(p);
  assert.equal(res.status, 403);
  await settle(events);
  assert.match(events[0]?.reason ?? "", /hook timed out/);
});

test("a policy that retargets a request is still held to the allowlist", async () => {
  const { p, events } = proxy({
    onRequest: async (request) => ({
      action: "forward",
      request: { ...request, host: "evil.test" },
    }),
    onResponse: forwardResponse,
  });
  const res = await get(p);
  assert.equal(res.status, 403);
  await settle(events);
  assert.equal(events[0]?.code, "host_not_allowed");
});

test("with the real HTTP policy: a secret reaches its host, and a placeholder elsewhere is blocked", async () => {
  const policy = createHttpPolicy({
    // The upstream listens on a test port: no port in the entry would mean 443 only.
    secrets: [{ name: "TOKEN", value: "real-value-123", hosts: [`api.test:${up().httpsPort}`] }],
    rules: [
      {
        phase: "after",
        hosts: ["api.test"],
        bodyReplacements: [{ find: "real-value-123", replace: "[redacted]" }],
      },
    ],
  });
  const placeholder = policy.placeholders().TOKEN ?? "";
  const made = fixture.proxy({ httpPolicy: policy, allowedHosts: ["api.test", "plain.test"] });
  const ok = await guestRequest(made.p, {
    name: "api.test",
    port: up().httpsPort,
    tls: true,
    caPem: ca.certPem,
    headers: { authorization: `Bearer ${placeholder}` },
  });
  assert.equal(ok.status, 200);
  // The upstream echoed the real value; the after-rule rewrote it before the guest saw it.
  assert.match(ok.body.toString(), /Bearer \[redacted\]/);
  assert.doesNotMatch(ok.body.toString(), /real-value-123/);
  const leak = await guestRequest(made.p, {
    name: "plain.test",
    port: up().httpPort,
    tls: false,
    headers: { authorization: `Bearer ${placeholder}` },
  });
  assert.equal(leak.status, 403);
  await settle(made.events, 2);
  assert.equal(made.events[1]?.code, "secret_leak");
  assert.doesNotMatch(JSON.stringify(made.events), /real-value-123/);
});
