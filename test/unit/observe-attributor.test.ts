// The host side of attribution: batching, caching by pid, deadlines, answers mapped to execs.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { AttributionKey, GuestAttribution } from "../../src/channel/index.js";
import { Attributor } from "../../src/observe/index.js";
import { PROMPTLY_MS } from "../helpers/timing.js";

/**
 * Answers from `table` ("kind:key" -> state); a socket's holder is pid 500 + port. `cgroups`
 * (pid -> cgroup2 id) is what a stamping agent adds to each answer.
 */
function fakeGuest(
  table: Record<string, GuestAttribution["state"] | undefined>,
  cgroups: Record<number, bigint> = {},
) {
  const calls: AttributionKey[][] = [];
  const ask = async (keys: readonly AttributionKey[]): Promise<GuestAttribution[]> => {
    calls.push([...keys]);
    return keys.map((k) => {
      const state = table[`${k.kind}:${k.key}`] ?? "gone";
      if (state === "gone") return { kind: k.kind, key: k.key, state };
      const pid = k.kind === "pid" ? k.key : 500 + k.key;
      const cgroup = cgroups[pid];
      return {
        kind: k.kind,
        key: k.key,
        state,
        pid,
        argv: ["curl", "x"],
        ...(state === "exec" ? { execStream: 7 } : {}),
        ...(cgroup !== undefined ? { cgroup } : {}),
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

// ---- SYN stamps (docs/OBSERVE.md): a connection from a process seen lately costs no question.

const CURL = { execId: 7, pid: 10, command: ["curl", "x"] };

test("a stamp naming a process seen lately in that cgroup is answered at once, asking nothing", async () => {
  const guest = fakeGuest({ "pid:10": "exec", "tcp:40000": "exec" }, { 10: 77n, 40500: 78n });
  const a = new Attributor();
  a.connect(guest.ask);
  await a.forPid(10); // a file request, say
  await a.forSocket("tcp", 40000); // or an unstamped connection: its holder is kept too
  const asked = guest.calls.length;
  assert.deepEqual(a.forStamp({ pid: 10, cgroup: 77n }, 40001), CURL, "no promise: at once");
  const holder = a.forStamp({ pid: 40500, cgroup: 78n }, 40002);
  assert.deepEqual(holder, { execId: 7, pid: 40500, command: ["curl", "x"] });
  assert.equal(guest.calls.length, asked, "nothing asked");
  await new Promise((r) => setImmediate(r));
  assert.equal(guest.calls.length, asked, "nor later");
});

test("a stale answer serves a stamp at once and is asked again; an expired one is asked first", async () => {
  const guest = fakeGuest({ "pid:10": "exec" }, { 10: 77n });
  const a = new Attributor({ pidTtlMs: 20, pidStaleMs: 40 });
  a.connect(guest.ask);
  await a.forPid(10);
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(a.forStamp({ pid: 10, cgroup: 77n }, 40001), CURL, "stale: at once");
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(guest.calls.at(-1), [{ kind: "pid", key: 10 }], "and asked again");
  await new Promise((r) => setTimeout(r, 70));
  const expired = a.forStamp({ pid: 10, cgroup: 77n }, 40001);
  assert.ok(expired instanceof Promise, "past the stale window: asked first");
  assert.deepEqual(await expired, CURL);
});

test("a stamp whose cgroup differs from the kept answer's asks about the pid again", async () => {
  const cgroups: Record<number, bigint> = { 10: 77n };
  const guest = fakeGuest({ "pid:10": "exec" }, cgroups);
  const a = new Attributor();
  a.connect(guest.ask);
  await a.forPid(10);
  cgroups[10] = 90n; // pid 10 is another exec's process now
  const again = a.forStamp({ pid: 10, cgroup: 90n }, 40001);
  assert.ok(again instanceof Promise, "not the process the host knew");
  assert.deepEqual(await again, CURL);
  assert.deepEqual(guest.calls.at(-1), [{ kind: "pid", key: 10 }], "one question, by pid");
  const calls = guest.calls.length;
  assert.deepEqual(a.forStamp({ pid: 10, cgroup: 90n }, 40002), CURL, "remembered");
  assert.deepEqual(a.forPid(10), CURL);
  assert.equal(guest.calls.length, calls);
});

test("a stamp whose process is gone, or whose pid is another's, names its cgroup's exec, never the port's holder", async () => {
  // The port's holder can be another exec's socket sharing the local port (a command may set
  // ip_local_port_range) while the connecting command hides its own (review18b S3).
  const guest = fakeGuest(
    { "pid:10": "exec", "pid:11": "exec", "tcp:40001": "exec" },
    { 10: 77n, 11: 55n, 40501: 99n },
  );
  const a = new Attributor();
  a.connect(guest.ask);
  await a.forPid(10); // cgroup 77 is exec 7's
  // pid 12: gone (the process exited before it was asked about), in cgroup 77.
  assert.deepEqual(await a.forStamp({ pid: 12, cgroup: 77n }, 40001), { execId: 7, pid: 12 });
  // pid 11: alive, in another cgroup than the connecting process was (88: never seen).
  assert.equal(await a.forStamp({ pid: 11, cgroup: 88n }, 40001), undefined);
  assert.ok(!guest.calls.flat().some((k) => k.kind === "tcp"), "the port is never asked about");
  // An agent that reports no cgroup can never confirm a stamp: unknown.
  const old = fakeGuest({ "pid:10": "exec", "tcp:40003": "exec" });
  const b = new Attributor();
  b.connect(old.ask);
  await b.forPid(10);
  assert.equal(await b.forStamp({ pid: 10, cgroup: 77n }, 40003), undefined);
});

test("a TCP flow without a stamp from a guest that stamps is unknown, unasked", async () => {
  const guest = fakeGuest(
    { "pid:10": "exec", "tcp:40001": "exec", "udp:40002": "exec" },
    { 10: 77n },
  );
  const a = new Attributor();
  a.connect(guest.ask);
  // Before any stamp: asked by port, as with a kernel that stamps nothing.
  assert.deepEqual(await a.forFlow("tcp", 40001), {
    execId: 7,
    pid: 40501,
    command: ["curl", "x"],
  });
  assert.deepEqual(await a.forFlow("tcp", 40003, { pid: 10, cgroup: 77n }), CURL);
  const asked = guest.calls.length;
  assert.equal(await a.forFlow("tcp", 40001), undefined);
  assert.equal(guest.calls.length, asked, "not asked by port");
  // UDP has no SYN to stamp: still asked by port.
  assert.deepEqual(await a.forFlow("udp", 40002), {
    execId: 7,
    pid: 40502,
    command: ["curl", "x"],
  });
});

test("stamps never bypass the exec check, init, or the agent not being there", async () => {
  const a = new Attributor({ isKnownExec: () => false });
  a.connect(fakeGuest({ "pid:10": "exec", "tcp:40001": "exec" }, { 10: 77n }).ask);
  assert.equal(await a.forStamp({ pid: 10, cgroup: 77n }, 40001), undefined, "unknown exec");
  const b = new Attributor();
  const guest = fakeGuest({ "tcp:40001": "none" }, { 40501: 1n });
  assert.equal(await b.forStamp({ pid: 10, cgroup: 77n }, 40001), undefined, "no agent yet");
  b.connect(guest.ask);
  for (const pid of [0, 1]) await b.forStamp({ pid, cgroup: 1n }, 40001);
  assert.deepEqual(guest.calls, [[{ kind: "tcp", key: 40001 }], [{ kind: "tcp", key: 40001 }]]);
  b.close();
  assert.equal(await b.forStamp({ pid: 10, cgroup: 77n }, 40001), undefined, "closed");
});
