import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrInvalidConfig } from "../../src/errors.js";
import { createHttpPolicy, loadPolicyScript } from "../../src/net/http-policy/index.js";
import { bodyOf, header, req } from "./net-http-policy-fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "policy-script-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test(".js default export: rules with a callback load and run", async () => {
  const path = file(
    "default.mjs",
    `export default [
      { name: "tag", setHeaders: { "X-Policy": "js" } },
      { name: "gate", hook: (ctx) => (ctx.path === "/deny" ? "block" : undefined) },
    ];`,
  );
  const policy = createHttpPolicy({ rules: await loadPolicyScript(path) });
  const ok = await policy.onRequest(req(), bodyOf());
  assert.equal(ok.action === "forward" && header(ok.request, "x-policy")[0], "js");
  assert.equal((await policy.onRequest(req({ target: "/deny" }), bodyOf())).action, "block");
});

test("named rules / hooks exports and default { rules } objects", async () => {
  const named = file("named.js", `export const rules = [{ action: "block", path: "/a" }];`);
  const hooks = file("hooks.mjs", `export const hooks = [{ action: "block", path: "/b" }];`);
  const obj = file("obj.mjs", `export default { rules: [{ action: "block", path: "/c" }] };`);
  for (const [path, target] of [
    [named, "/a"],
    [hooks, "/b"],
    [obj, "/c"],
  ] as const) {
    const policy = createHttpPolicy({ rules: await loadPolicyScript(path) });
    assert.equal((await policy.onRequest(req({ target }), bodyOf())).action, "block", path);
  }
});

test(".ts script with types and type-only imports is compiled by tsx", async () => {
  const api = join(process.cwd(), "src/net/http-policy/index.js");
  const path = file(
    "policy.ts",
    `import type { HookRule, RequestHookContext } from ${JSON.stringify(api)};
     interface Tagged { tag: string }
     const t: Tagged = { tag: "ts" };
     export const rules: HookRule[] = [
       { hook: (ctx: RequestHookContext) => ({ setHeaders: { "X-Policy": \`\${t.tag}:\${ctx.method}\` } }) },
       { phase: "after", bodyReplacements: [{ find: "a", replace: "b" }] },
     ];`,
  );
  const rules = await loadPolicyScript(path);
  assert.equal(rules.length, 2);
  const v = await createHttpPolicy({ rules }).onRequest(req(), bodyOf());
  assert.equal(v.action === "forward" && header(v.request, "x-policy")[0], "ts:GET");
});

test("bad scripts: missing file, syntax error, wrong shape, bad rule, bad extension — one line each", async () => {
  const cases: Array<[string, RegExp]> = [
    [join(dir, "missing.js"), /missing\.js: no such file$/],
    [dir, /no such file$/],
    [file("syntax.mjs", "export default [ {"), /syntax\.mjs: failed to load: .+/],
    [file("syntax.ts", "const x: = 1;\nexport default [];"), /syntax\.ts: failed to load: .+/],
    [file("throws.mjs", "throw new Error('top level boom');"), /failed to load: top level boom/],
    [
      file("shape.mjs", "export default 42;"),
      /expected a default export or a "rules"\/"hooks" export/,
    ],
    [file("none.mjs", "export const other = [];"), /expected a default export/],
    [
      file("badrule.mjs", `export default [{ action: "block", sethaders: {} }];`),
      /badrule\.mjs: hook rule #1: unknown field sethaders/,
    ],
    [file("policy.json", "[]"), /expected a \.js, \.mjs, \.cjs, \.ts, \.mts or \.cts file/],
  ];
  for (const [path, re] of cases) {
    await assert.rejects(
      loadPolicyScript(path),
      (err: Error) =>
        err instanceof ErrInvalidConfig && re.test(err.message) && !err.message.includes("\n"),
      path,
    );
  }
});
