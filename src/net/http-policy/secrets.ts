import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { ErrInvalidConfig } from "../../errors.js";
import type { HttpRequestHead, NetworkBlockCode } from "../intercept/contract.js";
import { replaceAllBytes } from "./bytes.js";
import { headerValueProblem } from "./headers.js";
import { HeadScan, describePlace } from "./leak-scan.js";
import { SecretScope } from "./secret-scope.js";
import { joinTarget, splitTarget } from "./target.js";
import type { SecretSpec } from "./types.js";

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BASIC_RE = /^(\s*basic\s+)([A-Za-z0-9+/=_-]+)(\s*)$/i;
const CREDENTIAL_HEADER_RE = /^(proxy-)?authorization$/i;

interface Secret {
  readonly name: string;
  readonly placeholder: string;
  readonly value: string;
  readonly scope: SecretScope;
}

export type SubstituteResult =
  /** `used`: the names of the secrets whose values went into the request. */
  | { ok: true; request: HttpRequestHead; used: string[] }
  /** The reason names the secret, never its value or placeholder. */
  | { ok: false; code: NetworkBlockCode; reason: string };

/** Where `swap` writes: the headers `header` accepts (by name as sent), and the query or not. */
interface SwapPlaces {
  header(name: string): boolean;
  query: boolean;
}

const EVERYWHERE: SwapPlaces = { header: () => true, query: true };

/** `SANDBOX_SECRET_` + 32 lowercase hex digits, as the reference. */
export function newPlaceholder(): string {
  return `SANDBOX_SECRET_${randomBytes(16).toString("hex")}`;
}

/**
 * The secrets of one sandbox, each with a placeholder drawn once. Real values live in a private
 * field only: `inspect`, `JSON.stringify` and `String()` show names, placeholders and scopes.
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
      const scope = SecretScope.compile(name, spec);
      // A caller's placeholder was checked by the config; a policy rebuilt for a running sandbox
      // (`configure`) keeps the placeholders its guest already has, whatever their form.
      const placeholder = spec.placeholder ?? newPlaceholder();
      return { name, placeholder, value: spec.value, scope };
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
    return [...new Set(this.#secrets.flatMap((s) => s.scope.hostTexts()))];
  }

  /**
   * Blocks a request that carries a placeholder where its secret may not go — a destination
   * the secret is not bound to (host, port, plain HTTP), or a place in the head it is not
   * substituted in — looking in encoded forms too; otherwise writes each real value into its
   * secret's places: its headers (inside `Authorization: Basic` credentials too) and, when the
   * secret opts in, the query. Runs last, on the request as it will be forwarded.
   */
  substitute(request: HttpRequestHead): SubstituteResult {
    if (this.#secrets.length === 0) return { ok: true, request, used: [] };
    const scan = new HeadScan(request);
    const bound: Secret[] = [];
    for (const s of this.#secrets) {
      const destination = s.scope.destination(request);
      if (!destination.ok) {
        if (scan.find(s.placeholder) !== undefined) return destination;
        continue;
      }
      const stray = scan.find(s.placeholder, (place) => s.scope.substitutesIn(place));
      if (stray !== undefined)
        return {
          ok: false,
          code: "secret_leak",
          reason:
            `secret placeholder (${s.name}) in ${describePlace(stray)}, where it is not ` +
            `substituted (only in ${s.scope.places()})`,
        };
      bound.push(s);
    }
    let out = request;
    const used: string[] = [];
    for (const s of bound) {
      const places: SwapPlaces = {
        header: (name) => s.scope.substitutesIn({ kind: "header", name }),
        query: s.scope.inQuery,
      };
      const swapped = swap(out, s.placeholder, s.value, places);
      // swap returns its input when nothing was replaced.
      if (swapped !== out) used.push(s.name);
      out = swapped;
    }
    return { ok: true, request: out, used };
  }

  /** The reverse of `substitute`: real values back to placeholders, for callbacks. */
  conceal(request: HttpRequestHead): HttpRequestHead {
    let out = request;
    for (const s of this.#secrets) out = swap(out, s.value, s.placeholder, EVERYWHERE);
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
      hosts: s.scope.hostTexts(),
      headers: s.scope.headers,
      inQuery: s.scope.inQuery,
      allowHttp: s.scope.allowHttp,
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

/** `from` → `to` in the values of the headers `places` names (Basic credentials decoded), and the query. */
function swap(
  request: HttpRequestHead,
  from: string,
  to: string,
  places: SwapPlaces,
): HttpRequestHead {
  let changed = false;
  const headers = request.headers.map(([name, value]): [string, string] => {
    if (!places.header(name)) return [name, value];
    let v = value.includes(from) ? value.split(from).join(to) : value;
    const basic = CREDENTIAL_HEADER_RE.test(name) ? BASIC_RE.exec(v) : null;
    if (basic) {
      const decoded = Buffer.from(basic[2] as string, "base64");
      const swapped = replaceAllBytes(decoded, Buffer.from(from), Buffer.from(to));
      if (swapped !== decoded) v = `${basic[1]}${swapped.toString("base64")}${basic[3]}`;
    }
    if (v !== value) changed = true;
    return [name, v];
  });
  let target = request.target;
  if (places.query) {
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
