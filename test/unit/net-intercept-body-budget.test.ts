/**
 * Bodies the HTTP policy reads are buffered whole (up to 16 MiB each). A guest that opens many
 * requests at once to a host whose hooks read bodies must not multiply that by its flows and
 * streams: all bodies under inspection of one sandbox share one budget, beyond which a read is
 * refused (that request only), and what a finished exchange held is given back.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { HttpPolicy } from "../../src/net/intercept/index.js";
import { createCa } from "../../src/net/tls/index.js";
import { guestRequest, patternBytes, upstreamFixture } from "./net-intercept-guest.js";
import { guestH2, h2Request, startH2Upstreams } from "./net-intercept-h2-fixtures.js";
import { InterceptUpstream } from "../../src/net/intercept/index.js";
import { EgressPolicy } from "../../src/net/policy/index.js";

const ca = createCa();
const fixture = upstreamFixture(ca);
const MiB = 1024 * 1024;

/** A policy that reads every request body, then holds it until `open()` is called. */
function holdingPolicy() {
  let opened!: () => void;
  const gate = new Promise<void>((r) => (opened = r));
  const read: number[] = [];
  const refused: string[] = [];
  const policy: HttpPolicy = {
    onRequest: async (request, body) => {
      try {
        read.push((await body.readBody(16 * MiB)).length);
      } catch (err) {
        refused.push((err as Error).message);
        throw err;
      }
      await gate;
      return { action: "forward", request };
    },
    onResponse: async (_req, response) => ({ action: "forward", response }),
  };
  return { policy, read, refused, open: () => opened() };
}

async function until(ok: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !ok() && Date.now() < end;)
    await new Promise((r) => setTimeout(r, 20));
}

test("attack: many large request bodies at once hold no more than the sandbox's body budget", async () => {
  const h = holdingPolicy();
  const { p } = fixture.proxy({ httpPolicy: h.policy, bodyBudgetBytes: 8 * MiB });
  const post = (body: Buffer) =>
    guestRequest(p, {
      name: "api.test",
      port: fixture.up().httpsPort,
      tls: true,
      caPem: ca.certPem,
      method: "POST",
      path: "/echo",
      body,
    });
  // Six bodies of 3 MiB: 18 MiB against a budget of 8 MiB.
  const body = patternBytes(3 * MiB);
  const answers = Array.from({ length: 6 }, () => post(body));
  await until(() => h.read.length + h.refused.length === 6);
  assert.equal(h.read.length + h.refused.length, 6, "every request reached the policy");
  assert.ok(h.read.length <= 2, `${h.read.length} bodies of 3 MiB held against 8 MiB`);
  assert.ok(h.refused.length >= 4);
  assert.match(h.refused[0] ?? "", /bodies under inspection hold 8 MiB already/);
  h.open();
  const statuses = (await Promise.all(answers)).map((r) => r.status).sort();
  assert.deepEqual(statuses.filter((s) => s === 200).length, h.read.length);
  assert.ok(statuses.every((s) => s === 200 || s >= 400));

  // The finished exchanges gave their share back: two more bodies fit at once again.
  const second = await Promise.all([post(body), post(body)]);
  assert.deepEqual(
    second.map((r) => r.status),
    [200, 200],
    "the budget was not given back after the first exchanges ended",
  );
});

test("attack: HTTP/2 streams with large bodies share the same budget", async () => {
  const h2 = await startH2Upstreams();
  const h = holdingPolicy();
  const p = new InterceptUpstream({
    policy: new EgressPolicy({ allowedHosts: ["api.test"], allowPrivateHosts: true }),
    httpPolicy: h.policy,
    ca,
    resolveOverrides: new Map([["api.test", "127.0.0.1"]]),
    bodyBudgetBytes: 8 * MiB,
  });
  try {
    const session = await guestH2(p, "api.test", h2.h2cPort, undefined);
    const body = patternBytes(3 * MiB);
    const answers = Array.from({ length: 5 }, () =>
      h2Request(session, { ":method": "POST", ":path": "/echo" }, body).then(
        (r) => r.status,
        () => 0,
      ),
    );
    await until(() => h.read.length + h.refused.length === 5);
    assert.ok(h.read.length <= 2, `${h.read.length} bodies of 3 MiB held against 8 MiB`);
    assert.ok(h.refused.length >= 3, `${h.refused.length} refused`);
    h.open();
    const statuses = await Promise.all(answers);
    assert.equal(statuses.filter((s) => s === 200).length, h.read.length);
    // Given back: a new stream's body is read again.
    const after = await h2Request(session, { ":method": "POST", ":path": "/echo" }, body);
    assert.equal(after.status, 200);
    session.close();
  } finally {
    p.close();
    h2.close();
  }
});
