/**
 * Where one secret's real value may go: which destinations (host, port, TLS) and which places
 * in a request head (credential headers, listed headers, the query on request).
 */
import { ErrInvalidConfig } from "../../errors.js";
import type { HttpRequestHead, NetworkBlockCode } from "../intercept/contract.js";
import { compileHostPattern, type HostPattern } from "../policy/index.js";
import { headerNameProblem } from "./headers.js";
import type { HeadPlace } from "./leak-scan.js";
import type { SecretSpec } from "./types.js";

/** Where HTTP carries credentials: every secret may be sent in these. */
export const DEFAULT_SECRET_HEADERS: readonly string[] = ["Authorization", "Proxy-Authorization"];

/** The port a host entry without one stands for. */
function standardPort(tls: boolean): number {
  return tls ? 443 : 80;
}

export type DestinationCheck =
  | { ok: true }
  /** The reason names the secret, never its value or placeholder. */
  | { ok: false; code: NetworkBlockCode; reason: string };

const DESTINATION_OK: DestinationCheck = { ok: true };

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
 * Why `header` cannot carry a secret, or undefined when it can. Headers the proxy owns (Host,
 * Content-Length, Connection, ...) are refused: a value written there would reframe or
 * retarget the request.
 */
export function secretHeaderProblem(header: unknown): string | undefined {
  if (typeof header !== "string") return "header names must be strings";
  return headerNameProblem(header, "request");
}

/** The default headers plus `extra`, de-duplicated case-insensitively (first spelling kept). */
function compileHeaders(name: string, extra: unknown): string[] {
  if (extra !== undefined && !Array.isArray(extra))
    throw new ErrInvalidConfig(`secret ${name}: headers must be an array of header names`);
  const out = new Map<string, string>();
  for (const h of [...DEFAULT_SECRET_HEADERS, ...((extra as unknown[] | undefined) ?? [])]) {
    const problem = secretHeaderProblem(h);
    if (problem !== undefined) throw new ErrInvalidConfig(`secret ${name}: headers: ${problem}`);
    const lower = (h as string).toLowerCase();
    if (!out.has(lower)) out.set(lower, h as string);
  }
  return [...out.values()];
}

export class SecretScope {
  readonly #hosts: readonly HostPattern[];
  /** Lower-case names. */
  readonly #headers: ReadonlySet<string>;

  private constructor(
    readonly name: string,
    hosts: readonly HostPattern[],
    /** As spelled by the user, defaults first. */
    readonly headers: readonly string[],
    readonly inQuery: boolean,
    readonly allowHttp: boolean,
  ) {
    this.#hosts = hosts;
    this.#headers = new Set(headers.map((h) => h.toLowerCase()));
  }

  /** Checks the spec's fields (one-line ErrInvalidConfig naming the secret, never its value). */
  static compile(name: string, spec: Omit<SecretSpec, "name" | "value">): SecretScope {
    const hosts = compileHosts(name, spec.hosts);
    const headers = compileHeaders(name, spec.headers);
    return new SecretScope(name, hosts, headers, !!spec.inQuery, !!spec.allowHttp);
  }

  /** The host patterns as given, for the allowlist. */
  hostTexts(): string[] {
    return this.#hosts.map((h) => h.text);
  }

  /**
   * Whether a request to this destination may carry the value: a host entry matches, the
   * request goes over TLS (the proxy uses the guest's scheme upstream too) unless `allowHttp`,
   * and the port is the entry's, or the scheme's standard port for an entry without one.
   */
  destination(request: HttpRequestHead): DestinationCheck {
    const tls = request.scheme === "https";
    const matching =
      this.#hosts.length === 0
        ? [undefined]
        : this.#hosts
            .filter((h) => h.matches(request.host, h.port ?? request.port))
            .map((h) => h.port);
    if (matching.length === 0)
      return {
        ok: false,
        code: "secret_leak",
        reason: `secret placeholder (${this.name}) sent to a host the secret is not allowed for`,
      };
    if (!tls && !this.allowHttp)
      return {
        ok: false,
        code: "secret_requires_tls",
        reason:
          `secret ${this.name} is only sent over TLS and its placeholder is in a plain-HTTP ` +
          "request (use https, or allow plain HTTP for this secret)",
      };
    const ports = [...new Set(matching.map((p) => p ?? standardPort(tls)))];
    if (!ports.includes(request.port))
      return {
        ok: false,
        code: "secret_leak",
        reason:
          `secret placeholder (${this.name}) sent to port ${request.port}; for this host the ` +
          `secret is bound to port ${ports.join(", ")}`,
      };
    return DESTINATION_OK;
  }

  /** Whether the value is written at `place` (once the destination is allowed). */
  substitutesIn(place: HeadPlace): boolean {
    if (place.kind === "header") return this.#headers.has(place.name.toLowerCase());
    return place.kind === "query" && this.inQuery;
  }

  /** For block reasons: `Authorization, Proxy-Authorization, X-Api-Key, the query`. */
  places(): string {
    return [...this.headers, ...(this.inQuery ? ["the query"] : [])].join(", ");
  }
}
