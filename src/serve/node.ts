/**
 * A node: the HTTP(S) server with the REST routes and the WebSocket data plane in front of a
 * sandbox host (supervisors, or one in-process sandbox with `--single`).
 */
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { ResourceStack } from "../util/index.js";
import { CONNECTION_WAIT_MS, guardConnections } from "./connection-guard.js";
import { DataPlane } from "./data-plane.js";
import type { SandboxHost } from "./host.js";
import { HttpError, refuseOnSocket } from "./http-json.js";
import { checkTransportSecurity, type ListenAddress } from "./listen.js";
import { loadCredentials, nodeId as resolveNodeId } from "./node-identity.js";
import { routes } from "./routes.js";

export interface NodeOptions {
  listen: ListenAddress;
  /** PEM certificate chain and key: HTTPS and WSS. */
  tls?: { certPem: string; keyPem: string };
  /** Allow plain HTTP off loopback. */
  insecure?: boolean;
  /** Operator token file (default `<data dir>/serve/operator-token`, made when missing). */
  tokenFile?: string;
  nodeId?: string;
  version: string;
  maxSandboxes: number;
  /** Data-plane operations (WebSockets) open at once. Default 1024. */
  maxOperations?: number;
  /**
   * Operations one sandbox may run at once. Default: its share, maxOperations / maxSandboxes
   * (at least 8), so every sandbox the node may hold can always get its share.
   */
  maxOperationsPerSandbox?: number;
  /** Largest REST request body. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Largest WebSocket frame. Default: one protocol message. */
  maxFrameBytes?: number;
  /**
   * Connections that have not sent a complete request (none yet, or none since the last
   * response): how long one may wait (default 10 s), how many may wait at once (default 256,
   * their own share of the connection cap) and from one peer address (default 32).
   */
  connectionWaitMs?: number;
  maxWaitingConnections?: number;
  maxWaitingConnectionsPerPeer?: number;
  /** How long a data-plane connection may wait for its request (a spare). Default 60 s. */
  requestWaitMs?: number;
  single?: boolean;
  /**
   * Node directories network callers may name in host paths (mounts, disks, policy scripts,
   * kernel, CAs), resolved (`hostPathRoots`). Default none.
   */
  hostPaths?: readonly string[];
  /**
   * Node directories callers may name but never write (serve --host-path-ro), resolved: their
   * mounts and disks must be read-only (or overlays); the only roots a policy script is taken
   * from. Default none.
   */
  readOnlyHostPaths?: readonly string[];
  /** Whether network callers may attach the node's named volumes (serve --allow-volumes). */
  allowVolumes?: boolean;
  warn?: (message: string) => void;
  /**
   * One line per change a caller made to a sandbox (created, stopped, removed, configured),
   * the node's audit trail. Default: stderr, with the time.
   */
  audit?: (line: string) => void;
}

export interface RunningNode {
  /** `http://host:port` or `https://...`, with the port actually bound. */
  url: string;
  nodeId: string;
  tokenPath: string;
  tokenCreated: boolean;
  host: SandboxHost;
  /**
   * Stops listening and closes every connection (sandboxes of supervisors keep running),
   * first letting open operations finish for up to `graceMs` (the answer to the `stop` that
   * ended a `--single` sandbox is still on its way).
   */
  close(graceMs?: number): Promise<void>;
}

/** TCP connections beyond the open operations: REST calls and handshakes in progress. */
const CONNECTION_HEADROOM = 64;
const DEFAULT_MAX_WAITING = 256;
const DEFAULT_MAX_WAITING_PER_PEER = 32;

export async function startNode(opts: NodeOptions, host: SandboxHost): Promise<RunningNode> {
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`wheellock: ${m}\n`));
  const audit =
    opts.audit ?? ((line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`));
  checkTransportSecurity(opts.listen, opts.tls !== undefined, opts.insecure === true, warn);
  const id = resolveNodeId(opts.nodeId);
  const { credentials, tokenPath, tokenCreated } = loadCredentials(opts.tokenFile, warn);
  const maxOperations = opts.maxOperations ?? 1024;
  const writable = opts.hostPaths ?? [];
  const roots = [...writable, ...(opts.readOnlyHostPaths ?? [])];
  const handler = routes({
    host,
    credentials,
    nodeId: id,
    version: opts.version,
    maxSandboxes: opts.maxSandboxes,
    maxBodyBytes: opts.maxBodyBytes ?? 1024 * 1024,
    single: opts.single === true,
    hostPaths: roots,
    writableHostPaths: writable,
    allowVolumes: opts.allowVolumes === true,
    audit,
  });
  const server: Server = opts.tls
    ? createHttpsServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, handler)
    : createHttpServer(handler);
  // Bounded: a flood of idle connections cannot exhaust the node's sockets or memory, and
  // connections that sent no request have their own share of the cap, each for a short wait
  // (connection-guard.ts): without a token, none can keep the operator's calls out.
  const waitMs = opts.connectionWaitMs ?? CONNECTION_WAIT_MS;
  const maxWaiting = opts.maxWaitingConnections ?? DEFAULT_MAX_WAITING;
  guardConnections(server, {
    waitMs,
    maxWaiting,
    maxWaitingPerPeer: opts.maxWaitingConnectionsPerPeer ?? DEFAULT_MAX_WAITING_PER_PEER,
  });
  server.maxConnections = maxOperations + CONNECTION_HEADROOM + maxWaiting;
  server.headersTimeout = waitMs;
  server.requestTimeout = 60_000;
  server.maxHeadersCount = 64;
  // What Node's parser refuses (a malformed request line, headers too large, too slow) is
  // answered as every other error: one JSON line, then the connection closes.
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === "ECONNRESET" || !socket.writable) return void socket.destroy();
    const status =
      err.code === "HPE_HEADER_OVERFLOW"
        ? 431
        : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? 408
          : 400;
    refuseOnSocket(
      socket,
      new HttpError(
        status,
        "ErrInvalidConfig",
        `malformed or incomplete HTTP request (${err.code ?? "error"})`,
      ),
    );
  });
  const dataPlane = new DataPlane({
    host,
    credentials,
    nodeId: id,
    audit,
    maxOperations,
    maxOperationsPerSandbox:
      opts.maxOperationsPerSandbox ??
      Math.min(maxOperations, Math.max(8, Math.floor(maxOperations / opts.maxSandboxes))),
    hostPaths: roots,
    writableHostPaths: writable,
    ...(opts.maxFrameBytes !== undefined ? { maxFrameBytes: opts.maxFrameBytes } : {}),
    ...(opts.requestWaitMs !== undefined ? { requestWaitMs: opts.requestWaitMs } : {}),
  });
  dataPlane.attach(server);
  const resources = new ResourceStack((err) => warn(err.message));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: opts.listen.host, port: opts.listen.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  resources.defer("listener", () => new Promise<void>((resolve) => server.close(() => resolve())));
  resources.defer("connections", () => {
    dataPlane.close();
    server.closeAllConnections();
  });
  const bound = server.address() as AddressInfo;
  const hostText = bound.family === "IPv6" ? `[${bound.address}]` : bound.address;
  return {
    url: `${opts.tls ? "https" : "http"}://${hostText}:${bound.port}`,
    nodeId: id,
    tokenPath,
    tokenCreated,
    host,
    close: async (graceMs = 0) => {
      server.close();
      await dataPlane.drained(graceMs);
      await resources.release();
    },
  };
}
