import { Readable } from "node:stream";
import { mkdirSync, writeFileSync } from "node:fs";
import { ImageStore, importImage, buildImage, plainBuildProgress, Sandbox } from "./src/index.ts";
import { busyboxEntries, dockerSaveTar, layerTar } from "./test/helpers/oci-build.ts";

const applets = ["rm","mkdir","touch","chmod","ln","chown","mv","cp","sleep","true","false","printf","grep","sed","tr","head","tail","find","uname","whoami","date","mknod","sync","xargs","sort"];
const store = new ImageStore();
const tar = await dockerSaveTar([await layerTar([...busyboxEntries(), ...applets.map((a) => ({ name: `bin/${a}`, type: "symlink" as const, linkname: "busybox" })), { name: "etc/old", content: "old\n" }, { name: "etc/dir/x", content: "x" }])], { Env: ["PATH=/bin"] }, "x:1");
await importImage("wl-build-base:1", { store, source: Readable.from([tar]) });
const ctx = "/tmp/wlb/ctx";
mkdirSync(ctx, { recursive: true });
writeFileSync(`${ctx}/hello.txt`, "hello\n");
writeFileSync(`${ctx}/Dockerfile`, `FROM wl-build-base:1
RUN echo built > /built && rm /etc/old && rm -rf /etc/dir && mkdir -p /etc/dir && echo y > /etc/dir/y && ln /built /built2 && chmod 4755 /built
COPY hello.txt /app/
WORKDIR /app
USER app
CMD ["cat", "/app/hello.txt"]
`);
const t0 = Date.now();
const r = await buildImage({ context: ctx, tags: ["wl-smoke:1"], progress: plainBuildProgress((t) => process.stderr.write(t)) });
console.log(r, Date.now() - t0);
const t1 = Date.now();
const r2 = await buildImage({ context: ctx, tags: ["wl-smoke:1"], progress: plainBuildProgress((t) => process.stderr.write(t)) });
console.log(r2.digest === r.digest, r2.stepsRun, Date.now() - t1);
const sb = await Sandbox.create({ image: "wl-smoke:1" });
const out = await sb.exec(["sh", "-c", "id -u; pwd; cat /app/hello.txt; ls -la /built /built2; ls /etc/; ls /etc/dir; stat -c '%a %h' /built"]);
console.log(out);
await sb.close();
