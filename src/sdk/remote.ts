/**
 * Sandboxes on other machines: `Sandbox.create({ remote })` and `Sandbox.connect(id, { remote })`
 * against nodes running `wheellock serve`. The result is the same `RemoteSandbox` a supervised
 * sandbox is, over a WebSocket connector instead of a unix socket. Ids name their node
 * (`vm-1a2b3c4d@node-name`), so with several nodes an id alone finds its node.
 */
import type { Duplex } from "node:stream";
import { remoteOptionsJson, type SandboxOptions } from "../config/index.js";
import { ErrCapacity, ErrInvalidConfig, ErrVMNotFound, ErrVMNotRunning } from "../errors.js";
import { RemoteSandbox, webSocketConnector, type PooledConnector } from "../remote/index.js";
import type { NodeInfo, SandboxView } from "../serve/index.js";
import { parseNodeSandboxId } from "../util/index.js";
import {
  checkNodeUrl,
  warnIfPlainHttp,
  LIFECYCLE_TIMEOUT_MS,
  nodeRequest,
  operationUrl,
  type NodeEndpoint,
} from "./node-client.js";
import { placementOrder } from "./placement.js";

export interface RemoteOptions {
  /** A node's URL (`https://host:7777`), or several: a new sandbox goes to the freer of two. */
  url?: string | readonly string[];
  /** The node's operator token (create, list), or a sandbox's own token (connect). */
  token?: string;
  /** PEM certificates to trust for `https` nodes, besides the system's (a private CA). */
  ca?: string;
}

/** Where `WHEELLOCK_REMOTE` (comma-separated URLs) and `WHEELLOCK_TOKEN` fill in. */
export const ENV_REMOTE = "WHEELLOCK_REMOTE";
export const ENV_TOKEN = "WHEELLOCK_TOKEN";

export interface ResolvedRemote {
  urls: string[];
  token: string;
  ca: string | undefined;
}

/** The options with what the environment gives; undefined when no remote is meant at all. */
export function resolveRemote(
  remote: RemoteOptions | true | undefined,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedRemote | undefined {
  const given = remote === true ? {} : remote;
  const fromEnv = env[ENV_REMOTE];
  if (given === undefined && !fromEnv) return undefined;
  const url = given?.url ?? fromEnv?.split(",") ?? [];
  const urls = (typeof url === "string" ? url.split(",") : [...url])
    .map((u) => u.trim())
    .filter(Boolean);
  if (urls.length === 0)
    throw new ErrInvalidConfig(`remote.url (or ${ENV_REMOTE}) must name at least one node`);
  const parsed = urls.map((u) => checkNodeUrl(u));
  const token = given?.token ?? env[ENV_TOKEN];
  if (!token) throw new ErrInvalidConfig(`remote.token (or ${ENV_TOKEN}) is required`);
  for (const u of parsed) warnIfPlainHttp(u);
  return { urls, token, ca: given?.ca };
}

/** A sandbox on a node. `token` is its own token: hand it to whoever should use only it. */
export class NodeSandbox extends RemoteSandbox {
  constructor(
    id: string,
    /** The node's endpoint (found on first use when the id names one of several nodes). */
    locate: () => Promise<NodeEndpoint>,
    /** The sandbox's own token (undefined when connected by id). */
    readonly token: string | undefined,
  ) {
    let located: Promise<PooledConnector> | undefined;
    const connect = async (): Promise<Duplex> => {
      // Closed through this object: the node has removed it (its id is unknown there now).
      if (this.closed) throw new ErrVMNotRunning(`sandbox ${id} was closed`);
      located ??= locate().then((node) => {
        // One connector for the object's life: it keeps a connection ready for the next call.
        this.pool = webSocketConnector(
          {
            url: operationUrl(node.url, id),
            token: node.token,
            ...(node.ca !== undefined ? { ca: node.ca } : {}),
            ...(node.headers !== undefined ? { headers: node.headers } : {}),
          },
          id,
        );
        return this.pool;
      });
      const pooled = await located.catch((err: unknown) => {
        located = undefined;
        throw err;
      });
      return pooled();
    };
    // A connection whose operation ended cleanly goes back to the pool for the next one:
    // without this every operation would wait for a connection of its own.
    super(
      id,
      Object.assign(connect, {
        release: (conn: Duplex) => (this.pool?.release ? this.pool.release(conn) : conn.destroy()),
      }),
    );
  }

  private pool: PooledConnector | undefined;
  private closed = false;

  override async close(): Promise<void> {
    await super.close();
    this.closed = true;
    this.pool?.close();
  }
}

function endpoint(remote: ResolvedRemote, url: string): NodeEndpoint {
  return { url, token: remote.token, ...(remote.ca !== undefined ? { ca: remote.ca } : {}) };
}

/** Node ids by URL, learnt from `/healthz` (no token needed), kept for this process. */
const nodeIds = new Map<string, Promise<string | undefined>>();

function nodeIdOf(remote: ResolvedRemote, url: string): Promise<string | undefined> {
  let known = nodeIds.get(url);
  if (!known) {
    known = nodeRequest<{ node?: string }>(endpoint(remote, url), "GET", "/healthz", undefined, {
      timeoutMs: 5000,
    }).then(
      (r) => r.json?.node,
      () => undefined,
    );
    known.then((id) => id === undefined && nodeIds.delete(url));
    nodeIds.set(url, known);
  }
  return known;
}

/** The URL of the node an id names (the only URL when there is one). */
async function nodeUrlFor(remote: ResolvedRemote, id: string): Promise<string> {
  const parsed = parseNodeSandboxId(id);
  if (!parsed) throw new ErrInvalidConfig(`malformed sandbox id: ${JSON.stringify(id)}`);
  if (remote.urls.length === 1) return remote.urls[0] as string;
  if (parsed.nodeId === undefined)
    throw new ErrInvalidConfig(`with several nodes, an id must name its node (vm-...@node): ${id}`);
  const ids = await Promise.all(remote.urls.map((u) => nodeIdOf(remote, u)));
  const at = ids.indexOf(parsed.nodeId);
  if (at < 0) throw new ErrVMNotFound(id);
  return remote.urls[at] as string;
}

/** Creates a sandbox on the freer of two nodes (power of two choices). */
export async function createRemote(
  options: SandboxOptions,
  remote: ResolvedRemote,
  command: readonly string[] = [],
): Promise<NodeSandbox> {
  // Refused here with one line naming the field, before anything travels.
  const body = `{"options":${remoteOptionsJson(options)},"command":${JSON.stringify(command)}}`;
  const order = await placementOrder(remote.urls, async (url) => {
    const r = await nodeRequest<NodeInfo>(endpoint(remote, url), "GET", "/v1/info", undefined, {
      timeoutMs: 5000,
    });
    return r.json;
  });
  let lastError: unknown;
  for (const url of order) {
    try {
      const r = await nodeRequest<{ sandbox: SandboxView; token: string }>(
        endpoint(remote, url),
        "POST",
        "/v1/sandboxes",
        body,
        { timeoutMs: LIFECYCLE_TIMEOUT_MS },
      );
      const node = endpoint(remote, url);
      return new NodeSandbox(r.json.sandbox.id, () => Promise.resolve(node), r.json.token);
    } catch (err) {
      // Full or gone: the other choice may take it. Anything else is the caller's to see.
      if (!(err instanceof ErrCapacity) && !(err instanceof ErrVMNotRunning)) throw err;
      lastError = err;
    }
  }
  throw lastError;
}

export function connectRemote(id: string, remote: ResolvedRemote): NodeSandbox {
  if (!parseNodeSandboxId(id))
    throw new ErrInvalidConfig(`malformed sandbox id: ${JSON.stringify(id)}`);
  return new NodeSandbox(id, async () => endpoint(remote, await nodeUrlFor(remote, id)), undefined);
}

/** Every node's sandboxes (a node that does not answer is reported, not skipped silently). */
export async function listRemote(remote: ResolvedRemote): Promise<SandboxView[]> {
  const lists = await Promise.all(
    remote.urls.map(async (url) => {
      const r = await nodeRequest<{ sandboxes: SandboxView[] }>(
        endpoint(remote, url),
        "GET",
        "/v1/sandboxes",
      );
      return r.json.sandboxes;
    }),
  );
  return lists.flat().sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

/** One sandbox's view, from its node. */
export async function inspectRemote(id: string, remote: ResolvedRemote): Promise<SandboxView> {
  const url = await nodeUrlFor(remote, id);
  const r = await nodeRequest<SandboxView>(
    endpoint(remote, url),
    "GET",
    `/v1/sandboxes/${encodeURIComponent(id)}`,
  );
  return r.json;
}

/** Stops the sandbox on its node, which keeps its record and log (as a local `kill`). */
export async function stopRemote(id: string, remote: ResolvedRemote): Promise<void> {
  const url = await nodeUrlFor(remote, id);
  await nodeRequest(
    endpoint(remote, url),
    "POST",
    `/v1/sandboxes/${encodeURIComponent(id)}/stop`,
    undefined,
    { timeoutMs: LIFECYCLE_TIMEOUT_MS },
  );
}

/** Stops the sandbox and removes everything of it on its node. */
export async function removeRemote(id: string, remote: ResolvedRemote): Promise<void> {
  const url = await nodeUrlFor(remote, id);
  // Stopping waits for the guest's graceful shutdown, then QEMU's exit.
  await nodeRequest(
    endpoint(remote, url),
    "DELETE",
    `/v1/sandboxes/${encodeURIComponent(id)}`,
    undefined,
    { timeoutMs: LIFECYCLE_TIMEOUT_MS },
  );
}

/**
 * The next slice of the sandbox's log after `cursor` (none: from the start of what the node
 * keeps, older segment first) and the cursor to ask from next; an empty slice: nothing new yet.
 */
export async function readRemoteLog(
  id: string,
  remote: ResolvedRemote,
  cursor?: string,
): Promise<{ data: Buffer; cursor: string | undefined }> {
  const url = await nodeUrlFor(remote, id);
  const query = cursor === undefined ? "" : `?cursor=${encodeURIComponent(cursor)}`;
  const r = await nodeRequest(
    endpoint(remote, url),
    "GET",
    `/v1/sandboxes/${encodeURIComponent(id)}/log${query}`,
  );
  const next = r.headers["x-log-cursor"];
  return { data: r.bytes, cursor: typeof next === "string" ? next : cursor };
}
