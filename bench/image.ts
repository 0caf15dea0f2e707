// Image figures for `npm run bench`: pull-and-unpack throughput of a ~100 MB image from a
// registry on 127.0.0.1, with same-run baselines (plain HTTP download of the same blobs; GNU tar
// + mkfs.ext4 of the same layers), and the first vs the cached second start of that image.
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildExt4FromDir } from "../src/image/ext4.js";
import { ImageStore, pullImage } from "../src/image/index.js";
import { Sandbox } from "../src/index.js";
import { buildImage, busyboxEntries, layerTar, type EntrySpec } from "../test/helpers/oci-build.js";
import { pushImage, startRegistry } from "../test/helpers/registry.js";

const MB = 1024 * 1024;
const round = (n: number): number => Math.round(n * 100) / 100;

async function timedMs<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = process.hrtime.bigint();
  const r = await fn();
  return [Number(process.hrtime.bigint() - t) / 1e6, r];
}

/** A layer of ~`mb` MB: half in a few big incompressible files, half in many 16 KB files. */
async function layer(index: number, mb: number): Promise<Buffer> {
  const entries: EntrySpec[] = [];
  for (let i = 0; i < 4; i++)
    entries.push({ name: `data${index}/big${i}`, content: randomBytes((mb * MB) / 8) });
  for (let i = 0; i < (mb * MB) / 2 / 16384; i++)
    entries.push({ name: `data${index}/small/${i % 50}/f${i}`, content: randomBytes(16384) });
  return layerTar(entries);
}

export async function imageBench(log: (m: string) => void): Promise<Record<string, unknown>> {
  log("image: building a ~100 MB, 5-layer image and a local registry");
  const reg = await startRegistry();
  const dir = mkdtempSync(join(tmpdir(), "wl-bench-image-"));
  try {
    const tars = [await layerTar(busyboxEntries())];
    for (let i = 0; i < 4; i++) tars.push(await layer(i, 25));
    const img = buildImage(tars);
    await pushImage(reg.host, "bench/big", "v1", img);
    const ref = `${reg.host}/bench/big:v1`;
    const compressed = img.layers.reduce((n, l) => n + l.blob.length, 0);
    const uncompressed = tars.reduce((n, t) => n + t.length, 0);

    log("image: baselines (HTTP download of the blobs; GNU tar + mkfs.ext4 of the same layers)");
    const [downloadMs] = await timedMs(() =>
      Promise.all(
        img.layers.map(async (l) => {
          const res = await fetch(`http://${reg.host}/v2/bench/big/blobs/${l.digest}`);
          await res.arrayBuffer();
        }),
      ),
    );
    // What a shell script would do with the same layers (GNU tar, then mkfs.ext4 -d), no
    // whiteout handling or safety checks: the disk-bound floor for unpacking.
    const tarDir = join(dir, "gnutar");
    mkdirSync(tarDir);
    for (const [i, l] of img.layers.entries()) writeFileSync(join(dir, `l${i}.tgz`), l.blob);
    const [tarMs] = await timedMs(async () => {
      for (let i = 0; i < img.layers.length; i++)
        execFileSync("tar", ["-xzf", join(dir, `l${i}.tgz`), "-C", tarDir]);
      await buildExt4FromDir(tarDir, join(dir, "gnutar.ext4"));
    });

    log("image: pull into an empty store (download + verify + unpack + ext4)");
    const [pullMs] = await timedMs(() => pullImage(ref, { store: new ImageStore(join(dir, "s")) }));
    log("image: unpack only (blobs already stored)");
    const store = new ImageStore(join(dir, "s"));
    rmSync(join(dir, "s", "rootfs"), { recursive: true, force: true });
    rmSync(join(dir, "s", "refs"), { recursive: true, force: true });
    const [unpackMs] = await timedMs(() => pullImage(ref, { store }));

    log("image: first start (pull on first use) vs cached second start");
    const shared = new ImageStore();
    await shared.remove(`${ref}`);
    const start = async (): Promise<number> => {
      const [ms, sb] = await timedMs(async () => {
        const s = await Sandbox.create({ image: ref });
        await s.exec(["/bin/busybox", "true"]);
        return s;
      });
      await sb.close();
      return ms;
    };
    const firstMs = await start();
    const secondMs = await start();
    await shared.remove(ref);
    const pullMBps = compressed / MB / (pullMs / 1000);
    const downloadMBps = compressed / MB / (downloadMs / 1000);
    return {
      imageCompressedMB: round(compressed / MB),
      imageUncompressedMB: round(uncompressed / MB),
      pullAndUnpackMs: round(pullMs),
      pullAndUnpackMBps: round(pullMBps),
      baselineHttpDownloadMBps: round(downloadMBps),
      ratioPullVsDownload: round(pullMBps / downloadMBps),
      unpackOnlyMs: round(unpackMs),
      unpackOnlyMBps: round(uncompressed / MB / (unpackMs / 1000)),
      baselineGnuTarPlusMkfsMs: round(tarMs),
      ratioUnpackVsGnuTar: round(unpackMs / tarMs),
      firstStartWithPullMs: round(firstMs),
      cachedSecondStartMs: round(secondMs),
      ratioFirstVsSecondStart: round(firstMs / secondMs),
    };
  } finally {
    await reg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
