/**
 * `policyScript` / `--policy-script FILE`: a JS or TS module whose hook rules join the
 * sandbox's. Accepted shapes, first match wins:
 *   export default [rule, ...]            export default { rules: [...] } (or { hooks: [...] })
 *   export const rules = [rule, ...]      export const hooks = [rule, ...]
 * Each rule is a HookRule (declarative fields and/or a `hook` callback). `.ts`/`.mts`/`.cts`
 * files are compiled on the fly by tsx (Node 20 cannot strip types itself).
 */
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, extname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ErrInvalidConfig } from "../../errors.js";
import { compileRules } from "./rules.js";
import type { HookRule } from "./types.js";

const TS_EXTENSIONS = new Set([".ts", ".mts", ".cts", ".tsx"]);
const JS_EXTENSIONS = new Set([".js", ".mjs", ".cjs"]);

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split("\n").find((l) => l.trim() !== "") ?? "unknown error").trim().slice(0, 300);
}

function rulesOf(mod: Record<string, unknown>, depth = 0): unknown {
  const def = mod.default as Record<string, unknown> | unknown[] | undefined;
  if (Array.isArray(def)) return def;
  if (def && typeof def === "object") {
    // A .ts file outside an ESM package is compiled as CommonJS when no tsx loader is
    // registered (the installed CLI): its ESM exports then arrive wrapped once more.
    if (depth === 0 && "__esModule" in def) return rulesOf(def, 1);
    if (def.rules !== undefined) return def.rules;
    if (def.hooks !== undefined) return def.hooks;
  }
  return mod.rules ?? mod.hooks;
}

/**
 * Loads the hook rules a policy script exports, checked like rules given in code (so a bad
 * rule fails here, naming the file). Errors are one-line ErrInvalidConfig.
 */
export async function loadPolicyScript(file: string): Promise<HookRule[]> {
  const path = resolve(file);
  const fail = (why: string): never => {
    throw new ErrInvalidConfig(`policy script ${file}: ${why}`);
  };
  if (!existsSync(path) || !statSync(path).isFile()) fail("no such file");
  const ext = extname(path).toLowerCase();
  if (!TS_EXTENSIONS.has(ext) && !JS_EXTENSIONS.has(ext))
    fail("expected a .js, .mjs, .cjs, .ts, .mts or .cts file");
  let mod: Record<string, unknown>;
  try {
    const url = pathToFileURL(path).href;
    if (TS_EXTENSIONS.has(ext)) {
      const { tsImport } = await import("tsx/esm/api");
      mod = (await tsImport(url, import.meta.url)) as Record<string, unknown>;
    } else mod = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    return fail(`failed to load: ${firstLine(err)}`);
  }
  const rules = rulesOf(mod);
  if (!Array.isArray(rules))
    fail('expected a default export or a "rules"/"hooks" export holding an array of hook rules');
  try {
    compileRules(rules as HookRule[]);
  } catch (err) {
    fail(firstLine(err).replace(/^invalid configuration: /, ""));
  }
  return rules as HookRule[];
}

/**
 * Loads a policy script given as content (what a node read from the file a caller named):
 * from a private copy (an owner-only temporary directory, removed once loaded), so nothing
 * can change what runs between reading and loading. `name` only picks JS or TS and names it
 * in errors.
 */
export async function loadPolicyScriptSource(name: string, text: string): Promise<HookRule[]> {
  const dir = mkdtempSync(join(tmpdir(), "wheellock-policy-"));
  const path = join(dir, basename(name));
  try {
    writeFileSync(path, text, { mode: 0o600, flag: "wx" });
    return await loadPolicyScript(path);
  } catch (err) {
    // Errors name the caller's file, not the private copy.
    if (err instanceof ErrInvalidConfig)
      throw new ErrInvalidConfig(
        err.message
          .replace(/^invalid configuration: /, "")
          .replace(`policy script ${path}`, `policy script ${name}`),
      );
    throw err;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
