/** Checks file hook rules once, up front, and compiles their globs. */
import { ErrInvalidConfig } from "../../errors.js";
import { Errno } from "../errors.js";
import { compileGlob } from "./glob.js";
import type { PathGlob } from "../../util/index.js";
import { FILE_OPS, type FileErrnoName, type FileHookRule, type FileOp } from "./types.js";

export interface CompiledRule {
  readonly rule: FileHookRule;
  readonly label: string;
  readonly ops: ReadonlySet<FileOp> | undefined;
  readonly paths: readonly PathGlob[] | undefined;
  readonly errno: number;
  readonly timeoutMs: number;
}

export const DEFAULT_HOOK_TIMEOUT_MS = 5000;
const ERRNO_NAMES: readonly FileErrnoName[] = [
  "EPERM",
  "EACCES",
  "EROFS",
  "ENOENT",
  "EIO",
  "ENOSPC",
  "EDQUOT",
  "EBUSY",
  "EEXIST",
  "EINVAL",
  "ENOTSUP",
];

export function errnoNumber(name: FileErrnoName | number): number {
  if (typeof name === "number") return name;
  return Errno[name];
}

function compileRule(rule: FileHookRule, index: number): CompiledRule {
  const label = `fileHooks[${index}]${rule?.name !== undefined ? ` (${rule.name})` : ""}`;
  const bad = (why: string): never => {
    throw new ErrInvalidConfig(`${label}: ${why}`);
  };
  if (typeof rule !== "object" || rule === null) bad("must be an object");
  const { ops, path, action, errno, mutate, before, after, timeoutMs } = rule;
  if (ops !== undefined) {
    if (!Array.isArray(ops) || ops.length === 0) bad("ops must be a non-empty array");
    for (const op of ops) {
      if (!FILE_OPS.includes(op))
        bad(`unknown op ${JSON.stringify(op)} (ops: ${FILE_OPS.join(", ")})`);
    }
  }
  const globs = path === undefined ? undefined : typeof path === "string" ? [path] : path;
  if (globs !== undefined) {
    if (!Array.isArray(globs) || globs.length === 0)
      bad("path must be a glob or a non-empty array");
    for (const glob of globs) {
      if (typeof glob !== "string" || !glob.startsWith("/") || glob.includes("\0")) {
        bad(`path ${JSON.stringify(glob)} must be an absolute guest path glob`);
      }
    }
  }
  if (action !== undefined && !["allow", "block", "mutate-write"].includes(action)) {
    bad(`action must be allow, block or mutate-write, not ${JSON.stringify(action)}`);
  }
  if (errno !== undefined && (action !== "block" || !ERRNO_NAMES.includes(errno))) {
    bad(`errno needs action "block" and one of ${ERRNO_NAMES.join(", ")}`);
  }
  for (const [name, fn] of Object.entries({ mutate, before, after })) {
    if (fn !== undefined && typeof fn !== "function") bad(`${name} must be a function`);
  }
  if ((action === "mutate-write") !== (mutate !== undefined)) {
    bad('action "mutate-write" and a mutate function go together');
  }
  if (action === "mutate-write" && ops !== undefined && ops.some((op) => op !== "write")) {
    bad('action "mutate-write" applies to the write op only');
  }
  if (action === undefined && before === undefined && after === undefined) {
    bad("needs an action, a before or an after callback");
  }
  if (
    timeoutMs !== undefined &&
    (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000)
  ) {
    bad("timeoutMs must be an integer from 1 to 600000");
  }
  return {
    rule,
    label,
    ops: action === "mutate-write" ? new Set(["write"]) : ops && new Set(ops),
    paths: globs?.map((glob) => {
      try {
        return compileGlob(glob);
      } catch (err) {
        return bad((err as Error).message);
      }
    }),
    errno: errnoNumber(errno ?? "EPERM"),
    timeoutMs: timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS,
  };
}

/** Throws ErrInvalidConfig (one line) for the first bad rule. */
export function compileFileHooks(rules: readonly FileHookRule[] | undefined): CompiledRule[] {
  if (rules === undefined) return [];
  if (!Array.isArray(rules)) throw new ErrInvalidConfig("fileHooks must be an array of rules");
  return rules.map(compileRule);
}

/** True when the rule covers one of `ops` at one of `paths`. */
export function ruleMatches(
  rule: CompiledRule,
  ops: readonly FileOp[],
  paths: readonly string[],
): boolean {
  if (rule.ops !== undefined && !ops.some((op) => rule.ops!.has(op))) return false;
  if (rule.paths === undefined) return true;
  return paths.some((path) => rule.paths!.some((glob) => glob.test(path)));
}
