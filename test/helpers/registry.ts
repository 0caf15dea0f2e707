import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findExecutable } from "../../src/util/which.js";
import type { BuiltImage } from "./oci-build.js";

/** A real OCI registry (Debian's docker-registry) on 127.0.0.1, with its own storage. */
export interface TestRegistry {
  /** host:port */
  host: string;
  /** Where it keeps blobs and manifests (tests that tamper with what it serves). */
  storageDir: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      s.close(() =>
        typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port")),
      );
    });
  });
}

export async function startRegistry(
  opts: { user?: string; password?: string } = {},
): Promise<TestRegistry> {
  if (!findExecutable("docker-registry"))
    throw new Error(
      "docker-registry not found: apt-get install docker-registry apache2-utils (see .ci/run)",
    );
  const dir = mkdtempSync(join(tmpdir(), "wl-registry-"));
  const port = await freePort();
  let auth = "";
  if (opts.user && opts.password) {
    const line = execFileSync("htpasswd", ["-Bbn", opts.user, opts.password], { encoding: "utf8" });
    writeFileSync(join(dir, "htpasswd"), line);
    auth = `auth:\n  htpasswd:\n    realm: test\n    path: ${join(dir, "htpasswd")}\n`;
  }
  writeFileSync(
    join(dir, "config.yml"),
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, "data")}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${auth}`,
  );
  const child: ChildProcess = spawn("docker-registry", ["serve", join(dir, "config.yml")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const host = `127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    storageDir: join(dir, "data"),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGKILL");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function basic(auth?: { user: string; password: string }): Record<string, string> {
  return auth
    ? { authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString("base64")}` }
    : {};
}

/** The file a registry serves a blob from (its filesystem storage layout). */
export function blobDataPath(reg: TestRegistry, digest: string): string {
  const hex = digest.replace(/^sha256:/, "");
  return join(reg.storageDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
}

export async function pushBlob(
  host: string,
  repo: string,
  blob: Buffer,
  digest: string,
  auth?: { user: string; password: string },
): Promise<void> {
  const start = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, {
    method: "POST",
    headers: basic(auth),
  });
  await start.body?.cancel();
  if (start.status !== 202) throw new Error(`upload start: HTTP ${start.status}`);
  const loc = new URL(start.headers.get("location") ?? "", `http://${host}`);
  loc.searchParams.set("digest", digest);
  const put = await fetch(loc, {
    method: "PUT",
    headers: { ...basic(auth), "content-type": "application/octet-stream" },
    body: blob,
  });
  await put.body?.cancel();
  if (put.status !== 201) throw new Error(`upload ${digest}: HTTP ${put.status}`);
}

export async function pushManifest(
  host: string,
  repo: string,
  ref: string,
  body: Buffer,
  mediaType: string,
  auth?: { user: string; password: string },
): Promise<void> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, {
    method: "PUT",
    headers: { ...basic(auth), "content-type": mediaType },
    body,
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`manifest ${repo}:${ref}: HTTP ${res.status} ${text}`);
}

/** Pushes an image's blobs and manifest, tagged `tag`. */
export async function pushImage(
  host: string,
  repo: string,
  tag: string,
  img: BuiltImage,
  auth?: { user: string; password: string },
): Promise<void> {
  for (const l of img.layers) await pushBlob(host, repo, l.blob, l.digest, auth);
  await pushBlob(host, repo, img.config, img.configDigest, auth);
  await pushManifest(host, repo, tag, img.manifest, img.manifestMediaType, auth);
}
