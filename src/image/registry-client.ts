import { ErrImage } from "../errors.js";
import { readBodyUpTo } from "./bounded-body.js";
import type { RegistryCredentials } from "./docker-auth.js";
import { MANIFEST_ACCEPT } from "./manifest.js";
import { isLoopbackRegistry, registryApiHost } from "./reference.js";
import { parseChallenge } from "./www-authenticate.js";

export interface RegistryClientOptions {
  /** Plain HTTP for this registry (`--insecure-registry`); loopback registries always are. */
  insecure?: boolean;
  credentials?: RegistryCredentials | undefined;
  /** Extra attempts after a network error, HTTP 429 or 5xx (default 3). */
  retries?: number;
  /** Base delay of the exponential backoff between attempts (default 250 ms). */
  retryDelayMs?: number;
  /** Ask the token service for push rights on the repository too (`wheellock push`). */
  push?: boolean;
  /** Other repositories of this registry to read from (cross-repository blob mounts). */
  mountFrom?: readonly string[];
}

/** One request to the registry's API; see `RegistryClient.send`. */
export interface RegistryRequest {
  method?: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Path under `/v2/`, or an absolute URL (an upload session's Location). */
  path: string | URL;
  headers?: Record<string, string>;
  /**
   * A fresh body for each attempt: a retry or an authentication challenge sends it again, and a
   * stream can be read only once.
   */
  body?: () => Buffer | NodeJS.ReadableStream;
  signal?: AbortSignal | undefined;
  /** Overrides the client's retries (an upload chunk is resumed by its caller instead). */
  retries?: number;
}

export interface FetchedManifest {
  body: Buffer;
  contentType: string | undefined;
}

/** Manifests are small; a bigger answer is an attack or a mistake. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 60_000;

/**
 * One registry, one repository at a time: the OCI distribution API (`/v2/...`) with the auth
 * dance registries use (401 + WWW-Authenticate, then Basic, or a Bearer token from the realm).
 * The token is kept for the client's lifetime so parallel blob requests reuse it.
 */
export class RegistryClient {
  readonly registry: string;
  private readonly baseUrl: string;
  private readonly opts: RegistryClientOptions;
  private authorization: string | undefined;
  private authenticating: Promise<void> | undefined;

  constructor(registry: string, opts: RegistryClientOptions = {}) {
    this.registry = registry;
    this.opts = opts;
    const scheme = opts.insecure || isLoopbackRegistry(registry) ? "http" : "https";
    this.baseUrl = `${scheme}://${registryApiHost(registry)}/v2/`;
  }

  /** GET a manifest or index by tag or digest. Null when the registry says it does not exist. */
  async getManifest(repository: string, reference: string): Promise<FetchedManifest | null> {
    const res = await this.send(repository, {
      path: `${repository}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    await this.ensureOk(res, repository, "manifest");
    const body = await readBodyUpTo(
      res,
      MAX_MANIFEST_BYTES,
      () => new ErrImage(`manifest from ${this.registry} too large`),
    );
    return { body, contentType: res.headers.get("content-type") ?? undefined };
  }

  /** Starts a blob download; the caller streams and verifies `res.body`. */
  async getBlob(repository: string, digest: string, signal?: AbortSignal): Promise<Response> {
    const res = await this.send(repository, { path: `${repository}/blobs/${digest}`, signal });
    await this.ensureOk(res, repository, `blob ${digest}`);
    return res;
  }

  /** Throws the registry's answer as one line unless it is a success. */
  async ensureOk(res: Response, repository: string, what: string): Promise<void> {
    if (res.ok) return;
    const text = (await res.text().catch(() => "")).slice(0, 300).replace(/\s+/g, " ");
    if (res.status === 401 || res.status === 403) {
      throw new ErrImage(
        this.opts.credentials
          ? `authentication failed for registry ${this.registry} (HTTP ${res.status} on ${repository})`
          : `registry ${this.registry} denied access to ${repository} (HTTP ${res.status}): it may not exist, or needs a login in ~/.docker/config.json`,
      );
    }
    throw new ErrImage(
      `registry ${this.registry}: ${what} of ${repository}: HTTP ${res.status} ${text}`,
    );
  }

  /** The absolute URL of an API path, or of a Location the registry answered with. */
  resolve(path: string | URL): URL {
    return typeof path === "string" ? new URL(path, this.baseUrl) : path;
  }

  /**
   * Sends one request with the registry's authentication and retries (network errors, 429, 5xx;
   * exponential backoff). Credentials go only to the registry's own origin: an upload Location
   * on another host (a storage redirect) gets none, and must be HTTPS unless the registry is not.
   */
  async send(repository: string, req: RegistryRequest): Promise<Response> {
    const url = this.resolve(req.path);
    const sameOrigin = url.origin === new URL(this.baseUrl).origin;
    if (!sameOrigin && url.protocol !== "https:" && !this.baseUrl.startsWith("http:"))
      throw new ErrImage(`registry ${this.registry} sent a plain-HTTP location ${url.origin}`);
    const retries = req.retries ?? this.opts.retries ?? 3;
    const signal = req.signal;
    let challenged = false;
    for (let attempt = 0; ;) {
      let res: Response;
      // The deadline covers the response headers only: a large layer may stream for longer
      // than any fixed limit (a stalled body is cut by undici's 5-minute idle timeout).
      signal?.throwIfAborted();
      const abort = new AbortController();
      const onAbort = (): void => abort.abort(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      const deadline = setTimeout(
        () => abort.abort(new Error(`no response within ${REQUEST_TIMEOUT_MS / 1000} s`)),
        REQUEST_TIMEOUT_MS,
      );
      const body = req.body?.();
      try {
        res = await fetch(url, {
          method: req.method ?? "GET",
          headers: {
            ...req.headers,
            ...(this.authorization && sameOrigin ? { authorization: this.authorization } : {}),
          },
          redirect: "follow",
          signal: abort.signal,
          ...(body !== undefined
            ? { body: body as unknown as RequestInit["body"], duplex: "half" as const }
            : {}),
        } as RequestInit);
      } catch (err) {
        destroyBody(body);
        if (signal?.aborted) throw err;
        if (attempt++ < retries) {
          await this.backoff(attempt);
          continue;
        }
        const cause =
          (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
        throw new ErrImage(`registry ${this.registry} unreachable: ${cause}`, { cause: err });
      } finally {
        clearTimeout(deadline);
        signal?.removeEventListener("abort", onAbort);
      }
      if (res.status === 401 && !challenged && sameOrigin) {
        challenged = true;
        const header = res.headers.get("www-authenticate");
        await res.body?.cancel();
        await this.authenticate(repository, header);
        continue;
      }
      if ((res.status === 429 || res.status >= 500) && attempt++ < retries) {
        await res.body?.cancel();
        await this.backoff(attempt);
        continue;
      }
      return res;
    }
  }

  /** What the token must allow: pull (and push) here, pull from every mount source. */
  private scopes(repository: string): string[] {
    const own = `repository:${repository}:${this.opts.push ? "pull,push" : "pull"}`;
    const sources = (this.opts.mountFrom ?? []).filter((r) => r !== repository);
    return [own, ...sources.map((r) => `repository:${r}:pull`)];
  }

  private backoff(attempt: number): Promise<void> {
    const ms = (this.opts.retryDelayMs ?? 250) * 2 ** (attempt - 1);
    return new Promise((r) => setTimeout(r, ms));
  }

  /** Parallel requests that all hit 401 share one token request. */
  private authenticate(repository: string, header: string | null): Promise<void> {
    this.authenticating ??= this.answerChallenge(repository, header).finally(() => {
      this.authenticating = undefined;
    });
    return this.authenticating;
  }

  private async answerChallenge(repository: string, header: string | null): Promise<void> {
    const challenge = parseChallenge(header);
    const creds = this.opts.credentials;
    const identityToken = creds?.identityToken;
    const basic =
      creds && !identityToken
        ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`
        : undefined;
    if (!challenge || challenge.scheme === "basic") {
      if (identityToken)
        throw new ErrImage(
          `registry ${this.registry} asks for a password, but only an identity token is stored for it (docker login again)`,
        );
      if (!basic)
        throw new ErrImage(
          `registry ${this.registry} requires authentication and no credentials were found for it (docker login, or ~/.docker/config.json)`,
        );
      this.authorization = basic;
      return;
    }
    if (challenge.scheme !== "bearer" || !challenge.params.realm)
      throw new ErrImage(
        `registry ${this.registry}: unsupported authentication challenge: ${header}`,
      );
    const url = new URL(challenge.params.realm);
    if (
      url.protocol !== "https:" &&
      !(url.protocol === "http:" && this.baseUrl.startsWith("http:"))
    )
      throw new ErrImage(`registry ${this.registry}: token realm ${url.origin} is not HTTPS`);
    if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
    for (const scope of this.scopes(repository)) url.searchParams.append("scope", scope);
    let res: Response;
    try {
      // The grant's parameters travel in the form body, so it goes to the realm as given.
      res = await fetch(
        identityToken ? challenge.params.realm : url,
        identityToken
          ? identityTokenRequest(url, identityToken)
          : {
              headers: basic ? { authorization: basic } : {},
              signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
            },
      );
    } catch (err) {
      throw new ErrImage(
        `registry ${this.registry}: token service ${url.host} unreachable: ${(err as Error).message}`,
      );
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new ErrImage(
        `authentication failed for registry ${this.registry}: token service answered HTTP ${res.status}`,
      );
    }
    const json = (await res.json().catch(() => ({}))) as {
      token?: unknown;
      access_token?: unknown;
    };
    const token = typeof json.token === "string" ? json.token : json.access_token;
    if (typeof token !== "string" || token === "")
      throw new ErrImage(
        `authentication failed for registry ${this.registry}: token service sent no token`,
      );
    this.authorization = `Bearer ${token}`;
  }
}

/** What we call ourselves to OAuth2 token services (they require a client_id; docker sends "docker"). */
const OAUTH_CLIENT_ID = "wheellock";

/**
 * The OAuth2 refresh-token grant of the distribution token spec (docs/spec/auth/oauth.md): the
 * identity token goes in a POST form body, never in a URL or a Basic header, and the service
 * answers with an `access_token`. `url` already carries service and scope as query parameters.
 */
function identityTokenRequest(url: URL, refreshToken: string): RequestInit {
  const form = new URLSearchParams({
    grant_type: "refresh_token",
    refresh_token: refreshToken,
    client_id: OAUTH_CLIENT_ID,
  });
  const service = url.searchParams.get("service");
  if (service !== null) form.set("service", service);
  // The token spec joins several scopes with spaces in the form body.
  const scopes = url.searchParams.getAll("scope");
  if (scopes.length > 0) form.set("scope", scopes.join(" "));
  return {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: form.toString(),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  };
}

/** A request body that was never sent must not keep its file open. */
function destroyBody(body: Buffer | NodeJS.ReadableStream | undefined): void {
  if (body && "destroy" in body && typeof body.destroy === "function") body.destroy();
}
