// Usage counters fed by guest-chosen names: they must stay bounded and must not reach
// Object.prototype.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { NetworkEventInfo } from "../../src/net/index.js";
import { MAX_USAGE_HOSTS, OTHER_HOSTS, UsageMeter } from "../../src/observe/index.js";

function request(host: string): NetworkEventInfo {
  return {
    requestId: 1,
    method: "GET",
    url: `https://${host}/`,
    scheme: "https",
    host,
    port: 443,
    status: 403,
    bytesIn: 3,
    bytesOut: 1,
    durationMs: 1,
    blocked: true,
  };
}

test("a guest request to host __proto__ is counted as a host, and pollutes nothing", () => {
  const m = new UsageMeter();
  for (const host of ["__proto__", "constructor", "hasownproperty"]) m.network(request(host));
  const probe: Record<string, unknown> = {};
  assert.equal(probe["requests"], undefined, "Object.prototype untouched");
  assert.equal(Object.hasOwn(Object.prototype, "requests"), false);
  const byHost = m.snapshot({ cpuSeconds: 0, peakMemoryBytes: 0, diskWrittenBytes: 0 }).network
    .byHost;
  assert.deepEqual(Object.getOwnPropertyDescriptor(byHost, "__proto__")?.value, {
    requests: 1,
    bytesIn: 3,
    bytesOut: 1,
  });
  assert.equal(byHost["constructor"]?.requests, 1);
});

test("hosts beyond MAX_USAGE_HOSTS add up under one key: a guest cannot grow the table", () => {
  const m = new UsageMeter();
  for (let i = 0; i < MAX_USAGE_HOSTS + 500; i++) m.network(request(`h${i}.test`));
  m.network(request("h0.test"));
  const u = m.snapshot({ cpuSeconds: 0, peakMemoryBytes: 0, diskWrittenBytes: 0 });
  assert.equal(Object.keys(u.network.byHost).length, MAX_USAGE_HOSTS + 1);
  assert.equal(u.network.byHost[OTHER_HOSTS]?.requests, 500);
  assert.equal(u.network.byHost["h0.test"]?.requests, 2, "a host already counted keeps its own");
  assert.equal(u.network.requests, MAX_USAGE_HOSTS + 501);
});
