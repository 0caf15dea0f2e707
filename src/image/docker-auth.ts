import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { ErrImage } from "../errors.js";
import { DOCKER_HUB } from "./reference.js";

export interface RegistryCredentials {
  username: string;
  password: string;
  /**
   * An OAuth2 refresh token ("identity token") to trade at the token service instead of sending
   * a password: what `docker login` stores for registries that issue one, and what a credential
   * helper returns with the username `<token>`.
   */
  identityToken?: string;
}

/** Docker's marker: a helper answering this username holds an identity token as its secret. */
const IDENTITY_TOKEN_USER = "<token>";

interface DockerConfigFile {
  auths?: Record<
    string,
    { auth?: string; username?: string; password?: string; identitytoken?: string }
  >;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** Docker Hub's credentials are stored under its legacy index URL. */
const HUB_KEYS = [
  "https://index.docker.io/v1/",
  "index.docker.io",
  "docker.io",
  "registry-1.docker.io",
];

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json");
}

/**
 * Credentials for `registry` the way the docker CLI finds them: a per-registry credential
 * helper, else the global credential store, else the inline `auths` entry. Undefined = anonymous.
 */
export async function lookupCredentials(
  registry: string,
  configPath = dockerConfigPath(),
): Promise<RegistryCredentials | undefined> {
  let config: DockerConfigFile;
  try {
    config = JSON.parse(await readFile(configPath, "utf8")) as DockerConfigFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ErrImage(`cannot read ${configPath}: ${(err as Error).message}`);
  }
  const keys =
    registry === DOCKER_HUB ? HUB_KEYS : [registry, `https://${registry}`, `http://${registry}`];
  const helper =
    keys.map((k) => config.credHelpers?.[k]).find((h) => h !== undefined) ?? config.credsStore;
  if (helper) {
    const fromHelper = await runCredentialHelper(helper, keys[0] ?? registry);
    if (fromHelper) return fromHelper;
  }
  for (const key of keys) {
    const entry = config.auths?.[key] ?? config.auths?.[`${key}/`];
    if (!entry) continue;
    if (entry.identitytoken)
      return { username: "", password: "", identityToken: entry.identitytoken };
    if (entry.username !== undefined && entry.password !== undefined)
      return { username: entry.username, password: entry.password };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon > 0)
        return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
  }
  return undefined;
}

/**
 * `docker-credential-<helper> get`, server URL on stdin. A helper that knows nothing about the
 * server exits non-zero with "credentials not found"; that means anonymous, not an error.
 */
export function runCredentialHelper(
  helper: string,
  serverUrl: string,
): Promise<RegistryCredentials | undefined> {
  if (!/^[A-Za-z0-9_.-]+$/.test(helper))
    return Promise.reject(new ErrImage(`invalid credential helper name "${helper}"`));
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, ["get"], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out = (out + d).slice(0, 1 << 20)));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err = (err + d).slice(-4096)));
    child.on("error", (e) =>
      reject(new ErrImage(`credential helper docker-credential-${helper}: ${e.message}`)),
    );
    child.on("close", (code) => {
      if (code !== 0) {
        if (/not found/i.test(out + err)) return resolve(undefined);
        return reject(
          new ErrImage(
            `credential helper docker-credential-${helper} failed (exit ${code}): ${(err || out).trim()}`,
          ),
        );
      }
      try {
        const r = JSON.parse(out) as { Username?: string; Secret?: string };
        if (typeof r.Username !== "string" || typeof r.Secret !== "string")
          return resolve(undefined);
        resolve(
          r.Username === IDENTITY_TOKEN_USER
            ? { username: "", password: "", identityToken: r.Secret }
            : { username: r.Username, password: r.Secret },
        );
      } catch {
        reject(new ErrImage(`credential helper docker-credential-${helper} printed no JSON`));
      }
    });
    child.stdin.end(serverUrl);
  });
}
