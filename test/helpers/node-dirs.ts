import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cacheDir } from "../../src/paths.js";

/** One simulated node: its own cache dir (snapshots, image store) and data dir. */
export interface NodeDirs {
  cacheDir: string;
  dataDir: string;
  /** process.env for a wheellock process of this node. */
  env: NodeJS.ProcessEnv;
}

/** What every node of a cluster shares, as the runtime image ships it: kernel, agent, image. */
const GUEST_ASSETS = ["kernel", "kernel-min", "agent", "initramfs", "templates", "images/default"];

/**
 * A fresh node for tests: the machine's prepared guest assets (hard links, so no copying: the
 * same bytes a runtime image would ship to every node), an empty snapshot store and an empty
 * image store. Run `wheellock setup` (or one sandbox) first so the assets exist.
 */
export function freshNode(prefix = "wheellock-test-node-"): NodeDirs {
  const root = mkdtempSync(join(tmpdir(), prefix));
  process.on("exit", () => rmSync(root, { recursive: true, force: true }));
  const cache = join(root, "cache");
  const data = join(root, "data");
  mkdirSync(join(cache, "images"), { recursive: true, mode: 0o700 });
  mkdirSync(data, { mode: 0o700 });
  const shared = cacheDir();
  for (const asset of GUEST_ASSETS) {
    const from = join(shared, asset);
    if (!existsSync(from)) continue;
    execFileSync("cp", ["-a", "--link", from, join(cache, asset)]);
  }
  return {
    cacheDir: cache,
    dataDir: data,
    env: { ...process.env, WHEELLOCK_CACHE_DIR: cache, WHEELLOCK_DATA_DIR: data },
  };
}
