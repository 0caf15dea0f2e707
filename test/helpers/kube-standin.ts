// Stand-ins for the parts of a cluster the SDK's Kubernetes backend talks to, on 127.0.0.1:
//  - the API server's SandboxClaim paths (create, get, watch, delete), with a bearer token,
//    every claim checked against the agent-sandbox CRD schema, and a "controller" that binds a
//    claim to one of the warm pool's sandboxes and marks it Ready;
//  - the agent-sandbox router: it finds the sandbox by `X-Sandbox-ID` (and checks
//    `X-Sandbox-Namespace` and `X-Sandbox-Port`), then proxies HTTP and WebSocket upgrades to
//    that sandbox's `serve`, as the real router proxies to the sandbox's Service.
// Every request is recorded, so tests can check which paths and headers were used.
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { errorsOf, validators } from "./agent-sandbox-crds.js";

const GROUP_PATH = "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/";

export interface PoolSandbox {
  /** The agent-sandbox Sandbox name (what `X-Sandbox-ID` carries). */
  name: string;
  /** Where its `serve` listens (`http://127.0.0.1:PORT`). */
  url: string;
}

interface Claim {
  object: Record<string, unknown> & {
    metadata: Record<string, unknown> & { name: string; resourceVersion: string };
    status?: Record<string, unknown>;
  };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function status(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: "Status", apiVersion: "v1", status: "Failure", code, reason, message };
}

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

export class KubeStandIn {
  readonly token = randomBytes(16).toString("hex");
  readonly requests: string[] = [];
  readonly claims = new Map<string, Claim>();
  readonly deleted: string[] = [];
  /** Sandboxes of the warm pool not claimed yet. */
  readonly free: PoolSandbox[] = [];
  /** How long the "controller" takes to bind a claim; < 0: only when `bindPending()` is called. */
  readyDelayMs = 50;
  /** A watch ends after this long, as API servers end them (their timeout). */
  watchLifetimeMs = 60_000;
  private version = 1;
  private readonly watchers = new Set<{ name: string; res: ServerResponse }>();
  private server: Server | undefined;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.url = await listen(this.server);
  }

  /** A kubeconfig for this stand-in (with another token, to be refused), written to `path`. */
  writeKubeconfig(path: string, token = this.token, namespace = "wheellock"): void {
    const doc = {
      apiVersion: "v1",
      kind: "Config",
      // Plain HTTP on loopback: client-node insists on this flag for an http:// server.
      clusters: [
        { name: "standin", cluster: { server: this.url, "insecure-skip-tls-verify": true } },
      ],
      users: [{ name: "sdk", user: { token } }],
      contexts: [{ name: "standin", context: { cluster: "standin", user: "sdk", namespace } }],
      "current-context": "standin",
    };
    writeFileSync(path, JSON.stringify(doc));
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.res.end();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }

  private bump(claim: Claim): void {
    claim.object.metadata.resourceVersion = String(++this.version);
    for (const w of this.watchers)
      if (w.name === claim.object.metadata.name)
        w.res.write(`${JSON.stringify({ type: "MODIFIED", object: claim.object })}\n`);
  }

  /** Binds every claim not bound yet to a free sandbox and marks it Ready. */
  bindPending(): void {
    for (const claim of this.claims.values()) {
      if (claim.object.status) continue;
      const sandbox = this.free.shift();
      if (!sandbox) return;
      const namespace = String(claim.object.metadata.namespace);
      claim.object.status = {
        sandbox: { name: sandbox.name, podIPs: ["127.0.0.1"] },
        conditions: [
          {
            type: "Ready",
            status: "True",
            reason: "SandboxReady",
            message: `bound to ${namespace}/${sandbox.name}`,
            lastTransitionTime: new Date().toISOString(),
          },
        ],
      };
      this.bump(claim);
    }
  }

  /** Watch requests made so far. */
  watches(): number {
    return this.requests.filter((r) => r.includes("watch=true")).length;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (req.headers.authorization !== `Bearer ${this.token}`)
      return send(res, 401, status(401, "Unauthorized", "Unauthorized"));
    const m = new RegExp(`^${GROUP_PATH}([a-z0-9-]+)/sandboxclaims(?:/([a-z0-9.-]+))?$`).exec(
      url.pathname,
    );
    if (!m) return send(res, 404, status(404, "NotFound", `no route ${url.pathname}`));
    const [, namespace, name] = m as unknown as [string, string, string | undefined];
    if (req.method === "POST" && name === undefined) {
      const obj = (await body(req)) as Claim["object"];
      const v = validators.get("extensions.agents.x-k8s.io/v1beta1/SandboxClaim");
      if (v && !v(obj))
        return send(res, 422, status(422, "Invalid", `SandboxClaim is invalid: ${errorsOf(v)}`));
      const meta = obj.metadata as { generateName?: string; name?: string };
      const claimName = meta.name ?? `${meta.generateName ?? ""}${randomBytes(3).toString("hex")}`;
      obj.metadata = { ...obj.metadata, name: claimName, namespace, resourceVersion: "" };
      const claim: Claim = { object: obj };
      claim.object.metadata.resourceVersion = String(++this.version);
      this.claims.set(claimName, claim);
      if (this.readyDelayMs >= 0) setTimeout(() => this.bindPending(), this.readyDelayMs);
      return send(res, 201, claim.object);
    }
    if (req.method === "GET" && name === undefined && url.searchParams.get("watch") === "true") {
      const field = /^metadata\.name=(.+)$/.exec(url.searchParams.get("fieldSelector") ?? "");
      if (!field) return send(res, 400, status(400, "BadRequest", "a fieldSelector is expected"));
      res.writeHead(200, { "content-type": "application/json" });
      const watcher = { name: field[1] as string, res };
      this.watchers.add(watcher);
      res.once("close", () => this.watchers.delete(watcher));
      const ending = setTimeout(() => res.end(), this.watchLifetimeMs);
      res.once("close", () => clearTimeout(ending));
      // What changed after the version the client has.
      const since = Number(url.searchParams.get("resourceVersion") ?? "0");
      const claim = this.claims.get(watcher.name);
      if (claim && Number(claim.object.metadata.resourceVersion) > since)
        res.write(`${JSON.stringify({ type: "MODIFIED", object: claim.object })}\n`);
      return;
    }
    const claim = name !== undefined ? this.claims.get(name) : undefined;
    if (!claim) return send(res, 404, status(404, "NotFound", `sandboxclaims "${name}" not found`));
    if (req.method === "GET") return send(res, 200, claim.object);
    if (req.method === "DELETE") {
      this.claims.delete(name as string);
      this.deleted.push(name as string);
      return send(res, 200, { kind: "Status", apiVersion: "v1", status: "Success" });
    }
    return send(res, 405, status(405, "MethodNotAllowed", `${req.method}`));
  }
}

/** The router: `X-Sandbox-ID` names a sandbox of `sandboxes`; headers are recorded. */
export class RouterStandIn {
  readonly seen: Array<Record<string, string | undefined>> = [];
  private server: Server | undefined;
  /** Upgraded connections: the HTTP server no longer tracks them. */
  private readonly tunnels = new Set<Socket>();
  url = "";

  constructor(
    private readonly sandboxes: () => PoolSandbox[],
    private readonly namespace = "wheellock",
    private readonly port = "7777",
  ) {}

  private target(req: IncomingMessage): URL | string {
    const h = (name: string): string | undefined => req.headers[name] as string | undefined;
    this.seen.push({
      id: h("x-sandbox-id"),
      namespace: h("x-sandbox-namespace"),
      port: h("x-sandbox-port"),
    });
    const found = this.sandboxes().find((s) => s.name === h("x-sandbox-id"));
    if (!found) return "X-Sandbox-ID names no sandbox";
    if (h("x-sandbox-namespace") !== this.namespace) return "wrong X-Sandbox-Namespace";
    if (h("x-sandbox-port") !== this.port) return "wrong X-Sandbox-Port";
    return new URL(found.url);
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const target = this.target(req);
      if (typeof target === "string") return send(res, 400, { detail: target });
      const upstream = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          path: req.url,
          method: req.method,
          headers: req.headers,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.once("error", () => send(res, 502, { detail: "sandbox unreachable" }));
      req.pipe(upstream);
    });
    // WebSocket: forward the upgrade request as it came, then splice the two sockets.
    server.on("upgrade", (req: IncomingMessage, socket, head: Buffer) => {
      const target = this.target(req);
      if (typeof target === "string") {
        socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n`);
        return;
      }
      const up = connect(Number(target.port), target.hostname, () => {
        this.tunnels.add(up);
        up.once("close", () => this.tunnels.delete(up));
        const lines = [`${req.method} ${req.url} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2)
          lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        up.write(`${lines.join("\r\n")}\r\n\r\n`);
        up.write(head);
        up.pipe(socket);
        socket.pipe(up);
      });
      up.once("error", () => socket.destroy());
      socket.once("error", () => up.destroy());
    });
    this.server = server;
    this.url = await listen(server);
  }

  async close(): Promise<void> {
    for (const t of this.tunnels) t.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }
}
