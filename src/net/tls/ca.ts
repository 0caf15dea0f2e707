import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  X509Certificate,
} from "node:crypto";
import { chmod, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { withFileLock } from "../../util/index.js";
import { issueCertificate } from "./x509.js";
import { makePrivateDir } from "../../paths.js";

export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

export const CA_CERT_FILE = "ca.pem";
export const CA_KEY_FILE = "ca-key.pem";
const CA_NAME = "wheellock sandbox CA";
const CA_VALIDITY_MS = 10 * 365 * 24 * 3600_000;

/** Reads the CA if both files exist and belong together; undefined when absent. */
async function readCa(dir: string): Promise<CaMaterial | undefined> {
  let certPem: string;
  let keyPem: string;
  try {
    [certPem, keyPem] = await Promise.all([
      readFile(join(dir, CA_CERT_FILE), "utf8"),
      readFile(join(dir, CA_KEY_FILE), "utf8"),
    ]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  const cert = new X509Certificate(certPem);
  const publicFromKey = createPublicKey(createPrivateKey(keyPem));
  if (!cert.publicKey.equals(publicFromKey))
    throw new Error(`${dir}: ${CA_CERT_FILE} does not match ${CA_KEY_FILE}`);
  return { certPem, keyPem };
}

/** Write-then-rename, so a reader never sees half a file. */
async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, text, { mode, flag: "wx" });
    await chmod(tmp, mode); // umask must not widen or narrow it
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

export function createCa(now = new Date()): CaMaterial {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const certPem = issueCertificate({
    subjectCommonName: CA_NAME,
    issuerCommonName: CA_NAME,
    publicKey,
    signingKey: privateKey,
    issuerPublicKey: publicKey,
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + CA_VALIDITY_MS),
    isCa: true,
  });
  const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  return { certPem, keyPem };
}

/**
 * The per-user interception CA (ECDSA P-256), created on first use and reused after. The key is
 * mode 0600 in a 0700 directory; creation runs under a lock file so sandboxes starting together
 * make one CA. The key is written before the certificate, so a present certificate always has
 * its key.
 */
export async function loadOrCreateCa(dir: string): Promise<CaMaterial> {
  const existing = await readCa(dir);
  if (existing) return existing;
  makePrivateDir(dir);
  return withFileLock(join(dir, "ca.lock"), { timeoutMs: 30_000, pollMs: 50 }, async () => {
    const raced = await readCa(dir);
    if (raced) return raced;
    const ca = createCa();
    await writeAtomic(join(dir, CA_KEY_FILE), ca.keyPem, 0o600);
    await writeAtomic(join(dir, CA_CERT_FILE), ca.certPem, 0o644);
    return ca;
  });
}
