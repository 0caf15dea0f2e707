// Image build (issue 15): a 10-step Dockerfile (4 RUN, 3 COPY, config steps) built cold (no
// cache), rebuilt unchanged (every step from the cache: no VM boots), and rebuilt after one
// copied file changed (the steps after it run again), all in one run against one base image.
// Target: the unchanged rebuild at least 20x faster than the cold build. Prints JSON.
// Run (boots VMs: take the lock): flock /work/coord/vm.lock node --import tsx bench/build.ts
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buildImage } from "../src/build/index.js";
import { ImageStore, importImage } from "../src/image/index.js";
import { busyboxEntries, dockerSaveTar, layerTar } from "../test/helpers/oci-build.js";

const round1 = (n: number): number => Math.round(n * 10) / 10;

export async function buildBench(log: (m: string) => void): Promise<Record<string, unknown>> {
  const work = mkdtempSync(join(tmpdir(), "wl-bench-build-"));
  const store = new ImageStore();
  const base = `wl-bench-build-base:${process.pid}`;
  const tag = `wl-bench-build:${process.pid}`;
  try {
    const applets = ["mkdir", "cp", "rm", "wc", "ls", "cat", "chmod"];
    const tar = await dockerSaveTar(
      [
        await layerTar([
          ...busyboxEntries(),
          ...applets.map((a) => ({
            name: `bin/${a}`,
            type: "symlink" as const,
            linkname: "busybox",
          })),
        ]),
      ],
      { Env: ["PATH=/bin"] },
      "x:1",
    );
    await importImage(base, { store, source: Readable.from([tar]) });
    const ctx = join(work, "ctx");
    mkdirSync(join(ctx, "src"), { recursive: true });
    for (let i = 0; i < 50; i++)
      writeFileSync(join(ctx, "src", `m${i}.txt`), `module ${i}\n`.repeat(100));
    writeFileSync(join(ctx, "config.json"), '{"v":1}\n');
    writeFileSync(
      join(ctx, "Dockerfile"),
      [
        `FROM ${base}`,
        "ENV APP=/srv/app",
        "RUN mkdir -p /srv/app/data && echo prepared > /srv/app/data/marker",
        "COPY src/ /srv/app/src/",
        "RUN cat /srv/app/src/*.txt | wc -l > /srv/app/lines",
        "COPY config.json /srv/app/",
        "RUN cp /srv/app/config.json /srv/app/data/config.copy",
        "WORKDIR /srv/app",
        "RUN ls -R /srv/app > /srv/app/listing",
        'CMD ["cat", "/srv/app/lines"]',
        "",
      ].join("\n"),
    );
    const cacheDir = join(work, "cache");
    const time = async (noCache: boolean): Promise<{ ms: number; run: number; cached: number }> => {
      const t = Date.now();
      const r = await buildImage({ context: ctx, tags: [tag], cacheDir, noCache });
      return { ms: Date.now() - t, run: r.stepsRun, cached: r.stepsCached };
    };
    log("build: cold (4 RUN sandboxes)");
    const cold = await time(true);
    log("build: unchanged rebuild");
    const unchanged = await time(false);
    writeFileSync(join(ctx, "config.json"), '{"v":2}\n');
    log("build: one copied file changed");
    const oneFile = await time(false);
    return {
      steps: 10,
      coldMs: cold.ms,
      unchangedMs: unchanged.ms,
      oneFileChangedMs: oneFile.ms,
      unchangedSpeedup: round1(cold.ms / unchanged.ms),
      oneFileChangedSpeedup: round1(cold.ms / oneFile.ms),
      stepsRun: { cold: cold.run, unchanged: unchanged.run, oneFileChanged: oneFile.run },
      target: "unchanged rebuild >= 20x faster than cold",
    };
  } finally {
    await store.remove(`docker.io/library/${tag}`).catch(() => undefined);
    await store.remove(`docker.io/library/${base}`).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await buildBench((m) => process.stderr.write(`${m}\n`));
  process.stdout.write(`${JSON.stringify({ build: result }, null, 2)}\n`);
}
