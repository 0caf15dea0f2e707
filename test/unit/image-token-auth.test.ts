import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
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
/** The identity token the fake token service accepts in a refresh_token grant. */
const IDENTITY_TOKEN = "idtok-refresh-1";

async function formOf(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

before(async () => {
  img = buildImage([await layerTar([{ name: "f", content: "token" }])]);
  const blobs = new Map<string, Buffer>([
    [img.configDigest, img.config],
    ...img.layers.map((l) => [l.digest, l.blob] as [string, Buffer]),
  ]);
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", `http://${host}`);
    if (url.pathname === "/token" && req.method === "POST") {
      // The OAuth2 refresh-token grant (distribution's spec/auth/oauth.md).
      void formOf(req).then((form) => {
        const f = (k: string): string => form.get(k) ?? "-";
        tokenRequests.push(
          `POST ${req.headers["content-type"]} ${f("grant_type")} ${f("client_id") !== "-"} ${f("service")} ${f("scope")} auth=${req.headers.authorization ?? "-"} query=${url.search}`,
        );
        const ok =
          form.get("grant_type") === "refresh_token" && f("refresh_token") === IDENTITY_TOKEN;
        res.statusCode = ok ? 200 : 401;
        res.end(ok ? JSON.stringify({ access_token: "tok123", expires_in: 300 }) : "{}");
      });
      return;
    }
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

/**
 * A docker config whose helper (`docker-credential-wlidtok`, a shell script) answers for this
 * registry the way helpers do after `docker login` to a registry that issued an identity token.
 */
function useDockerConfig(name: string, config: object, secret: string): () => void {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const helper = join(dir, "docker-credential-wlidtok");
  writeFileSync(
    helper,
    `#!/bin/sh\nread server\n[ "$server" = "${host}" ] || { echo "credentials not found"; exit 1; }\necho '{"ServerURL":"${host}","Username":"<token>","Secret":"${secret}"}'\n`,
  );
  chmodSync(helper, 0o755);
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  const old = { path: process.env.PATH, dockerConfig: process.env.DOCKER_CONFIG };
  process.env.PATH = `${dir}:${old.path ?? ""}`;
  process.env.DOCKER_CONFIG = dir;
  return () => {
    process.env.PATH = old.path;
    if (old.dockerConfig === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = old.dockerConfig;
  };
}

const GRANT = `POST application/x-www-form-urlencoded refresh_token true test-registry repository:p/q:pull auth=- query=`;

for (const [kind, config] of [
  ["credHelpers", () => ({ credHelpers: { [host]: "wlidtok" } })],
  ["credsStore", () => ({ credsStore: "wlidtok" })],
] as const) {
  test(`${kind}: a helper's identity token is traded with a refresh_token grant`, async () => {
    const restore = useDockerConfig(`cfg-${kind}`, config(), IDENTITY_TOKEN);
    tokenRequests.length = 0;
    try {
      const rec = await pullImage(`${host}/p/q:v1`, { store: new ImageStore(join(work, kind)) });
      assert.equal(rec.digest, img.manifestDigest);
      // One POST, form-encoded, no Basic header, nothing in the URL: the token stays out of logs.
      assert.deepEqual(tokenRequests, [GRANT]);
    } finally {
      restore();
    }
  });
}

test("a refused identity token names the registry", async () => {
  const restore = useDockerConfig("cfg-bad", { credsStore: "wlidtok" }, "revoked");
  try {
    await assert.rejects(
      pullImage(`${host}/p/q:v1`, { store: new ImageStore(join(work, "idbad")) }),
      new RegExp(`authentication failed for registry ${host}: token service answered HTTP 401`),
    );
  } finally {
    restore();
  }
});

test("an identitytoken stored inline in auths is traded the same way", async () => {
  const restore = useDockerConfig(
    "cfg-inline",
    {
      auths: {
        [host]: { auth: Buffer.from("bob:").toString("base64"), identitytoken: IDENTITY_TOKEN },
      },
    },
    "unused",
  );
  tokenRequests.length = 0;
  try {
    const rec = await pullImage(`${host}/p/q:v1`, { store: new ImageStore(join(work, "inline")) });
    assert.equal(rec.digest, img.manifestDigest);
    assert.deepEqual(tokenRequests, [GRANT]);
  } finally {
    restore();
  }
});
