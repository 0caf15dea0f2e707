import { test } from "node:test";
import assert from "node:assert/strict";
import {
  applyGuestNetworkSetup,
  caEnv,
  GUEST_CA_PATH,
} from "../../src/sandbox/guest-network-setup.js";
import { composeExecEnv } from "../../src/sandbox/exec-env.js";
import type { SandboxFiles } from "../../src/sandbox/files.js";

/** A guest filesystem in a map: path -> contents, or a symlink target. */
function fakeFiles(initial: Record<string, string | { link: string }>) {
  const fs = new Map(Object.entries(initial));
  const files = {
    async stat(path: string) {
      const entry = fs.get(path);
      if (entry === undefined) throw new Error("ENOENT");
      return { isSymlink: typeof entry !== "string", isDir: false };
    },
    async readFile(path: string) {
      const entry = fs.get(path);
      if (typeof entry !== "string") throw new Error("ENOENT");
      return Buffer.from(entry);
    },
    async writeFile(path: string, data: string | Buffer) {
      fs.set(path, data.toString());
    },
    async mkdir() {},
  };
  return { fs, files: files as unknown as SandboxFiles };
}

const PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

test("the CA goes to its own file and into existing regular bundles, once", async () => {
  const { fs, files } = fakeFiles({
    "/etc/ssl/certs/ca-certificates.crt": "SYSTEM-CAS",
    "/etc/ssl/cert.pem": { link: "/etc/ssl/certs/ca-certificates.crt" },
  });
  await applyGuestNetworkSetup(files, { caPem: PEM, addHosts: {} });
  assert.equal(fs.get(GUEST_CA_PATH), PEM);
  assert.equal(fs.get("/etc/ssl/certs/ca-certificates.crt"), `SYSTEM-CAS\n${PEM}`);
  assert.deepEqual(fs.get("/etc/ssl/cert.pem"), { link: "/etc/ssl/certs/ca-certificates.crt" });
  assert.equal(fs.has("/etc/pki/tls/certs/ca-bundle.crt"), false);
  // Applying again (e.g. a guest restored from a disk that already has it) adds nothing.
  await applyGuestNetworkSetup(files, { caPem: PEM, addHosts: {} });
  assert.equal(fs.get("/etc/ssl/certs/ca-certificates.crt"), `SYSTEM-CAS\n${PEM}`);
});

test("--add-host lines are appended to /etc/hosts; open mode writes no CA", async () => {
  const { fs, files } = fakeFiles({ "/etc/hosts": "127.0.0.1 localhost" });
  await applyGuestNetworkSetup(files, { caPem: undefined, addHosts: { "db.local": "10.0.0.5" } });
  assert.equal(fs.get("/etc/hosts"), "127.0.0.1 localhost\n10.0.0.5\tdb.local\n");
  assert.equal(fs.has(GUEST_CA_PATH), false);
});

test("network env (CA, placeholders) overrides image and sandbox env, not the command's", () => {
  const env = composeExecEnv({
    image: { SSL_CERT_FILE: "/image/ca", TOKEN: "image" },
    sandbox: { TOKEN: "config" },
    network: { ...caEnv(), TOKEN: "SANDBOX_SECRET_x" },
    command: { CURL_CA_BUNDLE: "/mine" },
    hostname: "h",
    tty: false,
  });
  assert.ok(env.includes(`SSL_CERT_FILE=${GUEST_CA_PATH}`));
  assert.ok(env.includes("TOKEN=SANDBOX_SECRET_x"));
  assert.ok(env.includes("CURL_CA_BUNDLE=/mine"));
});
