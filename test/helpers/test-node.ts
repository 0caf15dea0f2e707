// A `serve` node in the test's own process, on loopback with an ephemeral port, in front of
// a given host (a FakeHost, usually), and its operator token.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  hostPathRoots,
  startNode,
  type NodeOptions,
  type RunningNode,
  type SandboxHost,
} from "../../src/serve/index.js";

export interface TestNodeOptions extends Partial<
  Omit<NodeOptions, "listen" | "version" | "tokenFile" | "hostPaths">
> {
  nodeId: string;
  /** Directories opened to callers (`serve --host-path`), resolved here. */
  hostPaths?: readonly string[];
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
  const { hostPaths, ...rest } = options;
  const running = await startNode(
    {
      maxSandboxes: 8,
      ...rest,
      listen: { host: "127.0.0.1", port: 0 },
      version: "test",
      tokenFile: join(dataDir, `${options.nodeId}.token`),
      ...(hostPaths ? { hostPaths: hostPathRoots(hostPaths) } : {}),
    },
    host,
  );
  const token = readFileSync(running.tokenPath, "utf8").trim();
  return { running, token, remote: { url: running.url, token } };
}
