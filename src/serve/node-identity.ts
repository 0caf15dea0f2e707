/**
 * A node's identity, kept under `<data dir>/serve/`: its id (what sandbox ids name, so a
 * client with many nodes finds the right one), the key its sandbox tokens are derived with,
 * and by default its operator token. All survive restarts; all are the serving user's only.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ErrInvalidConfig } from "../errors.js";
import { dataDir, makePrivateDir } from "../paths.js";
import { isNodeId } from "../util/index.js";
import { loadOrCreateSecretFile, NodeCredentials } from "./auth.js";

export function serveDir(): string {
  return join(dataDir(), "serve");
}

export function defaultTokenPath(): string {
  return join(serveDir(), "operator-token");
}

/** The given id, else the one kept from an earlier start, else a new `node-` + 8 hex. */
export function nodeId(given: string | undefined): string {
  if (given !== undefined) {
    if (!isNodeId(given))
      throw new ErrInvalidConfig(
        `--node-id must be lower-case letters, digits, dots and inner hyphens, got ${JSON.stringify(given)}`,
      );
    return given;
  }
  const path = join(serveDir(), "node-id");
  if (existsSync(path)) {
    const kept = readFileSync(path, "utf8").trim();
    if (isNodeId(kept)) return kept;
  }
  const fresh = `node-${randomBytes(4).toString("hex")}`;
  makePrivateDir(serveDir());
  writeFileSync(path, `${fresh}\n`, { mode: 0o600 });
  return fresh;
}

export interface LoadedCredentials {
  credentials: NodeCredentials;
  tokenPath: string;
  /** True when the operator token was made just now (its path is worth printing). */
  tokenCreated: boolean;
}

export function loadCredentials(
  tokenFile: string | undefined,
  warn: (message: string) => void,
): LoadedCredentials {
  const tokenPath = tokenFile ?? defaultTokenPath();
  const token = loadOrCreateSecretFile(tokenPath, warn);
  const key = loadOrCreateSecretFile(join(serveDir(), "node.key"), warn);
  return {
    credentials: new NodeCredentials(token.value, key.value),
    tokenPath,
    tokenCreated: token.created,
  };
}
