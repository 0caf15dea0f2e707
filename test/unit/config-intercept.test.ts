import { test } from "node:test";
import assert from "node:assert/strict";
import { resolveSandboxOptions, type SandboxOptions } from "../../src/config/index.js";
import { ErrInvalidConfig } from "../../src/errors.js";

const resolve = (o: SandboxOptions) => resolveSandboxOptions(o, {}, 4, "vm-0123abcd");
const SECRET = "sk-live-9f8e7d6c5b4a";

test("intercept mode: off by default, on with each policy option", () => {
  assert.equal(resolve({}).networkIntercept, false);
  assert.equal(
    resolve({ allowPrivateHosts: true, dnsServers: ["1.1.1.1"] }).networkIntercept,
    false,
  );
  const triggers: SandboxOptions[] = [
    { allowedHosts: ["example.com"] },
    { denyAllHosts: true },
    { networkIntercept: true },
    { secrets: { KEY: { value: SECRET, hosts: ["api.example.com"] } } },
    { networkHooks: [{ phase: "before", action: "block" }] },
    { policyScript: "hooks.ts" },
    { allowTcp: ["db.example.com:5432"] },
  ];
  for (const t of triggers) assert.equal(resolve(t).networkIntercept, true, JSON.stringify(t));
  assert.equal(resolve({ allowedHosts: [] }).networkIntercept, false);
});

test("intercept mode: secret hosts join the allowlist, without duplicates", () => {
  const r = resolve({
    allowedHosts: ["example.com", "*.api.test:443"],
    secrets: {
      A: { value: SECRET, hosts: ["api.example.com", "example.com"] },
      B: {
        value: "other",
        hosts: ["b.test"],
        headers: ["X-Api-Key", "x-api-key", "X-Other"],
        inQuery: true,
        allowHttp: true,
      },
    },
  });
  assert.deepEqual(r.allowedHosts, ["example.com", "*.api.test:443", "api.example.com", "b.test"]);
  assert.deepEqual(r.secrets, [
    {
      name: "A",
      hosts: ["api.example.com", "example.com"],
      headers: [],
      inQuery: false,
      allowHttp: false,
    },
    {
      name: "B",
      hosts: ["b.test"],
      headers: ["X-Api-Key", "X-Other"],
      inQuery: true,
      allowHttp: true,
    },
  ]);
});

test("secrets: headers, allowHttp and unknown fields are checked, one line naming the field", () => {
  const secret = (over: Record<string, unknown>) =>
    ({ secrets: { KEY: { value: SECRET, hosts: ["a.test"], ...over } } }) as SandboxOptions;
  const bad: [SandboxOptions, RegExp][] = [
    [
      secret({ headers: "X-Api-Key" }),
      /^invalid configuration: secrets\.KEY\.headers must be an array/,
    ],
    [secret({ headers: ["Host"] }), /secrets\.KEY\.headers: header "Host" is managed by the proxy/],
    [secret({ headers: ["Transfer-Encoding"] }), /secrets\.KEY\.headers: .*managed by the proxy/],
    [secret({ headers: ["X Api"] }), /secrets\.KEY\.headers: bad header name/],
    [secret({ headers: [""] }), /secrets\.KEY\.headers: bad header name/],
    [secret({ allowHttp: "yes" }), /secrets\.KEY\.allowHttp/],
    // A misspelt option must not quietly change where the value may go.
    [secret({ allowHTTP: true }), /secrets\.KEY: unknown field "allowHTTP"/],
    [secret({ header: ["X-Api-Key"] }), /secrets\.KEY: unknown field "header"/],
  ];
  for (const [o, re] of bad)
    assert.throws(
      () => resolve(o),
      (err: Error) =>
        err instanceof ErrInvalidConfig &&
        re.test(err.message) &&
        !err.message.includes("\n") &&
        !err.message.includes(SECRET),
      JSON.stringify(o.secrets?.KEY && { ...o.secrets.KEY, value: "…" }),
    );
});

test("intercept mode: secret values never reach the resolved config or an error", () => {
  const r = resolve({ secrets: { KEY: { value: SECRET, hosts: ["api.example.com"] } } });
  assert.ok(!JSON.stringify(r).includes(SECRET));
  const bad: SandboxOptions[] = [
    { secrets: { "1BAD": { value: SECRET, hosts: ["a.test"] } } },
    { secrets: { KEY: { value: SECRET, hosts: [] } } },
    { secrets: { KEY: { value: SECRET, hosts: ["bad host"] } } },
    { secrets: { KEY: { value: `${SECRET}\0`, hosts: ["a.test"] } } },
    { noNetwork: true, secrets: { KEY: { value: SECRET, hosts: ["a.test"] } } },
  ];
  for (const o of bad) {
    assert.throws(
      () => resolve(o),
      (err: Error) => err instanceof ErrInvalidConfig && !err.message.includes(SECRET),
    );
  }
});

test("intercept mode: bad entries are one-line ErrInvalidConfig", () => {
  const bad: [SandboxOptions, RegExp][] = [
    [{ allowedHosts: ["exa mple.com"] }, /allowedHosts/],
    [{ allowedHosts: ["a.test:99999"] }, /allowedHosts.*port/],
    [{ allowedHosts: "a.test" as unknown as string[] }, /allowedHosts/],
    // An empty entry dropped quietly would leave the network open instead of intercepted.
    [{ allowedHosts: [""] }, /allowedHosts: empty entry/],
    [{ allowedHosts: ["a.test", " "] }, /allowedHosts: empty entry/],
    [{ allowTcp: [""] }, /allowTcp: empty entry/],
    [{ allowTcp: ["db.test"] }, /allowTcp.*needs a port/],
    [{ addHosts: { "a b": "1.2.3.4" } }, /addHosts/],
    [{ addHosts: { "a.test": "::1" } }, /addHosts/],
    [{ dnsServers: ["dns.google"] }, /dnsServers/],
    [{ dnsServers: ["1.1.1.1:99999"] }, /dnsServers/],
    [{ dnsServers: ["1.1.1.1:53:1"] }, /dnsServers/],
    [{ networkHooks: {} as unknown as [] }, /networkHooks/],
    [{ denyAllHosts: "yes" as unknown as boolean }, /denyAllHosts/],
  ];
  for (const [o, re] of bad) {
    assert.throws(
      () => resolve(o),
      (err: Error) =>
        err instanceof ErrInvalidConfig && re.test(err.message) && !err.message.includes("\n"),
      JSON.stringify(o),
    );
  }
});

test("intercept mode: noNetwork with any network option is an error", () => {
  const conflicts: SandboxOptions[] = [
    { allowedHosts: ["a.test"] },
    { denyAllHosts: true },
    { networkIntercept: true },
    { addHosts: { "a.test": "1.2.3.4" } },
    { dnsServers: ["1.1.1.1"] },
    { upstreamCa: ["ca.pem"] },
    { allowTcp: ["a.test:22"] },
    { policyScript: "p.ts" },
  ];
  for (const o of conflicts)
    assert.throws(() => resolve({ noNetwork: true, ...o }), /noNetwork cannot be combined/);
});

test("intercept mode: paths become absolute, names lower-case", () => {
  const r = resolve({
    networkIntercept: true,
    upstreamCa: ["ca.pem"],
    addHosts: { "DB.Local.": "10.0.0.5" },
    dnsServers: ["1.1.1.1", "1.1.1.1", "127.0.0.1:5353"],
  });
  assert.equal(resolve({ policyScript: "hooks.ts" }).policyScript, `${process.cwd()}/hooks.ts`);
  assert.deepEqual(r.upstreamCa, [`${process.cwd()}/ca.pem`]);
  assert.deepEqual(r.addHosts, { "db.local": "10.0.0.5" });
  assert.deepEqual(r.dnsServers, ["1.1.1.1", "127.0.0.1:5353"]);
});

test("intercept mode: upstreamCa without interception is an error, not silently ignored", () => {
  assert.throws(
    () => resolve({ upstreamCa: ["ca.pem"] }),
    /upstreamCa applies only in intercept mode/,
  );
  assert.deepEqual(resolve({ upstreamCa: ["ca.pem"], allowedHosts: ["a.test"] }).upstreamCa, [
    `${process.cwd()}/ca.pem`,
  ]);
});
