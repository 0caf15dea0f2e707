import { test } from "node:test";
import assert from "node:assert/strict";
import { Command } from "commander";
import {
  addInterceptOptions,
  interceptSandboxOptions,
  parseSecretFlag,
  parseSecretFlags,
  type InterceptFlags,
} from "../../src/cli/intercept-flags.js";
import { allowListReport, parseHosts } from "../../src/cli/allow-list.js";
import { ErrInvalidConfig } from "../../src/errors.js";

function parse(argv: string[]) {
  const cmd = addInterceptOptions(new Command("run").exitOverride());
  cmd.parse(argv, { from: "user" });
  return interceptSandboxOptions(cmd.opts<InterceptFlags>());
}

test("intercept flags map to sandbox options", () => {
  assert.deepEqual(parse([]), {});
  assert.deepEqual(
    parse([
      "--allow-host",
      "a.test, *.b.test:443",
      "--allow-host",
      "c.test",
      "--deny-all-hosts",
      "--network-intercept",
      "--add-host",
      "db.local:10.0.0.5",
      "--dns-servers",
      "1.1.1.1,8.8.8.8",
      "--upstream-ca",
      "ca.pem",
      "--allow-tcp",
      "db.test:5432",
      "--policy-script",
      "hooks.ts",
    ]),
    {
      allowedHosts: ["a.test", "*.b.test:443", "c.test"],
      denyAllHosts: true,
      networkIntercept: true,
      addHosts: { "db.local": "10.0.0.5" },
      dnsServers: ["1.1.1.1", "8.8.8.8"],
      upstreamCa: ["ca.pem"],
      allowTcp: ["db.test:5432"],
      policyScript: "hooks.ts",
    },
  );
  assert.throws(() => parse(["--add-host", "nocolon"]), ErrInvalidConfig);
});

test("--secret: inline value (may contain @), or from the host env", () => {
  assert.deepEqual(parseSecretFlag("TOKEN=a@b=c@api.test,*.x.test"), [
    "TOKEN",
    { value: "a@b=c", hosts: ["api.test", "*.x.test"] },
  ]);
  assert.deepEqual(parseSecretFlag("TOKEN@api.test", { TOKEN: "from-env" }), [
    "TOKEN",
    { value: "from-env", hosts: ["api.test"] },
  ]);
  assert.deepEqual(parse(["--secret", "K=v@h.test"]), {
    secrets: { K: { value: "v", hosts: ["h.test"] } },
  });
});

test("--secret options after the hosts: ;header=, ;query, ;http; the old forms keep safe defaults", () => {
  assert.deepEqual(
    parseSecretFlag("TOKEN=a;b@c@api.test:8443,*.x.test;header=X-Api-Key,X-Other;query;http"),
    [
      "TOKEN",
      {
        value: "a;b@c",
        hosts: ["api.test:8443", "*.x.test"],
        headers: ["X-Api-Key", "X-Other"],
        inQuery: true,
        allowHttp: true,
      },
    ],
  );
  assert.deepEqual(parseSecretFlag("TOKEN@api.test; headers=X-A ;header=X-B;", { TOKEN: "v" }), [
    "TOKEN",
    { value: "v", hosts: ["api.test"], headers: ["X-A", "X-B"] },
  ]);
  // No option: nothing beyond value and hosts, so the TLS-only, Authorization-only defaults hold.
  assert.deepEqual(parseSecretFlag("TOKEN=v@api.test"), [
    "TOKEN",
    { value: "v", hosts: ["api.test"] },
  ]);
});

test("--secret errors are one line and never carry the value", () => {
  const value = "super-secret-value";
  const cases: [string, NodeJS.ProcessEnv, RegExp][] = [
    [`TOKEN=${value}`, {}, /NAME=VALUE@host/],
    [`TOKEN=${value}@`, {}, /no hosts/],
    [`1TOKEN=${value}@a.test`, {}, /variable name/],
    ["TOKEN@a.test", {}, /\$TOKEN is not set/],
    ["TOKEN@a.test", { TOKEN: "" }, /\$TOKEN is not set/],
    ["TOKEN=@a.test", {}, /empty value/],
    [`TOKEN=${value}@a.test;header=`, {}, /header= names no header/],
    [`TOKEN=${value}@a.test;http=1`, {}, /unknown option after the hosts/],
    // The value held `@` and the hosts were forgotten: the tail of the value is not quoted.
    [`TOKEN=x@${value};${value}`, {}, /unknown option after the hosts \(expected header=NAME/],
    [`TOKEN=${value}@;http`, {}, /no hosts/],
  ];
  for (const [entry, env, re] of cases) {
    assert.throws(
      () => parseSecretFlag(entry, env),
      (err: Error) =>
        err instanceof ErrInvalidConfig && re.test(err.message) && !err.message.includes(value),
      entry,
    );
  }
});

test("allow-list: hosts are comma-split and de-duplicated; the report says what an empty list means", () => {
  assert.deepEqual(parseHosts(["a.test, b.test", "a.test,,", "*.c.test"]), [
    "a.test",
    "b.test",
    "*.c.test",
  ]);
  assert.throws(() => parseHosts([" , "]), /expected one or more hosts/);
  assert.equal(
    allowListReport("vm-1", "add", { changed: ["b.test"], allowed: ["a.test", "b.test"] }),
    "Added to vm-1: b.test\nCurrent allow-list: a.test,b.test\n",
  );
  assert.equal(
    allowListReport("vm-1", "delete", { changed: [], allowed: [] }),
    "No hosts were removed from vm-1\nCurrent allow-list: (empty: all hosts allowed)\n",
  );
  // Started with --deny-all-hosts: an empty list lets nothing through, and says so.
  assert.equal(
    allowListReport("vm-1", "delete", { changed: ["a.test"], allowed: [], emptyDeniesAll: true }),
    "Removed from vm-1: a.test\nCurrent allow-list: (empty: all hosts denied)\n",
  );
});

test("an --allow-host or --allow-tcp with nothing in it is an error, not an open network", () => {
  assert.throws(() => parse(["--allow-host", ""]), /--allow-host: no host given/);
  assert.throws(() => parse(["--allow-host", " , "]), /--allow-host: no host given/);
  assert.throws(() => parse(["--allow-tcp", ""]), /--allow-tcp: no host given/);
});

test("the same --secret name twice is an error (the last one would silently drop the first's hosts)", () => {
  assert.throws(
    () => parseSecretFlags(["K=v1@a.test", "K=v2@b.test"]),
    (err: Error) => /--secret K is given twice/.test(err.message) && !/v1|v2/.test(err.message),
  );
  assert.deepEqual(Object.keys(parseSecretFlags(["K=v@a.test", "L=w@b.test"])), ["K", "L"]);
});
