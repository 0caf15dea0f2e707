/**
 * The public shapes of the HTTP policy: secrets, declarative hook rules and TypeScript hook
 * callbacks. Field names are the camelCase of the reference's config (matchlock §3, §4.6, §4.7).
 */
import type { HeaderList } from "../intercept/contract.js";

/**
 * A credential that never enters the VM. The guest's env holds a random placeholder under
 * `name`; the host swaps the real `value` in only where all of these hold: the request goes to
 * one of `hosts` (an entry without a port: 443, or 80 for plain HTTP), over TLS on both legs
 * unless `allowHttp`, and the placeholder sits in `Authorization`, `Proxy-Authorization`, one
 * of `headers`, or (with `inQuery`) the query. A placeholder anywhere else blocks the request.
 */
export interface SecretSpec {
  /** Env var name in the guest (`[A-Za-z_][A-Za-z0-9_]*`). */
  name: string;
  /** The real value; printable characters only (it is written into header values). */
  value: string;
  /**
   * Host globs as in the allowlist (`api.example.com`, `*.example.com`, optional `:port`).
   * Without a port an entry means port 443 (and 80 when `allowHttp`). Empty: every host
   * (reference semantics) — prefer naming the hosts.
   */
  hosts: readonly string[];
  /**
   * Request headers the value may be sent in besides `Authorization` and
   * `Proxy-Authorization` (case-insensitive), e.g. `["X-Api-Key"]`.
   */
  headers?: readonly string[];
  /** Also replace the placeholder in the URL query (off by default: URLs end up in logs). */
  inQuery?: boolean;
  /** Also send the value over plain HTTP (off by default: it would cross the network in clear). */
  allowHttp?: boolean;
  /**
   * What the guest sees instead of a new random placeholder: a caller's own (checked by the
   * config), or the one kept when `configure` rebuilds a running sandbox's policy.
   */
  placeholder?: string;
}

/** One literal find/replace applied to a response body (no regex). */
export interface BodyReplacement {
  find: string;
  replace?: string;
}

/** The request as a hook callback sees it. Secrets are still placeholders here. */
export interface HookRequest {
  readonly method: string;
  readonly scheme: "http" | "https";
  /** Canonical host (lower case, no port). */
  readonly host: string;
  readonly port: number;
  /** Path as sent (percent-encoded), without the query. */
  readonly path: string;
  /** A copy: changing it changes nothing; return `setQuery`/`query` instead. */
  readonly query: URLSearchParams;
  /** A copy, in wire order. */
  readonly headers: HeaderList;
  /** First value of a header, case-insensitive. */
  header(name: string): string | undefined;
}

/** What a before-phase callback gets. */
export interface RequestHookContext extends HookRequest {
  /** Name of the rule that runs (or `rule #N`). */
  readonly rule: string;
  /** The request body, buffered by the proxy; rejects past `limitBytes` (default 16 MiB). */
  body(limitBytes?: number): Promise<Buffer>;
  /** Aborted when the callback's time is up: pass it on to `fetch` and friends. */
  readonly signal: AbortSignal;
}

/** A response a before-phase callback sends to the guest itself; nothing goes upstream. */
export interface DirectResponse {
  /** 200..599. */
  status: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

/** What both phases' callbacks may return besides their own fields. */
export interface HookResultCommon {
  /** `block` sends a 403 to the guest; default `allow`. */
  action?: "allow" | "block";
  /** Why, for the event (blocks only). */
  reason?: string;
  /** Replaces every header; framing ones (Host, Content-Length, ...) are kept as they were. */
  headers?: Record<string, string>;
  /** Framing headers cannot be set or deleted: that result is refused (and blocks). */
  setHeaders?: Record<string, string>;
  deleteHeaders?: string[];
  /** Replaces the body. */
  body?: Buffer | string;
}

/**
 * What a before-phase callback returns. Nothing (or `"allow"`) lets the request go on unchanged.
 * Request changes apply in this order: `headers` (full replacement), `setHeaders`,
 * `deleteHeaders`, `query` (full replacement), `setQuery`, `deleteQuery`, `path`, `body`.
 * A result that cannot be applied (a bad header, a relative path) blocks the request.
 */
export type RequestHookResult =
  | void
  | "allow"
  | "block"
  | (HookResultCommon & {
      /** Replaces the whole query. */
      query?: Record<string, string>;
      setQuery?: Record<string, string>;
      deleteQuery?: string[];
      /** New path (starts with `/`, percent-encoded as needed); the query is kept. */
      path?: string;
      /** Answer the guest directly; nothing goes upstream. */
      respond?: DirectResponse;
    });

/** What an after-phase callback gets. */
export interface ResponseHookContext {
  readonly rule: string;
  /** The request as the guest sent it after before-phase hooks (placeholders, never secrets). */
  readonly request: HookRequest;
  readonly status: number;
  readonly headers: HeaderList;
  header(name: string): string | undefined;
  /** `Content-Type: text/event-stream`: reading the body waits for the stream's end. */
  readonly isSse: boolean;
  /** The response body as received (decoded only if upstream ignored `Accept-Encoding`). */
  body(limitBytes?: number): Promise<Buffer>;
  readonly signal: AbortSignal;
}

/**
 * What an after-phase callback returns; nothing (or `"allow"`) passes the response on. A new
 * `body` gets every matching rule's `bodyReplacements` applied.
 */
export type ResponseHookResult =
  | void
  | "allow"
  | "block"
  | (HookResultCommon & {
      /** 200..599. */
      status?: number;
      /** Added to the replacements of earlier rules. */
      bodyReplacements?: BodyReplacement[];
    });

interface HookRuleCommon {
  /** For errors and events. */
  name?: string;
  /** Host globs (allowlist syntax); empty or absent: every host. */
  hosts?: string[];
  /** HTTP methods (case-insensitive); empty or absent: every method. */
  methods?: string[];
  /**
   * Path glob, Go `path.Match` syntax: `*` any run without `/`, `?` one character, `[a-z]`,
   * `[^a-z]`, `\` escapes. Absent: every path. Matched against the path as sent, its
   * percent-decoded form and that form with `.`/`..` resolved: any match counts.
   */
  path?: string;
  /** Time allowed to `hook`, in ms (default 5000). A timeout or a throw blocks the request. */
  timeoutMs?: number;
}

/** A before-phase rule: runs on the request, in order, before secrets are substituted. */
export interface RequestHookRule extends HookRuleCommon {
  phase?: "before";
  /** `block` refuses matching requests (403). Default `allow`; `mutate` when it changes things. */
  action?: "allow" | "block" | "mutate";
  setHeaders?: Record<string, string>;
  deleteHeaders?: string[];
  setQuery?: Record<string, string>;
  deleteQuery?: string[];
  rewritePath?: string;
  /** Runs after this rule's static changes. Cannot be combined with `action: "block"`. */
  hook?: (ctx: RequestHookContext) => RequestHookResult | Promise<RequestHookResult>;
}

/** An after-phase rule: runs on the response, in order. */
export interface ResponseHookRule extends HookRuleCommon {
  phase: "after";
  action?: "allow" | "block" | "mutate";
  setResponseHeaders?: Record<string, string>;
  deleteResponseHeaders?: string[];
  /**
   * Literal find/replace over the body, in order. `text/event-stream` responses are rewritten
   * as they stream, in `data:` lines only; other bodies are buffered (up to 16 MiB; larger ones
   * are blocked rather than passed unchanged).
   */
  bodyReplacements?: BodyReplacement[];
  hook?: (ctx: ResponseHookContext) => ResponseHookResult | Promise<ResponseHookResult>;
}

/** A declarative hook rule, optionally with a TypeScript callback. */
export type HookRule = RequestHookRule | ResponseHookRule;

export interface HttpPolicyOptions {
  secrets?: SecretSpec[];
  rules?: HookRule[];
}
