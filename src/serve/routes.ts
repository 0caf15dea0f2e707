/**
 * The REST API (JSON): lifecycle with the operator token, a sandbox's own view with its token.
 *   GET    /healthz                    no token; `{"ok":true}` (liveness and readiness probes)
 *   GET    /v1/info                    node id, version, accelerator, free vCPUs and memory, ...
 *   GET    /v1/sandboxes               every sandbox of this node
 *   POST   /v1/sandboxes               `{ options, command? }` -> `{ sandbox, token }`
 *   GET    /v1/sandboxes/{id}          one sandbox (`?wait=running` waits up to 60 s)
 *   GET    /v1/sandboxes/{id}/log      its log after `?cursor=C` (`x-log-cursor`: where it ended)
 *   POST   /v1/sandboxes/{id}/stop     stop it; its record and log stay until DELETE
 *   DELETE /v1/sandboxes/{id}          stop it and remove everything of it
 */
import { tokenAccepted } from "./connection-guard.js";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { SandboxOptions } from "../config/index.js";
import { ErrAuth, ErrVMNotFound } from "../errors.js";
import { nodeSandboxId, parseNodeSandboxId } from "../util/index.js";
import { bearerToken, type NodeCredentials } from "./auth.js";
import type { SandboxUsage } from "../observe/index.js";
import type { HostedSandbox, SandboxHost } from "./host.js";
import {
  decodePathSegment,
  HttpError,
  readJsonBody,
  requestUrl,
  sendError,
  sendJson,
} from "./http-json.js";
import { formatLogCursor, LOG_START, parseLogCursor } from "./log-slice.js";
import { nodeInfo } from "./node-info.js";
import { createRequest, nodeOptions } from "./create-options.js";

export interface RoutesOptions {
  host: SandboxHost;
  credentials: NodeCredentials;
  nodeId: string;
  version: string;
  maxSandboxes: number;
  maxBodyBytes: number;
  single: boolean;
  /** Node directories callers may name in host paths (serve --host-path); none by default. */
  hostPaths: readonly string[];
  /** Of those, the ones callers may write (not --host-path-ro); default all. */
  writableHostPaths?: readonly string[];
  /** Whether callers may attach named volumes (serve --allow-volumes); off by default. */
  allowVolumes?: boolean;
  /** The node's audit trail: one line per change to a sandbox. */
  audit: (line: string) => void;
}

/** A sandbox as the API shows it: the full id (`vm-...@node`) and what its record holds. */
export interface SandboxView extends Omit<HostedSandbox, "vcpus" | "memoryMb"> {
  node: string;
  /**
   * `GET /v1/sandboxes/{id}` only (not the list): what `inspect` shows; absent while the
   * sandbox starts or when it did not answer in time.
   */
  usage?: SandboxUsage;
}

const WAIT_LIMIT_MS = 60_000;
/** How long one sandbox's view waits for its live usage before going without it. */
const USAGE_TIMEOUT_MS = 3000;
/** A log is read in slices of at most this (`log -f` asks again from where it got to). */
const LOG_SLICE_BYTES = 1024 * 1024;

export function sandboxView(s: HostedSandbox, nodeId: string): SandboxView {
  const { vcpus: _vcpus, memoryMb: _memoryMb, ...rest } = s;
  return { ...rest, id: nodeSandboxId(s.id, nodeId), node: nodeId };
}

export function routes(opts: RoutesOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const view = (s: HostedSandbox): SandboxView => sandboxView(s, opts.nodeId);
  const operator = (req: IncomingMessage): void => {
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) throw new HttpError(401, "ErrAuth", "a bearer token is required");
    if (!opts.credentials.isOperator(token))
      throw new ErrAuth("this call needs the node's operator token");
    tokenAccepted(req);
  };
  /** The sandbox named in the path, for the operator or the sandbox's own token. */
  const sandboxFor = (req: IncomingMessage, text: string, operatorOnly: boolean): HostedSandbox => {
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) throw new HttpError(401, "ErrAuth", "a bearer token is required");
    const isOperator = opts.credentials.isOperator(token);
    if (operatorOnly && !isOperator) throw new ErrAuth("this call needs the node's operator token");
    const denied = new ErrAuth("this token does not open that sandbox");
    const parsed = parseNodeSandboxId(text);
    if (!parsed)
      throw isOperator ? new HttpError(400, "ErrInvalidConfig", "malformed sandbox id") : denied;
    const found =
      parsed.nodeId === undefined || parsed.nodeId === opts.nodeId
        ? opts.host.find(parsed.localId)
        : undefined;
    if (!found) throw isOperator ? new ErrVMNotFound(text) : denied;
    if (!isOperator && !opts.credentials.opens(token, found.id, found.createdAt)) throw denied;
    tokenAccepted(req);
    return found;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = requestUrl(req);
    const path = url.pathname;
    const method = req.method ?? "GET";
    // No token: probes. The node id is no secret (every sandbox id names it).
    if (path === "/healthz" && method === "GET")
      return sendJson(res, 200, { ok: true, node: opts.nodeId });
    if (path === "/v1/info" && method === "GET") {
      operator(req);
      return sendJson(
        res,
        200,
        nodeInfo(opts.host, {
          id: opts.nodeId,
          version: opts.version,
          maxSandboxes: opts.maxSandboxes,
          single: opts.single,
        }),
      );
    }
    if (path === "/v1/sandboxes") {
      operator(req);
      if (method === "GET") return sendJson(res, 200, { sandboxes: opts.host.list().map(view) });
      if (method === "POST") {
        const doc = createRequest(await readJsonBody(req, opts.maxBodyBytes));
        const options = nodeOptions(
          doc.options === undefined ? {} : doc.options,
          opts.hostPaths,
          opts.allowVolumes === true,
          opts.writableHostPaths,
        );
        const created = await opts.host.create(options as SandboxOptions, doc.command ?? []);
        opts.audit(`created ${nodeSandboxId(created.id, opts.nodeId)} (REST, operator)`);
        return sendJson(res, 201, {
          sandbox: view(created),
          token: opts.credentials.sandboxToken(created.id, created.createdAt),
        });
      }
      throw new HttpError(405, "ErrInvalidConfig", `${method} is not allowed here`);
    }
    const log = /^\/v1\/sandboxes\/([^/]+)\/log$/.exec(path);
    if (log && method === "GET") {
      const found = sandboxFor(req, decodePathSegment(log[1]), false);
      const given = url.searchParams.get("cursor");
      const cursor = given === null ? LOG_START : parseLogCursor(given);
      if (cursor === undefined)
        throw new HttpError(400, "ErrInvalidConfig", "cursor must be an x-log-cursor value");
      const slice = opts.host.readLog(found.id, cursor, LOG_SLICE_BYTES);
      res.writeHead(200, {
        "content-type": "application/octet-stream",
        "content-length": slice.data.length,
        "x-log-cursor": formatLogCursor(slice.cursor),
      });
      res.end(slice.data);
      return;
    }
    const stop = /^\/v1\/sandboxes\/([^/]+)\/stop$/.exec(path);
    if (stop && method === "POST") {
      const found = sandboxFor(req, decodePathSegment(stop[1]), true);
      await opts.host.stop(found.id);
      opts.audit(`stopped ${nodeSandboxId(found.id, opts.nodeId)} (REST, operator)`);
      return sendJson(res, 200, { stopped: nodeSandboxId(found.id, opts.nodeId) });
    }
    const one = /^\/v1\/sandboxes\/([^/]+)$/.exec(path);
    if (one) {
      const id = decodePathSegment(one[1]);
      if (method === "GET") {
        let found = sandboxFor(req, id, false);
        if (url.searchParams.get("wait") === "running") found = await waitRunning(opts.host, found);
        const usage = await opts.host.usage(found.id, USAGE_TIMEOUT_MS);
        return sendJson(res, 200, { ...view(found), ...(usage ? { usage } : {}) });
      }
      if (method === "DELETE") {
        const found = sandboxFor(req, id, true);
        await opts.host.remove(found.id);
        opts.audit(`removed ${nodeSandboxId(found.id, opts.nodeId)} (REST, operator)`);
        return sendJson(res, 200, { removed: nodeSandboxId(found.id, opts.nodeId) });
      }
      throw new HttpError(405, "ErrInvalidConfig", `${method} is not allowed here`);
    }
    throw new HttpError(404, "ErrNotFound", `no such endpoint: ${method} ${path}`);
  };

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, err);
      else res.destroy();
    });
  };
}

/** Polls until the sandbox runs, has ended, or the wait limit passes. */
async function waitRunning(host: SandboxHost, start: HostedSandbox): Promise<HostedSandbox> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  let current = start;
  while (current.status === "starting" && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    current = host.find(current.id) ?? current;
  }
  return current;
}
