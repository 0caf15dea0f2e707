// The options of docs/OBSERVE.md, checked once in the plan: approval, audit, budgets, trace
// propagation; callbacks stay in-process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ErrInvalidConfig } from "../../src/errors.js";
import {
  planSandbox,
  planToJson,
  publicConfig,
  type SandboxOptions,
} from "../../src/config/index.js";

const plan = (o: SandboxOptions) => planSandbox(o, {}, 4, "vm-0123abcd");
const invalid = (o: SandboxOptions, message: RegExp) =>
  assert.throws(
    () => plan(o),
    (err: unknown) => err instanceof ErrInvalidConfig && message.test((err as Error).message),
  );

test("approval: off by default, on with true, bounds checked", () => {
  assert.equal(plan({}).approval.enabled, false);
  assert.deepEqual(plan({ denyAllHosts: true, approval: true }).approval, {
    enabled: true,
    timeoutMs: 30_000,
    maxPending: 16,
  });
  assert.deepEqual(
    plan({ denyAllHosts: true, approval: { timeoutMs: 500, maxPending: 2 } }).approval,
    {
      enabled: true,
      timeoutMs: 500,
      maxPending: 2,
    },
  );
  invalid(
    { denyAllHosts: true, approval: { timeoutMs: 0 } },
    /approval.timeoutMs must be an integer >= 1/,
  );
  invalid({ denyAllHosts: true, approval: { maxPending: 1000 } }, /at most 256/);
  invalid({ denyAllHosts: true, approval: { timeout: 5 } as never }, /unknown field "timeout"/);
  invalid({ approval: true }, /approval .* works on intercepted requests/);
  invalid({ denyAllHosts: true, approval: true, networkAudit: true }, /exclude each other/);
});

test("onBlockedRequest turns approval on, stays out of the public config, and cannot leave the process", () => {
  const p = plan({ allowedHosts: ["a.test"], onBlockedRequest: () => "deny" });
  assert.equal(p.approval.enabled, true);
  assert.equal(typeof p.onBlockedRequest, "function");
  assert.ok(!("onBlockedRequest" in publicConfig(p)));
  assert.throws(() => planToJson(p), /options.onBlockedRequest: callbacks cannot be passed/);
  invalid(
    { allowedHosts: ["a.test"], onBlockedRequest: "yes" as never },
    /onBlockedRequest must be a function/,
  );
});

test("audit mode turns interception on; with no list, every host is what it records", () => {
  const p = plan({ networkAudit: true });
  assert.equal(p.networkIntercept, true);
  assert.equal(p.networkAudit, true);
  invalid({ networkAudit: true, noNetwork: true }, /noNetwork cannot be combined/);
});

test("budgets: positive numbers; maxRequests and tracePropagation need the proxy", () => {
  assert.deepEqual(plan({ maxEgressBytes: 1000, maxCpuSeconds: 2.5 }).budgets, {
    maxEgressBytes: 1000,
    maxCpuSeconds: 2.5,
  });
  assert.deepEqual(plan({ networkIntercept: true, maxRequests: 3 }).budgets, { maxRequests: 3 });
  invalid({ maxEgressBytes: -1 }, /maxEgressBytes must be an integer >= 1/);
  invalid({ maxCpuSeconds: 0 }, /maxCpuSeconds must be a finite number > 0/);
  invalid({ maxRequests: 3 }, /maxRequests works on intercepted requests/);
  invalid({ tracePropagation: true }, /tracePropagation works on intercepted requests/);
  assert.equal(plan({ networkIntercept: true, tracePropagation: true }).tracePropagation, true);
});

test("the plan's new fields survive JSON to a supervisor", () => {
  const p = plan({ networkAudit: true, maxCpuSeconds: 3 });
  const back = JSON.parse(planToJson(p)) as typeof p;
  assert.deepEqual(back.budgets, { maxCpuSeconds: 3 });
  assert.equal(back.networkAudit, true);
});
