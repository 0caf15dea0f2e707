/**
 * Who may do what on a node: the operator token (lifecycle calls, and any sandbox), and one
 * token per sandbox (that sandbox's data plane only). Sandbox tokens are derived, not stored:
 * an HMAC of the sandbox id and its creation time under the node's own key, so a restarted
 * `serve` recognises the tokens it handed out, and a token never opens a later sandbox that
 * happens to reuse an id.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { ErrInvalidConfig } from "../errors.js";
import { makePrivateDir } from "../paths.js";

/** What a request's token grants. */
export type Access = { kind: "operator" } | { kind: "sandbox"; id: string };

/** 256 random bits, URL-safe. */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * Constant-time comparison. Both sides are hashed first, so neither the length of the expected
 * token nor where the first difference is can be learnt from the time a refusal takes.
 */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The token of `Authorization: Bearer TOKEN`, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  // The scheme is case-insensitive (RFC 7235): `bearer TOKEN` is the same credential.
  const match = /^Bearer ([A-Za-z0-9._~+/=-]{1,512})$/i.exec(header ?? "");
  return match?.[1];
}

/** A secret file of this user (0600), made with a new token when missing. */
export function loadOrCreateSecretFile(
  path: string,
  warn: (message: string) => void,
): { value: string; created: boolean } {
  if (existsSync(path)) {
    const mode = statSync(path).mode;
    // A Kubernetes secret volume is 0644 by default: say so, but do not refuse to start.
    if ((mode & 0o077) !== 0)
      warn(`${path} can be read by other users (mode ${(mode & 0o777).toString(8)})`);
    const value = readFileSync(path, "utf8").trim();
    if (value.length < 16) throw new ErrInvalidConfig(`${path}: a token of 16 characters or more`);
    return { value, created: false };
  }
  makePrivateDir(dirname(path));
  const value = newToken();
  writeFileSync(path, `${value}\n`, { mode: 0o600, flag: "wx" });
  return { value, created: true };
}

export class NodeCredentials {
  constructor(
    private readonly operatorToken: string,
    /** Signs sandbox tokens; never leaves the node. */
    private readonly nodeKey: string,
  ) {}

  /** The token `create` returns for a sandbox (the same after a restart of `serve`). */
  sandboxToken(id: string, createdAt: string): string {
    return createHmac("sha256", this.nodeKey).update(`${id}\n${createdAt}`).digest("base64url");
  }

  isOperator(token: string | undefined): boolean {
    return token !== undefined && tokensEqual(token, this.operatorToken);
  }

  /** True when `token` opens the sandbox: its own token, or the operator's. */
  opens(token: string | undefined, id: string, createdAt: string): boolean {
    if (token === undefined) return false;
    // Both comparisons always run: which one matched is not visible in the timing.
    const operator = tokensEqual(token, this.operatorToken);
    const own = tokensEqual(token, this.sandboxToken(id, createdAt));
    return operator || own;
  }
}
