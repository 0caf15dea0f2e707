// A sandbox's close takes the final usage figures (asking the guest: one round trip before the
// VM can go) only when someone can read them: the CLI's foreground `run` never calls usage()
// after close (LaunchInternals.noFinalUsage), and then they are taken only for an events
// subscriber (`run --events`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { planSandbox } from "../../src/config/index.js";
import type { GuestAgent } from "../../src/channel/index.js";
import { EventHub, type SandboxEvent } from "../../src/sandbox/events.js";
import { SandboxObserver } from "../../src/sandbox/observer.js";

function observed() {
  let asked = 0;
  const agent = {
    closed: false,
    attribute: async () => [],
    usage: async () => {
      asked++;
      return { diskWrittenBytes: 4096 };
    },
  } as unknown as GuestAgent;
  const hub = new EventHub();
  const observer = new SandboxObserver(planSandbox({}, {}, 4, "vm-0123abcd"), hub, () => {});
  observer.attach(agent, process.pid, undefined);
  return { observer, hub, asked: () => asked };
}

test("finish() asks the guest for the last figures and emits the usage event", async () => {
  const { observer, hub, asked } = observed();
  const events = hub.subscribe();
  const usage = await observer.finish();
  assert.equal(asked(), 1);
  assert.equal(usage?.diskWrittenBytes, 4096);
  hub.end();
  const got: SandboxEvent[] = [];
  for await (const e of events) got.push(e);
  assert.deepEqual(
    got.map((e) => e.type),
    ["usage"],
  );
});

test("finish(false) does not ask the guest and emits nothing", async () => {
  const { observer, hub, asked } = observed();
  const events = hub.subscribe();
  await events.return?.();
  const usage = await observer.finish(false);
  assert.equal(asked(), 0);
  assert.equal(usage, undefined);
  hub.end();
});

test("the hub says whether anyone reads its events", async () => {
  const hub = new EventHub();
  assert.equal(hub.subscribed, false);
  const events = hub.subscribe();
  assert.equal(hub.subscribed, true);
  await events.return?.();
  assert.equal(hub.subscribed, false);
});
