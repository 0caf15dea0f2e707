// Live approval's queue: decisions, the bound on waiting requests, timeouts, and requests that
// are never approvable.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { RefusedRequest } from "../../src/net/index.js";
import {
  ApprovalQueue,
  MAX_APPROVED_ENTRIES,
  type ApprovalEventInfo,
  type ApprovalHooks,
} from "../../src/observe/index.js";

let nextId = 1;
function refused(host = "pypi.org", port = 443): RefusedRequest {
  return {
    requestId: nextId++,
    method: "GET",
    url: `https://${host}/simple/`,
    scheme: "https",
    host,
    port,
    reason: `host ${host} is not in the allowlist`,
    attribution: { execId: 3, pid: 99, command: ["pip", "install", "x"] },
  };
}

function queue(
  settings: { timeoutMs?: number; maxPending?: number } = {},
  decide?: ApprovalHooks["decide"],
) {
  const allowed: string[] = [];
  const events: ApprovalEventInfo[] = [];
  const q = new ApprovalQueue(
    { timeoutMs: settings.timeoutMs ?? 5000, maxPending: settings.maxPending ?? 4 },
    { ...(decide ? { decide } : {}), allow: (e) => allowed.push(e), emit: (e) => events.push(e) },
  );
  return { q, allowed, events };
}

test("a held request is listed, and an approval once lets it through without widening the list", async () => {
  const { q, allowed, events } = queue();
  const r = refused();
  const outcome = q.hold(r);
  const [pending] = q.pending();
  assert.equal(pending?.requestId, r.requestId);
  assert.deepEqual(pending?.attribution, r.attribution);
  assert.equal(q.decide(r.requestId, "once"), true);
  const result = await outcome;
  assert.equal(result.allow, true);
  assert.equal(result.note?.approval?.decision, "once");
  assert.deepEqual(allowed, []);
  assert.deepEqual(q.pending(), []);
  assert.deepEqual(
    events.map((e) => [e.state, e.decision, e.by]),
    [
      ["pending", undefined, undefined],
      ["decided", "once", "api"],
    ],
  );
  assert.equal(q.decide(r.requestId, "deny"), false, "decided already");
});

test("an approval for the sandbox adds host:port to the allowlist", async () => {
  const { q, allowed } = queue({}, () => "sandbox");
  const result = await q.hold(refused("files.pythonhosted.org", 8443));
  assert.equal(result.allow, true);
  assert.deepEqual(allowed, ["files.pythonhosted.org:8443"]);
});

test("deny, a throwing callback and a callback's nonsense all refuse", async () => {
  for (const decide of [
    () => "deny" as const,
    () => {
      throw new Error("boom");
    },
    () => "maybe" as never,
  ]) {
    const { q, allowed } = queue({}, decide);
    const result = await q.hold(refused());
    assert.equal(result.allow, false);
    assert.match(result.reason ?? "", /denied/);
    assert.deepEqual(allowed, []);
  }
});

test("nobody deciding denies at the timeout", async () => {
  const { q, events } = queue({ timeoutMs: 40 });
  const result = await q.hold(refused());
  assert.equal(result.allow, false);
  assert.equal(result.note?.approval?.decision, "timeout");
  assert.ok((result.note?.approval?.waitedMs ?? 0) >= 30);
  assert.match(result.reason ?? "", /no approval within 40 ms/);
  assert.equal(events.at(-1)?.by, "timeout");
});

test("beyond maxPending requests are denied at once, not held", async () => {
  const { q } = queue({ maxPending: 2 });
  const held = [q.hold(refused()), q.hold(refused())];
  const third = await q.hold(refused());
  assert.equal(third.allow, false);
  assert.equal(third.note?.approval?.decision, "cap");
  assert.equal(q.pending().length, 2);
  q.close();
  for (const h of await Promise.all(held)) assert.equal(h.allow, false);
});

test("private, loopback and metadata addresses are never held, whatever the decider says", async () => {
  let asked = 0;
  const { q, allowed } = queue({}, () => {
    asked++;
    return "sandbox";
  });
  for (const host of [
    "169.254.169.254",
    "127.0.0.1",
    "10.1.2.3",
    "192.168.0.1",
    "localhost",
    "a.localhost",
  ]) {
    const result = await q.hold(refused(host, 80));
    assert.equal(result.allow, false, host);
    assert.match(result.reason ?? "", /never approvable/);
  }
  assert.equal(asked, 0);
  assert.deepEqual(allowed, []);
  assert.deepEqual(q.pending(), []);
});

test("held requests stay bounded under a flood: the cap answers at once, the timeout frees slots", async () => {
  const { q, events } = queue({ timeoutMs: 30, maxPending: 3 });
  const flood = Array.from({ length: 200 }, () => q.hold(refused()));
  assert.equal(q.pending().length, 3, "only maxPending are held");
  const outcomes = await Promise.all(flood);
  assert.equal(outcomes.filter((o) => o.note?.approval?.decision === "cap").length, 197);
  assert.equal(outcomes.filter((o) => o.note?.approval?.decision === "timeout").length, 3);
  assert.ok(outcomes.every((o) => !o.allow));
  assert.deepEqual(q.pending(), [], "nothing is kept after its decision");
  // Freed slots take new requests again.
  const later = q.hold(refused());
  assert.equal(q.pending().length, 1);
  assert.equal((await later).note?.approval?.decision, "timeout");
  assert.equal(events.filter((e) => e.state === "pending").length, 4);
});

test("a decider that always says sandbox cannot grow the allowlist past MAX_APPROVED_ENTRIES", async () => {
  const { q, allowed } = queue({ maxPending: 8 }, () => "sandbox");
  for (let i = 0; i < MAX_APPROVED_ENTRIES + 10; i++) {
    const result = await q.hold(refused(`h${i}.test`));
    assert.equal(result.allow, true, "each request still goes");
  }
  assert.equal(allowed.length, MAX_APPROVED_ENTRIES);
});

test("a request whose guest left stops being held at once and frees its place", async () => {
  const { q, events } = queue({ timeoutMs: 60_000, maxPending: 1 });
  const left = new AbortController();
  const first = q.hold(refused(), left.signal);
  assert.equal(q.pending().length, 1);
  left.abort();
  const outcome = await first;
  assert.equal(outcome.allow, false);
  assert.equal(outcome.note?.approval?.decision, "gone");
  assert.deepEqual(q.pending(), []);
  assert.deepEqual(events.at(-1)?.by, "guest");
  // The place is free: the next request is held, not capped.
  const next = q.hold(refused());
  assert.equal(q.pending().length, 1);
  q.close();
  assert.equal((await next).note?.approval?.decision, "deny");
  // Already gone when it arrives: not held, not listed, nobody asked.
  const gone = new AbortController();
  gone.abort();
  const { q: q2, events: e2 } = queue({}, () => "once");
  assert.equal((await q2.hold(refused(), gone.signal)).allow, false);
  assert.deepEqual(e2, []);
});

test("the decider is told when its request stops waiting otherwise (decided elsewhere, guest left)", async () => {
  const signals: AbortSignal[] = [];
  const { q } = queue({}, (_r, ended) => {
    signals.push(ended);
    return new Promise(() => undefined); // a person who never answers
  });
  const a = refused();
  const decidedElsewhere = q.hold(a);
  const left = new AbortController();
  const guestLeft = q.hold(refused(), left.signal);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    signals.map((s) => s.aborted),
    [false, false],
  );
  q.decide(a.requestId, "deny");
  await decidedElsewhere;
  left.abort();
  await guestLeft;
  assert.deepEqual(
    signals.map((s) => s.aborted),
    [true, true],
  );
});

test("deny for the sandbox refuses later requests to that host:port without asking, and not others", async () => {
  let asked = 0;
  const { q, allowed, events } = queue({}, () => (asked++, new Promise(() => undefined)));
  const first = refused("pypi.org", 443);
  const firstOutcome = q.hold(first);
  const waiting = q.hold(refused("pypi.org", 443)); // asked too, before the decision
  await new Promise((r) => setImmediate(r));
  assert.equal(q.decide(first.requestId, "deny-sandbox"), true);
  const [a, b] = await Promise.all([firstOutcome, waiting]);
  assert.equal(a.allow, false);
  assert.equal(a.note?.approval?.decision, "deny-sandbox");
  assert.equal(
    b.note?.approval?.decision,
    "deny-sandbox",
    "one waiting for the same host goes too",
  );
  const later = await q.hold(refused("pypi.org", 443));
  assert.equal(later.allow, false);
  assert.match(later.reason ?? "", /denied for the sandbox/);
  assert.deepEqual(later.note?.approval, { decision: "deny-sandbox", waitedMs: 0 });
  assert.equal(asked, 2, "the later one was not asked about");
  assert.deepEqual(allowed, [], "nothing joins the allowlist");
  assert.deepEqual(
    events.filter((e) => e.state === "decided").map((e) => e.decision),
    ["deny-sandbox", "deny-sandbox"],
  );
  // Another port of the host, or another host, is still asked about.
  void q.hold(refused("pypi.org", 80));
  void q.hold(refused("files.pythonhosted.org", 443));
  await new Promise((r) => setImmediate(r));
  assert.equal(q.pending().length, 2);
  q.close();
});

test("approval for the sandbox lets requests to that host:port still waiting through too", async () => {
  const { q, allowed, events } = queue({ timeoutMs: 60_000 });
  const first = refused("pypi.org", 443);
  const firstOutcome = q.hold(first);
  const waiting = q.hold(refused("pypi.org", 443));
  const other = q.hold(refused("pypi.org", 80));
  assert.equal(q.decide(first.requestId, "sandbox"), true);
  const [a, b] = await Promise.all([firstOutcome, waiting]);
  assert.equal(a.allow, true);
  assert.equal(b.allow, true, "the one waiting for the same host:port is not left to time out");
  assert.equal(b.note?.approval?.decision, "sandbox");
  assert.deepEqual(allowed, ["pypi.org:443"], "the entry is added once");
  assert.deepEqual(
    q.pending().map((r) => r.port),
    [80],
    "another port is still asked about",
  );
  assert.deepEqual(
    events.filter((e) => e.state === "decided").map((e) => e.decision),
    ["sandbox", "sandbox"],
  );
  q.close();
  assert.equal((await other).allow, false);
});
