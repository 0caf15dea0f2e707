// The host side of attribution: batching, caching by pid, deadlines, answers mapped to execs.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { AttributionKey, GuestAttribution } from "../../src/channel/index.js";
import { Attributor } from "../../src/observe/index.js";
import { PROMPTLY_MS } from "../helpers/timing.js";

function fakeGuest(table: Record<string, GuestAttribution["state"] | undefined>) {
  const calls: AttributionKey[][] = [];
  const ask = async (keys: readonly AttributionKey[]): Promise<GuestAttribution[]> => {
    calls.push([...keys]);
    return keys.map((k) => {
      const state = table[`${k.kind}:${k.key}`] ?? "gone";
      if (state === "gone") return { kind: k.kind, key: k.key, state };
      return {
        kind: k.kind,
        key: k.key,
        state,
        pid: k.kind === "pid" ? k.key : 500 + k.key,
        argv: ["curl", "x"],
        ...(state === "exec" ? { execStream: 7 } : {}),
      };
    });
  };
  return { ask, calls };
}

test("questions asked together go in one request, and answers name the exec", async () => {
  const guest = fakeGuest({ "pid:10": "exec", "pid:11": "none", "tcp:40000": "exec" });
  const a = new Attributor();
  a.connect(guest.ask);
  const [p10, p11, p12, sock] = await Promise.all([
    a.forPid(10),
    a.forPid(11),
    a.forPid(12),
    a.forSocket("tcp", 40000),
  ]);
  assert.equal(guest.calls.length, 1);
  assert.equal(guest.calls[0]!.length, 4);
  assert.deepEqual(p10, { execId: 7, pid: 10, command: ["curl", "x"] });
  assert.deepEqual(p11, { execId: null, pid: 11, command: ["curl", "x"] });
  assert.equal(p12, undefined, "a process that is gone is unknown");
  assert.deepEqual(sock, { execId: 7, pid: 40500, command: ["curl", "x"] });
});

test("a process's answer is reused without asking (synchronously) until it expires", async () => {
  const guest = fakeGuest({ "pid:10": "exec" });
  const a = new Attributor({ pidTtlMs: 50, pidStaleMs: 0 });
  a.connect(guest.ask);
  const first = a.forPid(10);
  assert.ok(first instanceof Promise);
  const again = a.forPid(10);
  assert.equal(again, first, "a question in flight is shared");
  await first;
  assert.deepEqual(a.forPid(10), { execId: 7, pid: 10, command: ["curl", "x"] });
  assert.equal(guest.calls.length, 1);
  await new Promise((r) => setTimeout(r, 60));
  assert.ok(a.forPid(10) instanceof Promise, "asked again after the TTL");
});

test("a stale answer is used at once while it is asked again in the background", async () => {
  const table: Record<string, "exec" | "none" | "gone"> = { "pid:10": "exec" };
  const guest = fakeGuest(table);
  const a = new Attributor({ pidTtlMs: 20, pidStaleMs: 1000 });
  a.connect(guest.ask);
  await a.forPid(10);
  await new Promise((r) => setTimeout(r, 30));
  table["pid:10"] = "gone";
  assert.deepEqual(a.forPid(10), { execId: 7, pid: 10, command: ["curl", "x"] }, "stale, at once");
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(guest.calls.length, 2, "asked again");
  assert.ok(a.forPid(10) instanceof Promise, "gone now: nothing stale is kept");
});

test("a guest that does not answer makes the answer unknown after the deadline", async () => {
  const a = new Attributor({ timeoutMs: 30 });
  a.connect(() => new Promise(() => undefined));
  // The deadline does not keep a process alive on its own (a sandbox does): this test does.
  const keepAlive = setTimeout(() => undefined, PROMPTLY_MS);
  const started = Date.now();
  assert.equal(await a.forSocket("tcp", 1), undefined);
  assert.ok(Date.now() - started < PROMPTLY_MS);
  clearTimeout(keepAlive);
});

test("more than 64 questions are split into requests of at most 64 keys", async () => {
  const guest = fakeGuest({});
  const a = new Attributor();
  a.connect(guest.ask);
  await Promise.all(Array.from({ length: 130 }, (_, i) => a.forPid(100 + i)));
  assert.deepEqual(
    guest.calls.map((c) => c.length),
    [64, 64, 2],
  );
});

test("before the agent is connected everything is no exec's; after close, unknown", async () => {
  const a = new Attributor();
  assert.deepEqual(a.forPid(42), { execId: null, pid: 42 });
  assert.deepEqual(a.forPid(1), { execId: null, pid: 1 });
  assert.equal(a.forPid(0), undefined, "pid 0: the kernel on nobody's behalf");
  a.connect(fakeGuest({}).ask);
  a.close();
  assert.equal(a.forPid(42), undefined);
  assert.equal(await a.forSocket("udp", 5), undefined);
});

test("a guest cannot pin a request on an exec the host never started, nor answer out of turn", async () => {
  const known = new Set([7]);
  const lying = (answers: (keys: readonly AttributionKey[]) => GuestAttribution[]) => {
    const a = new Attributor({ isKnownExec: (id) => known.has(id) });
    a.connect(async (keys) => answers(keys));
    return a;
  };
  // An exec id the host never handed out.
  const forged = lying((keys) =>
    keys.map((k) => ({ kind: k.kind, key: k.key, state: "exec", execStream: 99, pid: 10 })),
  );
  assert.equal(await forged.forPid(10), undefined);
  assert.equal(await forged.forSocket("tcp", 40000), undefined);
  // Answers about other keys, or a pid answer naming another process.
  const shuffled = lying((keys) =>
    [...keys]
      .reverse()
      .map((k) => ({ kind: k.kind, key: k.key, state: "exec", execStream: 7, pid: k.key })),
  );
  const [p10, p11] = await Promise.all([shuffled.forPid(10), shuffled.forPid(11)]);
  assert.deepEqual([p10, p11], [undefined, undefined]);
  const otherPid = lying((keys) =>
    keys.map((k) => ({ kind: k.kind, key: k.key, state: "exec", execStream: 7, pid: 12 })),
  );
  assert.equal(await otherPid.forPid(10), undefined);
  // The same answer about a known exec is taken.
  const honest = lying((keys) =>
    keys.map((k) => ({ kind: k.kind, key: k.key, state: "exec", execStream: 7, pid: k.key })),
  );
  assert.deepEqual(await honest.forPid(10), { execId: 7, pid: 10 });
});
