// Registry figures (issue 14), all against Debian's docker-registry on 127.0.0.1, same run:
//  - image push and pull throughput of a ~64 MB image (incompressible), with the floor of a
//    plain HTTP upload of the same blobs;
//  - snapshot push on node A and pull on node B (whole CLI processes), and on node B,
//    start-to-first-exec restoring the pulled snapshot vs a cold boot, interleaved.
// Nodes are separate cache/data dirs sharing only the guest assets (test/helpers/node-dirs.ts).
//   npm run bench:registry -- [--rounds N] [--only image|snapshot]   (docker-registry installed)
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ImageStore, pullImage, pushImage } from "../src/image/index.js";
import { prepareAssets } from "../src/setup/index.js";
import { freshNode, type NodeDirs } from "../test/helpers/node-dirs.js";
import { buildImage, busyboxEntries, layerTar } from "../test/helpers/oci-build.js";
import {
  pushBlob,
  pushImage as seedImage,
  startRegistry,
  type TestRegistry,
} from "../test/helpers/registry.js";

const run = promisify(execFile);
const MB = 1024 * 1024;
const round = (n: number): number => Math.round(n * 100) / 100;
const mbPerS = (bytes: number, ms: number): number => round(bytes / MB / (ms / 1000));

async function timedMs<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = process.hrtime.bigint();
  const r = await fn();
  return [Number(process.hrtime.bigint() - t) / 1e6, r];
}

function spread(samples: number[]): { min: number; p50: number; max: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (i: number): number => round(s[i] ?? NaN);
  return { min: at(0), p50: at(Math.floor(s.length / 2)), max: at(s.length - 1), n: s.length };
}

async function imageThroughput(
  log: (m: string) => void,
  src: TestRegistry,
  dst: TestRegistry,
): Promise<Record<string, unknown>> {
  log("image: ~64 MB of incompressible layers, pull from one registry, push to another");
  const dir = mkdtempSync(join(tmpdir(), "wl-bench-registry-"));
  try {
    const tars = [await layerTar(busyboxEntries())];
    for (let i = 0; i < 4; i++)
      tars.push(await layerTar([{ name: `data/big${i}`, content: randomBytes(16 * MB) }]));
    const img = buildImage(tars);
    await seedImage(src.host, "bench/img", "v1", img);
    const bytes = img.layers.reduce((n, l) => n + l.blob.length, img.config.length);
    const store = new ImageStore(join(dir, "store"));
    const [pullMs] = await timedMs(() => pullImage(`${src.host}/bench/img:v1`, { store }));
    const [pushMs, pushed] = await timedMs(() =>
      pushImage(`${src.host}/bench/img:v1`, `${dst.host}/bench/img:v1`, { store }),
    );
    if (pushed.uploadedBytes !== bytes)
      throw new Error(`push sent ${pushed.uploadedBytes} bytes of ${bytes}: not a cold push`);
    // The floor: the same blobs as one monolithic HTTP upload each, no reading from a store.
    const [floorMs] = await timedMs(async () => {
      for (const l of img.layers) await pushBlob(dst.host, "bench/floor", l.blob, l.digest);
    });
    return {
      imageMB: round(bytes / MB),
      pullMs: round(pullMs),
      pullMBps: mbPerS(bytes, pullMs),
      pushMs: round(pushMs),
      pushMBps: mbPerS(bytes, pushMs),
      httpUploadFloorMBps: mbPerS(bytes - img.config.length, floorMs),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function cli(node: NodeDirs, args: string[]): Promise<{ ms: number; stdout: string }> {
  const [ms, r] = await timedMs(() =>
    run(process.execPath, ["dist/cli/main.cjs", ...args], { env: node.env, timeout: 600_000 }),
  );
  return { ms, stdout: r.stdout };
}

/**
 * One sandbox start on `node` in its own process, with snapshots on or off; fails unless it
 * restored exactly when `restored` says (default: when snapshots are on).
 */
async function start(
  node: NodeDirs,
  snapshot: boolean,
  restored = snapshot,
): Promise<{ restored: boolean; startToFirstExecMs: number }> {
  const env = snapshot ? node.env : { ...node.env, WHEELLOCK_NO_SNAPSHOT: "1" };
  const r = await run(process.execPath, ["--import", "tsx", "test/helpers/snapshot-node.ts"], {
    env,
    timeout: 600_000,
  });
  const out = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as {
    restored: boolean;
    startToFirstExecMs: number;
    exitCode: number;
  };
  if (out.exitCode !== 0) throw new Error(`sandbox on ${node.dataDir}: exec failed`);
  if (out.restored !== restored)
    throw new Error(`expected ${restored ? "a restore" : "a cold boot"}, got the other`);
  return out;
}

async function snapshotTravel(
  log: (m: string) => void,
  reg: TestRegistry,
  rounds: number,
): Promise<Record<string, unknown>> {
  const a = freshNode();
  const b = freshNode();
  log("snapshot: node A cold-boots and saves a snapshot");
  await start(a, true, false); // the first start boots cold and saves a snapshot
  const key = /^([a-f0-9]{32})\s/m.exec((await cli(a, ["snapshot", "ls"])).stdout)?.[1];
  if (!key) throw new Error("node A saved no snapshot");
  const ref = `${reg.host}/bench/snapshots:default`;
  const pushed = await cli(a, ["snapshot", "push", key, ref]);
  const manifest = (await (
    await fetch(`http://${reg.host}/v2/bench/snapshots/manifests/default`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    })
  ).json()) as { layers: Array<{ size: number }> };
  const artifactBytes = manifest.layers.reduce((n, l) => n + l.size, 0);
  log("snapshot: node B pulls it, restores once, then restore vs cold boot interleaved");
  const pulled = await cli(b, ["snapshot", "pull", ref]);
  const firstRestore = await start(b, true);
  const restoreMs: number[] = [];
  const coldMs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    coldMs.push((await start(b, false)).startToFirstExecMs);
    restoreMs.push((await start(b, true)).startToFirstExecMs);
  }
  const restore = spread(restoreMs);
  const cold = spread(coldMs);
  return {
    artifactMB: round(artifactBytes / MB),
    pushCliMs: round(pushed.ms),
    pullCliMs: round(pulled.ms),
    firstRestoreAfterPullMs: firstRestore.startToFirstExecMs,
    restoreStartToFirstExecMs: restore,
    coldBootStartToFirstExecMs: cold,
    coldOverRestoreP50: round(cold.p50 / restore.p50),
    pullPlusRestoreVsColdP50Ms: [round(pulled.ms + restore.p50), cold.p50],
  };
}

export async function registryBench(
  log: (m: string) => void,
  rounds = 3,
  only?: "image" | "snapshot",
): Promise<Record<string, unknown>> {
  await prepareAssets();
  const src = await startRegistry();
  const dst = await startRegistry();
  try {
    return {
      ...(only !== "snapshot" ? { image: await imageThroughput(log, src, dst) } : {}),
      ...(only !== "image" ? { snapshot: await snapshotTravel(log, src, rounds) } : {}),
    };
  } finally {
    await src.stop();
    await dst.stop();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const only = arg("--only");
  if (only !== undefined && only !== "image" && only !== "snapshot")
    throw new Error("--only image|snapshot");
  const result = await registryBench(
    (m) => process.stderr.write(`${m}\n`),
    Number(arg("--rounds") ?? 3),
    only,
  );
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
