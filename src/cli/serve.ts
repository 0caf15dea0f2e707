/**
 * `wheellock serve`: this machine as a node serving sandboxes over HTTP(S) and WebSocket
 * (docs/REMOTE.md). Prints one JSON line on stdout once listening (`url`, `node`,
 * `tokenFile`, and `sandbox` with --single), human lines on stderr.
 */
import { Command } from "commander";
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { ErrInvalidConfig } from "../errors.js";
import {
  DEFAULT_LISTEN,
  hostPathRoots,
  parseListen,
  readSingleOptions,
  SingleHost,
  startNode,
  SupervisedHost,
  type SandboxHost,
} from "../serve/index.js";
import { positiveInteger } from "./flags.js";
import { packageVersion } from "./version.js";

interface ServeFlags {
  listen: string;
  tokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  insecure?: boolean;
  maxSandboxes: number;
  maxOperations: number;
  maxOperationsPerSandbox?: number;
  nodeId?: string;
  single?: boolean;
  plan?: string;
  hostPath: string[];
  hostPathRo: string[];
  allowVolumes?: boolean;
}

const DEFAULT_MAX_SANDBOXES = 32;
const STOP_ANSWER_GRACE_MS = 5000;
/**
 * Told to stop (SIGTERM, SIGINT: a restart, an upgrade), the node refuses new connections and
 * gives the operations running this long to finish before it cuts them; a second signal ends
 * it at once.
 */
const SIGNAL_DRAIN_MS = 10_000;

function readPem(path: string, flag: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new ErrInvalidConfig(
      `${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
}

/** The pair as Node will load it: a wrong file is named by its flag, not by OpenSSL's code. */
function checkedTlsPair(certPem: string, keyPem: string): { certPem: string; keyPem: string } {
  try {
    createSecureContext({ cert: certPem, key: keyPem });
  } catch (err) {
    const what = /key/i.test((err as Error).message)
      ? "--tls-key is not a PEM private key matching --tls-cert"
      : "--tls-cert and --tls-key are not a PEM certificate and its private key";
    throw new ErrInvalidConfig(`${what} (${(err as Error).message})`);
  }
  return { certPem, keyPem };
}

export function serveCommand(): Command {
  return new Command("serve")
    .option("--listen <host:port>", "address to listen on", DEFAULT_LISTEN)
    .option(
      "--token-file <file>",
      "operator token file (default: made under the data dir, mode 0600)",
    )
    .option("--tls-cert <file>", "PEM certificate chain: serve HTTPS/WSS")
    .option("--tls-key <file>", "PEM private key for --tls-cert")
    .option("--insecure", "allow plain HTTP on a non-loopback address")
    .option(
      "--max-sandboxes <n>",
      "sandboxes running at once",
      positiveInteger("--max-sandboxes"),
      DEFAULT_MAX_SANDBOXES,
    )
    .option(
      "--max-operations <n>",
      "data-plane operations (WebSockets) open at once",
      positiveInteger("--max-operations"),
      1024,
    )
    .option(
      "--max-operations-per-sandbox <n>",
      "operations one sandbox may run at once (default: max-operations / max-sandboxes, at least 8)",
      positiveInteger("--max-operations-per-sandbox"),
    )
    .option("--node-id <name>", "this node's name in sandbox ids (default: generated, kept)")
    .option("--single", "run one sandbox from a plan (stdin or --plan) and exit when it stops")
    .option("--plan <file>", "with --single: the plan file ({ options } JSON; - is stdin)")
    .option(
      "--host-path <dir>",
      "a node directory callers may name in mounts, disks and policy scripts (repeatable; " +
        "default none: the operator token opens no host file)",
      (dir: string, dirs: string[]) => [...dirs, dir],
      [] as string[],
    )
    .option(
      "--host-path-ro <dir>",
      "a node directory callers may name but not write: read-only mounts and disks, and the " +
        "only place a policy script is taken from (repeatable)",
      (dir: string, dirs: string[]) => [...dirs, dir],
      [] as string[],
    )
    .option(
      "--allow-volumes",
      "let callers attach this node's named volumes (disks[].volume; default: refused)",
    )
    .action(async (flags: ServeFlags) => {
      process.exitCode = await serve(flags);
    });
}

async function serve(flags: ServeFlags): Promise<number> {
  const listen = parseListen(flags.listen);
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined))
    throw new ErrInvalidConfig("--tls-cert and --tls-key go together");
  if (flags.plan !== undefined && !flags.single)
    throw new ErrInvalidConfig("--plan needs --single");
  const hostPaths = hostPathRoots(flags.hostPath);
  const readOnlyHostPaths = hostPathRoots(flags.hostPathRo, "--host-path-ro");
  const tls =
    flags.tlsCert !== undefined && flags.tlsKey !== undefined
      ? checkedTlsPair(readPem(flags.tlsCert, "--tls-cert"), readPem(flags.tlsKey, "--tls-key"))
      : undefined;
  const single = flags.single
    ? await SingleHost.start(
        await readSingleOptions(
          flags.plan,
          [...hostPaths, ...readOnlyHostPaths],
          flags.allowVolumes === true,
          hostPaths,
        ),
      )
    : undefined;
  const host: SandboxHost = single ?? new SupervisedHost(flags.maxSandboxes);
  let node;
  try {
    node = await startNode(
      {
        listen,
        ...(tls ? { tls } : {}),
        insecure: flags.insecure === true,
        ...(flags.tokenFile !== undefined ? { tokenFile: flags.tokenFile } : {}),
        ...(flags.nodeId !== undefined ? { nodeId: flags.nodeId } : {}),
        version: packageVersion(),
        maxSandboxes: single ? 1 : flags.maxSandboxes,
        maxOperations: flags.maxOperations,
        ...(flags.maxOperationsPerSandbox !== undefined
          ? { maxOperationsPerSandbox: flags.maxOperationsPerSandbox }
          : {}),
        single: single !== undefined,
        hostPaths,
        readOnlyHostPaths,
        allowVolumes: flags.allowVolumes === true,
      },
      host,
    );
  } catch (err) {
    await single?.close();
    throw err;
  }
  const sandbox = single ? `${single.id}@${node.nodeId}` : undefined;
  process.stderr.write(
    `wheellock serve: node ${node.nodeId} listening on ${node.url}\n` +
      `  operator token: ${node.tokenPath}${node.tokenCreated ? " (new)" : ""}\n` +
      (sandbox ? `  serving sandbox ${sandbox} until it stops\n` : ""),
  );
  process.stdout.write(
    `${JSON.stringify({ url: node.url, node: node.nodeId, tokenFile: node.tokenPath, ...(sandbox ? { sandbox } : {}) })}\n`,
  );
  const stopped = new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("signal"));
    process.once("SIGTERM", () => resolve("signal"));
    void single?.ended.then(() => resolve("sandbox"));
  });
  // A sandbox that ended through `stop`: that operation's answer is still to be sent.
  await node.close((await stopped) === "sandbox" ? STOP_ANSWER_GRACE_MS : SIGNAL_DRAIN_MS);
  await host.close();
  return 0;
}
