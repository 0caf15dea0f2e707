// host-trust directly, not the tls index: that would load the X.509 code in open mode too.
import { SYSTEM_CA_BUNDLE_PATHS } from "../net/tls/ca-bundle-paths.js";
import type { SandboxFiles } from "./files.js";

/** Where the intercept CA lands in the guest, and what every command's env points at it. */
export const GUEST_CA_PATH = "/etc/ssl/certs/wheellock-ca.crt";

/** The variables common TLS stacks (OpenSSL, curl, Python requests, Node) read a CA from. */
export function caEnv(): Record<string, string> {
  return {
    SSL_CERT_FILE: GUEST_CA_PATH,
    REQUESTS_CA_BUNDLE: GUEST_CA_PATH,
    CURL_CA_BUNDLE: GUEST_CA_PATH,
    NODE_EXTRA_CA_CERTS: GUEST_CA_PATH,
  };
}

export interface GuestNetworkSetup {
  /** The intercept CA (PEM), or undefined in open mode. */
  caPem: string | undefined;
  /** `--add-host` entries: name -> IPv4. */
  addHosts: Readonly<Record<string, string>>;
}

async function readIfRegular(files: SandboxFiles, path: string): Promise<Buffer | undefined> {
  try {
    const info = await files.stat(path, { followSymlinks: false });
    // A symlinked bundle points at one of the others (or outside them): appending through it
    // would add the CA twice or write somewhere unexpected.
    if (info.isSymlink || info.isDir) return undefined;
    return await files.readFile(path);
  } catch {
    return undefined;
  }
}

/**
 * Writes the network settings into a freshly booted or restored guest, before its first
 * command: the CA file and the system bundles that exist, then `/etc/hosts` lines. A snapshot
 * is taken before this runs, so restored guests start without any of it and get it here.
 */
export async function applyGuestNetworkSetup(
  files: SandboxFiles,
  setup: GuestNetworkSetup,
): Promise<void> {
  if (setup.caPem !== undefined) {
    const pem = setup.caPem.endsWith("\n") ? setup.caPem : `${setup.caPem}\n`;
    await files.mkdir("/etc/ssl/certs");
    await files.writeFile(GUEST_CA_PATH, pem, { mode: 0o644 });
    for (const bundle of SYSTEM_CA_BUNDLE_PATHS) {
      const current = await readIfRegular(files, bundle);
      if (current === undefined || current.includes(pem)) continue;
      const sep = current.length === 0 || current.at(-1) === 0x0a ? "" : "\n";
      await files.writeFile(bundle, Buffer.concat([current, Buffer.from(sep + pem)]), {
        mode: 0o644,
      });
    }
  }
  const entries = Object.entries(setup.addHosts);
  if (entries.length > 0) {
    const current =
      (await readIfRegular(files, "/etc/hosts")) ?? Buffer.from("127.0.0.1\tlocalhost\n");
    const sep = current.length === 0 || current.at(-1) === 0x0a ? "" : "\n";
    const lines = entries.map(([name, ip]) => `${ip}\t${name}\n`).join("");
    await files.writeFile("/etc/hosts", Buffer.concat([current, Buffer.from(sep + lines)]), {
      mode: 0o644,
    });
  }
}
