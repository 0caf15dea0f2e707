// Host-side cost of the FUSE requests an untar and a git status make on a host_fs mount, with
// no VM: the fake kernel (test/unit/vfs-fake-kernel.ts) against a HostDirProvider, one request
// at a time, as the guest's single-process untar sends them. Per file: LOOKUP (absent),
// CREATE, WRITE 4 KiB, SETATTR (mtime), RELEASE; then a status-like pass: LOOKUP + GETATTR of
// every file. `node --import tsx bench/vfs-host-ops.ts [--files N]` (JSON on stdout).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { FuseServer, HostDirProvider } from "../src/vfs/index.js";
import { FakeKernel, FuseErrno } from "../test/unit/vfs-fake-kernel.js";

const { values } = parseArgs({ options: { files: { type: "string", default: "5000" } } });
const files = Number(values.files);
const dir = mkdtempSync(join(tmpdir(), "wl-vfs-host-ops-"));
try {
  const server = new FuseServer({ provider: await HostDirProvider.open(dir) });
  const k = new FakeKernel(server);
  await k.init();
  // node_modules-like depth: /a/node_modules/pkgN/lib/x.js
  let parent = 1n;
  for (const name of ["a", "node_modules", "pkg", "lib"]) parent = await k.mkdir(parent, name);
  const data = Buffer.alloc(4096, 1);
  const nodes: bigint[] = [];
  const perOp = { lookup: 0, create: 0, write: 0, setattr: 0, release: 0 };
  const timed = async <T>(op: keyof typeof perOp, fn: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      perOp[op] += performance.now() - start;
    }
  };
  const t0 = performance.now();
  for (let i = 0; i < files; i++) {
    const name = `f${i}.js`;
    await timed("lookup", () =>
      k.lookup(parent, name).catch((e: unknown) => {
        if (!(e instanceof FuseErrno)) throw e;
      }),
    );
    const { nodeid, fh } = await timed("create", () => k.create(parent, name));
    await timed("write", () => k.write(fh, 0, data));
    await timed("setattr", () => k.setattr(nodeid, { mtimeSec: 1_700_000_000 }));
    await timed("release", () => k.release(fh));
    nodes.push(nodeid);
  }
  const t1 = performance.now();
  for (let i = 0; i < files; i++) {
    await k.lookup(parent, `f${i}.js`);
    await k.getattr(nodes[i]!);
  }
  const t2 = performance.now();
  const round = (n: number): number => Math.round(n * 100) / 100;
  process.stdout.write(
    `${JSON.stringify({
      files,
      untarLikeUsPerFile: round(((t1 - t0) * 1000) / files),
      statLikeUsPerFile: round(((t2 - t1) * 1000) / files),
      usPerOp: Object.fromEntries(
        Object.entries(perOp).map(([op, ms]) => [op, round((ms * 1000) / files)]),
      ),
    })}\n`,
  );
  await server.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
