// A `serve` node in the test's own process, on loopback with an ephemeral port, in front of
// a given host (a FakeHost, usually), and its operator token.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import {
  hostPathRoots,
  startNode,
  type NodeOptions,
  type RunningNode,
  type SandboxHost,
} from "../../src/serve/index.js";
import { FakeHost } from "./fake-host.js";

export interface TestNodeOptions extends Partial<
  Omit<NodeOptions, "listen" | "version" | "tokenFile" | "hostPaths" | "readOnlyHostPaths">
> {
  nodeId: string;
  /** Directories opened to callers (`serve --host-path`), resolved here. */
  hostPaths?: readonly string[];
  /** Directories opened read-only (`serve --host-path-ro`), resolved here. */
  readOnlyHostPaths?: readonly string[];
}

export interface TestNode {
  running: RunningNode;
  /** The operator token. */
  token: string;
  /** What `Sandbox.create({ remote })` takes to reach this node as its operator. */
  remote: { url: string; token: string };
}

/** Starts the node; its token file lies in `dataDir`, named after the node. */
export async function startTestNode(
  host: SandboxHost,
  dataDir: string,
  options: TestNodeOptions,
): Promise<TestNode> {
  const { hostPaths, readOnlyHostPaths, ...rest } = options;
  const running = await startNode(
    {
      maxSandboxes: 8,
      audit: () => undefined,
      ...rest,
      listen: { host: "127.0.0.1", port: 0 },
      version: "test",
      tokenFile: join(dataDir, `${options.nodeId}.token`),
      ...(hostPaths ? { hostPaths: hostPathRoots(hostPaths) } : {}),
      ...(readOnlyHostPaths ? { readOnlyHostPaths: hostPathRoots(readOnlyHostPaths) } : {}),
    },
    host,
  );
  const token = readFileSync(running.tokenPath, "utf8").trim();
  return { running, token, remote: { url: running.url, token } };
}

/** A node's data dir with a folder opened to callers and one that is not. */
export interface HostPathsFixture {
  dataDir: string;
  /** Meant for `hostPaths` (`serve --host-path`). */
  open: string;
  /** Meant for `readOnlyHostPaths` (`serve --host-path-ro`): where policy scripts go. */
  readOnly: string;
  /** Never opened: holds `other.mjs`, a policy script a swap would smuggle in. */
  secret: string;
}

/**
 * A fresh data dir (WHEELLOCK_DATA_DIR points at it) with `open/` and `secret/` folders beside
 * it (a host path inside the data dir is refused), all removed at exit, for tests that attack
 * a node's host-path checks.
 */
export function hostPathsFixture(prefix: string): HostPathsFixture {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const dataDir = join(root, "data");
  process.env.WHEELLOCK_DATA_DIR = dataDir;
  process.on("exit", () => rmSync(root, { recursive: true, force: true }));
  const open = join(root, "open");
  const secret = join(root, "secret");
  const readOnly = join(root, "ro");
  mkdirSync(dataDir);
  mkdirSync(readOnly);
  mkdirSync(open);
  mkdirSync(secret);
  writeFileSync(
    join(secret, "other.mjs"),
    'export default [{ action: "block", path: "/other" }];\n',
  );
  return { dataDir, open, readOnly, secret };
}

/** A test file's node over a FakeHost: set when the file's tests run. */
export interface FakeNodeFixture {
  readonly dataDir: string;
  host: FakeHost;
  node: TestNode;
}

/**
 * A data dir (WHEELLOCK_DATA_DIR points at it) and a node over a FakeHost in it, started
 * before the file's tests and closed, with the dir, after them.
 */
export function fakeNodeForFile(nodeId: string): FakeNodeFixture {
  const dataDir = mkdtempSync(join(tmpdir(), `wheellock-${nodeId}-`));
  process.env.WHEELLOCK_DATA_DIR = dataDir;
  const fixture = { dataDir } as FakeNodeFixture;
  before(async () => {
    fixture.host = new FakeHost(dataDir);
    fixture.node = await startTestNode(fixture.host, dataDir, { nodeId });
  });
  after(async () => {
    await fixture.node.running.close();
    await fixture.host.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return fixture;
}
