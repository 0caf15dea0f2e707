// Budgets that stop a sandbox, without a VM: the CPU budget reads the VM process's CPU time
// (here a busy stand-in process), the egress budget counts bytes through the flows; either
// ends the sandbox with ErrBudgetExceeded, and the final usage event comes once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { planSandbox } from "../../src/config/index.js";
import { ErrBudgetExceeded, type WheellockError } from "../../src/errors.js";
import type { GuestAgent } from "../../src/channel/index.js";
import type { Upstream, UpstreamTcp } from "../../src/net/index.js";
import { EventHub, type SandboxEvent } from "../../src/sandbox/events.js";
import { SandboxObserver } from "../../src/sandbox/observer.js";

const agent = {
  closed: false,
  attribute: async () => [],
  usage: async () => ({ diskWrittenBytes: 4096 }),
} as unknown as GuestAgent;

test("a VM over its CPU budget is stopped with ErrBudgetExceeded", async () => {
  const busy = spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" });
  try {
    const stops: WheellockError[] = [];
    const observer = new SandboxObserver(
      planSandbox({ maxCpuSeconds: 0.3 }, {}, 4, "vm-0123abcd"),
      new EventHub(),
      (err) => stops.push(err),
    );
    observer.attach(agent, busy.pid!, undefined);
    for (let i = 0; i < 100 && stops.length === 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.ok(stops[0] instanceof ErrBudgetExceeded, "stopped");
    assert.match(
      stops[0]!.message,
      /vm-0123abcd stopped: its VM used [\d.]+ s of CPU time, more than 0.3 s \(maxCpuSeconds\)/,
    );
    const usage = await observer.usage();
    assert.ok(usage.cpuSeconds > 0.3);
    assert.ok(usage.peakMemoryBytes > 0);
    assert.equal(usage.diskWrittenBytes, 4096);
    await observer.finish();
  } finally {
    busy.kill("SIGKILL");
  }
});

test("flows past the egress budget stop the sandbox; the final usage event says how far", async () => {
  const stops: WheellockError[] = [];
  const hub = new EventHub();
  const events: SandboxEvent[] = [];
  const sub = hub.subscribe();
  const observer = new SandboxObserver(
    planSandbox({ maxEgressBytes: 1000 }, {}, 4, "vm-0123abcd"),
    hub,
    (err) => stops.push(err),
  );
  const written: Buffer[] = [];
  const inner: Upstream = {
    connectTcp: (_ip, _port, events) => {
      setImmediate(() => events.onData(Buffer.alloc(700)));
      const flow: UpstreamTcp = {
        write: (chunk, done) => {
          written.push(chunk);
          done();
        },
        end: () => undefined,
        destroy: () => undefined,
        pause: () => undefined,
        resume: () => undefined,
      };
      return flow;
    },
    openUdp: () => ({ denied: "no" }),
    resolveIpv4: async () => [],
  };
  const metered = observer.meterUpstream(inner);
  const flow = metered.connectTcp("1.2.3.4", 80, {
    onConnect: () => undefined,
    onData: () => undefined,
    onEnd: () => undefined,
    onDrain: () => undefined,
    onError: () => undefined,
  });
  assert.ok(!("denied" in flow));
  flow.write(Buffer.alloc(200), () => undefined);
  assert.equal(stops.length, 0, "200 bytes are within 1000");
  await new Promise((r) => setImmediate(r));
  flow.write(Buffer.alloc(200), () => undefined);
  assert.ok(stops[0] instanceof ErrBudgetExceeded, "1100 bytes are past 1000");
  assert.match(stops[0]!.message, /more than 1000 bytes \(maxEgressBytes\)/);
  await observer.finish();
  await observer.finish();
  hub.end();
  for await (const e of sub) events.push(e);
  const usage = events.filter((e) => e.type === "usage");
  assert.equal(usage.length, 1, "one final usage event");
  assert.equal(usage[0]?.type === "usage" && usage[0].usage.network.bytes, 1100);
});

test("DNS lookups through the gateway count toward the egress budget (names carry data out)", async () => {
  const stops: WheellockError[] = [];
  const observer = new SandboxObserver(
    planSandbox({ maxEgressBytes: 2000 }, {}, 4, "vm-0123abcd"),
    new EventHub(),
    (err) => stops.push(err),
  );
  const looked: string[] = [];
  const inner: Upstream = {
    connectTcp: () => ({ denied: "no" }),
    openUdp: () => ({ denied: "no" }),
    resolveIpv4: async (name) => {
      looked.push(name);
      return [];
    },
  };
  const metered = observer.meterUpstream(inner);
  // A guest spelling data into names: 63-byte labels, a lookup each.
  for (let i = 0; i < 20 && stops.length === 0; i++)
    await metered.resolveIpv4(`${"a".repeat(63)}.${i}.exfil.example`);
  assert.ok(looked.length > 0);
  assert.ok(stops[0] instanceof ErrBudgetExceeded, "the lookups spent the budget");
  assert.ok((await observer.usage()).network.bytes > 2000);
  await observer.finish();
});
