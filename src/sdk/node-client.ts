/**
 * Calls to a node's REST API (`wheellock serve`): JSON over HTTP(S) with a bearer token. A
 * refusal comes back as the typed error the node named in its one-line JSON body.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { ErrInvalidConfig, ErrVMNotRunning, reviveError } from "../errors.js";
import { nodeConnectError } from "../remote/index.js";

export interface NodeEndpoint {
  /** `http://host:port` or `https://host:port`. */
  url: string;
  token: string;
  /** PEM certificates trusted besides the system's. */
  ca?: string;
  /** More request headers: what a router in front of the node routes by (`X-Sandbox-ID`). */
  headers?: Readonly<Record<string, string>>;
}

/** Bodies a node sends are small; a bigger one is not from a node. */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** The URL as an error message may show it: userinfo (a password or token) blanked. */
function shown(url: string): string {
  return JSON.stringify(url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, "$1***@"));
}

export function checkNodeUrl(url: string): URL {
  const wrong = (why = ""): ErrInvalidConfig =>
    new ErrInvalidConfig(`remote url must be http(s)://HOST:PORT${why}, got ${shown(url)}`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw wrong();
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw wrong();
  // A token in the URL would end up in error messages, shell history and proxies' logs.
  if (parsed.username !== "" || parsed.password !== "")
    throw wrong(" with no user or password (the token goes in remote.token or WHEELLOCK_TOKEN)");
  return parsed;
}

const warnedPlainHttp = new Set<string>();

/**
 * A token sent over plain HTTP to another machine can be read and reused by anyone on the way
 * (tokens do not expire): warned once per node and process. Loopback stays quiet (tests,
 * `serve` on the same host, an SSH tunnel).
 */
export function warnIfPlainHttp(url: URL): void {
  if (url.protocol !== "http:") return;
  const host = url.hostname;
  if (host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host)) return;
  if (warnedPlainHttp.has(url.origin)) return;
  warnedPlainHttp.add(url.origin);
  process.emitWarning(
    `wheellock: the token for ${url.origin} goes over plain HTTP, readable by anyone on the ` +
      "network path; serve with --tls-cert/--tls-key and use https://",
    "WheellockInsecureWarning",
  );
}

/** The WebSocket URL of a sandbox's operation endpoint on its node. */
export function operationUrl(node: string, id: string): string {
  const base = checkNodeUrl(node);
  base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
  base.pathname = `/v1/sandboxes/${encodeURIComponent(id)}/operation`;
  return base.toString();
}

async function readBody(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    size += (chunk as Buffer).length;
    if (size > MAX_RESPONSE_BYTES) throw new ErrVMNotRunning("node response too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * How long a call may go without a byte from the node. Always set: Node's global agent times
 * sockets out after 5 s idle, and a node answers `create` only once the VM is up.
 */
export const DEFAULT_NODE_TIMEOUT_MS = 60_000;
/** `create` boots a VM and `DELETE` stops one before answering (minutes under TCG, loaded). */
export const LIFECYCLE_TIMEOUT_MS = 15 * 60_000;

/** One REST call; resolves with the parsed JSON, or the raw bytes for `raw: true`. */
export function nodeRequest<T>(
  node: NodeEndpoint,
  method: string,
  path: string,
  body?: string,
  options: { timeoutMs?: number } = {},
): Promise<{ status: number; json: T; headers: IncomingMessage["headers"]; bytes: Buffer }> {
  const url = new URL(path, checkNodeUrl(node.url));
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method,
        headers: {
          ...node.headers,
          authorization: `Bearer ${node.token}`,
          ...(body !== undefined
            ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
            : {}),
        },
        ...(node.ca !== undefined ? { ca: node.ca } : {}),
        timeout: options.timeoutMs ?? DEFAULT_NODE_TIMEOUT_MS,
      },
      (res) => {
        readBody(res).then((bytes) => {
          const status = res.statusCode ?? 0;
          const isJson = (res.headers["content-type"] ?? "").startsWith("application/json");
          let json: unknown;
          try {
            json = isJson ? JSON.parse(bytes.toString("utf8")) : undefined;
          } catch {
            json = undefined;
          }
          if (status >= 400) {
            const error = (json as { error?: { code?: string; message?: string } } | undefined)
              ?.error;
            return reject(
              reviveError(
                error?.code ?? (status === 401 || status === 403 ? "ErrAuth" : "ErrVMNotRunning"),
                error?.message ?? `${node.url}: HTTP ${status}`,
              ),
            );
          }
          resolve({ status, json: json as T, headers: res.headers, bytes });
        }, reject);
      },
    );
    req.once("timeout", () => req.destroy(new Error("timed out")));
    req.once("error", (err: NodeJS.ErrnoException) =>
      reject(nodeConnectError(err, `node ${node.url}`)),
    );
    req.end(body);
  });
}
