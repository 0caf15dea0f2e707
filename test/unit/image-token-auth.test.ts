import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ImageStore, pullImage } from "../../src/image/index.js";
import { buildImage, layerTar, type BuiltImage } from "../helpers/oci-build.js";

// A registry that speaks the bearer-token flow (as Docker Hub, GHCR and Quay do): 401 with a
// Bearer challenge, a token service that checks Basic credentials, then token-only access.
const work = mkdtempSync(join(tmpdir(), "wl-token-"));
let server: Server;
let host = "";
let img: BuiltImage;
const tokenRequests: string[] = [];

before(async () => {
  img = buildImage([await layerTar([{ name: "f", content: "token" }])]);
  const blobs = new Map<string, Buffer>([
    [img.configDigest, img.config],
    ...img.layers.map((l) => [l.digest, l.blob] as [string, Buffer]),
  ]);
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", `http://${host}`);
    if (url.pathname === "/token") {
      tokenRequests.push(`${url.searchParams.get("service")} ${url.searchParams.get("scope")}`);
      const ok = req.headers.authorization === `Basic ${Buffer.from("bob:pw").toString("base64")}`;
      res.statusCode = ok ? 200 : 401;
      return res.end(ok ? JSON.stringify({ token: "tok123" }) : "{}");
    }
    if (req.headers.authorization !== "Bearer tok123") {
      res.statusCode = 401;
      res.setHeader(
        "www-authenticate",
        `Bearer realm="http://${host}/token",service="test-registry",scope="repository:p/q:pull"`,
      );
      return res.end();
    }
    if (url.pathname === "/v2/p/q/manifests/v1") {
      res.setHeader("content-type", img.manifestMediaType);
      return res.end(img.manifest);
    }
    const blob = blobs.get(url.pathname.split("/").pop() ?? "");
    if (blob) return res.end(blob);
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  host = `127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(work, { recursive: true, force: true });
});

test("bearer token from the challenge's realm, with Basic credentials", async () => {
  const store = new ImageStore(join(work, "ok"));
  const rec = await pullImage(`${host}/p/q:v1`, {
    store,
    credentials: { username: "bob", password: "pw" },
  });
  assert.equal(rec.digest, img.manifestDigest);
  // One token for the manifest, config and layer requests.
  assert.deepEqual(tokenRequests, ["test-registry repository:p/q:pull"]);
});

test("a token service that refuses names the registry", async () => {
  const store = new ImageStore(join(work, "bad"));
  await assert.rejects(
    pullImage(`${host}/p/q:v1`, { store, credentials: { username: "bob", password: "no" } }),
    new RegExp(`authentication failed for registry ${host}: token service answered HTTP 401`),
  );
});
