import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { ErrInvalidConfig } from "../../errors.js";
import type { HttpRequestHead } from "../intercept/contract.js";
import { compileHostPattern, type HostPattern } from "../policy/index.js";
import { replaceAllBytes } from "./bytes.js";
import { headerValueProblem } from "./headers.js";
import { findPlaceholder } from "./leak-scan.js";
import { joinTarget, splitTarget } from "./target.js";
import type { SecretSpec } from "./types.js";

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BASIC_RE = /^(\s*basic\s+)([A-Za-z0-9+/=_-]+)(\s*)$/i;

interface Secret {
  readonly name: string;
  readonly placeholder: string;
  readonly value: string;
  readonly hosts: readonly HostPattern[];
  readonly inQuery: boolean;
}

export type SubstituteResult =
  | { ok: true; request: HttpRequestHead }
  /** `name` is the secret's name, never its value. */
  | { ok: false; name: string };

/** `SANDBOX_SECRET_` + 32 lowercase hex digits, as the reference. */
export function newPlaceholder(): string {
  return `SANDBOX_SECRET_${randomBytes(16).toString("hex")}`;
}

function compileHosts(name: string, hosts: unknown): HostPattern[] {
  // No default: a forgotten list must not quietly mean "every host".
  if (!Array.isArray(hosts))
    throw new ErrInvalidConfig(`secret ${name}: hosts must be an array ([] for every host)`);
  return hosts.map((h: unknown) => {
    if (typeof h !== "string") throw new ErrInvalidConfig(`secret ${name}: bad host entry`);
    try {
      return compileHostPattern(h);
    } catch (err) {
      const why = (err as Error).message.replace(/^invalid configuration: /, "");
      throw new ErrInvalidConfig(`secret ${name}: ${why}`);
    }
  });
}

/**
 * The secrets of one sandbox, each with a placeholder drawn once. Real values live in a private
 * field only: `inspect`, `JSON.stringify` and `String()` show names, placeholders and hosts.
 */
export class SecretSet {
  readonly #secrets: readonly Secret[];

  constructor(specs: readonly SecretSpec[] = []) {
    const seen = new Set<string>();
    this.#secrets = specs.map((spec) => {
      const name = typeof spec?.name === "string" ? spec.name : "";
      if (!NAME_RE.test(name))
        throw new ErrInvalidConfig(`secret name ${JSON.stringify(name)} is not an env var name`);
      if (seen.has(name)) throw new ErrInvalidConfig(`secret ${name} is given twice`);
      seen.add(name);
      if (typeof spec.value !== "string" || spec.value === "")
        throw new ErrInvalidConfig(`secret ${name}: empty value`);
      if (headerValueProblem(name, spec.value) !== undefined)
        throw new ErrInvalidConfig(`secret ${name}: value has CR, LF, NUL or control characters`);
      const hosts = compileHosts(name, spec.hosts);
      return {
        name,
        placeholder: newPlaceholder(),
        value: spec.value,
        hosts,
        inQuery: !!spec.inQuery,
      };
    });
  }

  get size(): number {
    return this.#secrets.length;
  }

  /** Name → placeholder, for the guest env. */
  placeholders(): Record<string, string> {
    return Object.fromEntries(this.#secrets.map((s) => [s.name, s.placeholder]));
  }

  /** Every secret's host patterns, de-duplicated, for the allowlist. */
  hostPatterns(): string[] {
    return [...new Set(this.#secrets.flatMap((s) => s.hosts.map((h) => h.text)))];
  }

  /**
   * Checks for placeholders headed where their secret may not go (anywhere in the head, in
   * encoded forms too), then swaps real values in for the secrets this host may receive: header
   * values, `Authorization: Basic` credentials, and the query when the secret opts in.
   */
  substitute(request: HttpRequestHead): SubstituteResult {
    const allowed = (s: Secret): boolean =>
      s.hosts.length === 0 || s.hosts.some((h) => h.matches(request.host, request.port));
    const denied = this.#secrets.filter((s) => !allowed(s));
    if (denied.length > 0) {
      const leaked = findPlaceholder(
        request,
        denied.map((s) => s.placeholder),
      );
      if (leaked !== undefined)
        return { ok: false, name: denied.find((s) => s.placeholder === leaked)?.name ?? "?" };
    }
    let out = request;
    for (const s of this.#secrets)
      if (allowed(s)) out = swap(out, s.placeholder, s.value, s.inQuery);
    return { ok: true, request: out };
  }

  /** The reverse of `substitute`: real values back to placeholders, for callbacks. */
  conceal(request: HttpRequestHead): HttpRequestHead {
    let out = request;
    for (const s of this.#secrets) out = swap(out, s.value, s.placeholder, true);
    return out;
  }

  /** `text` with every real value replaced by its placeholder (for reasons and messages). */
  redact(text: string): string {
    let out = text;
    for (const s of this.#secrets) out = out.split(s.value).join(s.placeholder);
    return out;
  }

  private describe(): object {
    return this.#secrets.map((s) => ({
      name: s.name,
      placeholder: s.placeholder,
      hosts: s.hosts.map((h) => h.text),
    }));
  }

  toJSON(): object {
    return { secrets: this.describe() };
  }

  toString(): string {
    return `SecretSet(${this.#secrets.map((s) => s.name).join(", ")})`;
  }

  [inspect.custom](): string {
    return `SecretSet ${inspect(this.describe())}`;
  }
}

/** `from` → `to` in header values, inside Basic credentials, and (when `inQuery`) the query. */
function swap(
  request: HttpRequestHead,
  from: string,
  to: string,
  inQuery: boolean,
): HttpRequestHead {
  let changed = false;
  const headers = request.headers.map(([name, value]): [string, string] => {
    let v = value.includes(from) ? value.split(from).join(to) : value;
    const basic = /^(proxy-)?authorization$/i.test(name) ? BASIC_RE.exec(v) : null;
    if (basic) {
      const decoded = Buffer.from(basic[2] as string, "base64");
      const swapped = replaceAllBytes(decoded, Buffer.from(from), Buffer.from(to));
      if (swapped !== decoded) v = `${basic[1]}${swapped.toString("base64")}${basic[3]}`;
    }
    if (v !== value) changed = true;
    return [name, v];
  });
  let target = request.target;
  if (inQuery) {
    const { path, query } = splitTarget(target);
    if (query !== undefined) {
      const q = query
        .split(from)
        .join(encodeURIComponent(to))
        .split(encodeURIComponent(from))
        .join(encodeURIComponent(to));
      if (q !== query) target = joinTarget({ path, query: q });
    }
  }
  if (!changed && target === request.target) return request;
  return { ...request, headers, target };
}
