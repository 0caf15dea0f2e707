// A hostile registry (an in-process stand-in on 127.0.0.1) answering the small documents of a
// pull (a manifest, an image config, a snapshot key) with an endless body and no
// Content-Length: the pull must be refused after reading about what it asked for, not after
// buffering everything the registry cares to send.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

const work = mkdtempSync(join(tmpdir(), "wl-hostile-"));
process.env.WHEELLOCK_CACHE_DIR = join(work, "cache");
process.env.DOCKER_CONFIG = join(work, "docker");
const { ImageStore, pullImage } = await import("../../src/image/index.js");
const { pullSnapshot } = await import("../../src/snapshot/index.js");
const { SNAPSHOT_MEDIA } = await import("../../src/snapshot/artifact.js");

const MIB = 1024 * 1024;
/** What a registry may send for one endless answer before the test gives up on the client. */
const ENDLESS_CAP_BYTES = 128 * MIB;
/** Some slack over the 64 KiB-16 MiB the client asked for: socket buffers, chunks in flight. */
const READ_LIMIT_BYTES = 24 * MIB;
const CONFIG = `sha256:${"c".repeat(64)}`;
const LAYER = `sha256:${"d".repeat(64)}`;
let server: Server;
let host = "";
let sentBytes = 0;

/** Streams zeros until the client hangs up (or the cap), counting what left this side. */
function endless(res: ServerResponse, contentType: string): void {
  res.writeHead(200, { "content-type": contentType });
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  let sent = 0;
  const pump = (): void => {
    while (sent < ENDLESS_CAP_BYTES && !res.destroyed) {
      sent += chunk.length;
      sentBytes += chunk.length;
      if (!res.write(chunk)) return void res.once("drain", pump);
    }
    res.end();
  };
  res.on("close", () => (sent = ENDLESS_CAP_BYTES));
  pump();
}

const descriptor = (mediaType: string, digest: string, size: number): object => ({
  mediaType,
  digest,
  size,
});

before(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? "";
    const json = (body: object, type: string): void => {
      res.writeHead(200, { "content-type": type });
      res.end(JSON.stringify(body));
    };
    if (url === "/v2/") return void res.end("{}");
    if (url.endsWith("/manifests/endless"))
      return endless(res, "application/vnd.oci.image.manifest.v1+json");
    if (url.endsWith("/manifests/image"))
      return json(
        {
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: descriptor("application/vnd.oci.image.config.v1+json", CONFIG, 1000),
          layers: [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", LAYER, 1000)],
        },
        "application/vnd.oci.image.manifest.v1+json",
      );
    if (url.endsWith("/manifests/snapshot"))
      return json(
        {
          schemaVersion: 2,
          mediaType: SNAPSHOT_MEDIA.manifest,
          artifactType: SNAPSHOT_MEDIA.artifact,
          config: descriptor(SNAPSHOT_MEDIA.config, CONFIG, 1000),
          layers: [
            descriptor(SNAPSHOT_MEDIA.state, LAYER, 1000),
            descriptor(SNAPSHOT_MEDIA.memory, LAYER, 1000),
            descriptor(SNAPSHOT_MEDIA.disk, LAYER, 1000),
          ],
        },
        SNAPSHOT_MEDIA.manifest,
      );
    if (url.includes("/blobs/")) return endless(res, "application/octet-stream");
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  host = typeof addr === "object" && addr ? `127.0.0.1:${addr.port}` : "";
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(work, { recursive: true, force: true });
});

async function refusedAfterLittle(pull: () => Promise<unknown>, message: RegExp): Promise<void> {
  sentBytes = 0;
  await assert.rejects(pull(), message);
  assert.ok(sentBytes < READ_LIMIT_BYTES, `the client took ${(sentBytes / MIB).toFixed(0)} MiB`);
}

test("an endless manifest is refused after the manifest limit", async () => {
  const store = new ImageStore(join(work, "store1"));
  await refusedAfterLittle(() => pullImage(`${host}/evil/app:endless`, { store }), /too large/);
});

test("an endless image config is refused after its declared size", async () => {
  const store = new ImageStore(join(work, "store2"));
  await refusedAfterLittle(
    () => pullImage(`${host}/evil/app:image`, { store }),
    /config .* larger than its declared 1000 bytes/,
  );
});

test("an endless snapshot key is refused after its declared size", async () => {
  await refusedAfterLittle(
    () => pullSnapshot(`${host}/evil/snapshots:snapshot`),
    /snapshot key blob is larger than its declared 1000 bytes/,
  );
});
