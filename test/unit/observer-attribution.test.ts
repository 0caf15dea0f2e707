// The sandbox's attribution wiring, without a VM: a flow's origin is asked of the guest by
// socket until the guest stamps its SYNs; then by the stamp's process (no question when it is
// already known in that cgroup), never by socket.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { AttributionKey, GuestAgent, GuestAttribution } from "../../src/channel/index.js";
import { planSandbox } from "../../src/config/index.js";
import { EventHub } from "../../src/sandbox/events.js";
import { SandboxObserver } from "../../src/sandbox/observer.js";

test("a stamped connection from a process the host knows is attributed without asking", async () => {
  const asked: AttributionKey[] = [];
  // Every key is curl (pid 10) of exec 7, in that exec's cgroup.
  const agent = {
    closed: false,
    attribute: async (keys: readonly AttributionKey[]): Promise<GuestAttribution[]> => {
      asked.push(...keys);
      return keys.map((k) => ({ ...k, state: "exec", execStream: 7, pid: 10, cgroup: 77n }));
    },
    usage: async () => ({ diskWrittenBytes: 0 }),
  } as unknown as GuestAgent;
  const observer = new SandboxObserver(
    planSandbox({}, {}, 4, "vm-0123abcd"),
    new EventHub(),
    () => {
      throw new Error("no budget here");
    },
  );
  observer.attach(agent, process.pid, undefined);
  observer.execStarted(7, ["curl", "x"]);
  const origin = observer.interceptHooks().origin!;
  const curl = { execId: 7, pid: 10 };
  // An old kernel's SYN says nothing: the socket is asked about.
  assert.deepEqual(await origin({ protocol: "tcp", guestPort: 40000 }), curl);
  assert.deepEqual(asked, [{ kind: "tcp", key: 40000 }]);
  // The same process's next connection, stamped: answered at once.
  assert.deepEqual(
    origin({ protocol: "tcp", guestPort: 40001, stamp: { pid: 10, cgroup: 77n } }),
    curl,
  );
  // Another cgroup's process with that pid: asked about by pid, never by port (another
  // exec's socket can share the port); cgroup 78 was never seen: unknown.
  const other = origin({ protocol: "tcp", guestPort: 40002, stamp: { pid: 10, cgroup: 78n } });
  assert.ok(other instanceof Promise);
  assert.equal(await other, undefined);
  assert.deepEqual(asked.slice(1), [{ kind: "pid", key: 10 }]);
  // This guest stamps: a SYN without a stamp now is not asked about by port either.
  assert.equal(await origin({ protocol: "tcp", guestPort: 40003 }), undefined);
  assert.equal(asked.length, 2);
  await observer.finish();
});
