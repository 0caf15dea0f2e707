/** A guest's network settings after boot or restore: the intercept CA, trust bundles, /etc/hosts. */
import { SYSTEM_CA_BUNDLE_PATHS } from "../net/index.js";
import type { GuestAgent } from "../channel/index.js";

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

/**
 * Writes the network settings into a freshly booted or restored guest, before its first
 * command, in one NETWORK_SETUP round trip: the CA file, the CA appended to the system bundles
 * that exist as regular files (not symlinks, which point at one of the others or somewhere
 * unexpected) and lack it, then `/etc/hosts` lines. A snapshot is taken before this runs, so
 * restored guests start without any of it and get it here.
 */
export async function applyGuestNetworkSetup(
  agent: Pick<GuestAgent, "networkSetup">,
  setup: GuestNetworkSetup,
): Promise<void> {
  const hostsLines = Object.entries(setup.addHosts).map(([name, ip]) => `${ip}\t${name}`);
  if (setup.caPem === undefined && hostsLines.length === 0) return;
  const pem = setup.caPem?.endsWith("\n") === false ? `${setup.caPem}\n` : setup.caPem;
  await agent.networkSetup({
    ...(pem !== undefined
      ? { ca: { pem, path: GUEST_CA_PATH, bundlePaths: SYSTEM_CA_BUNDLE_PATHS } }
      : {}),
    hostsLines,
  });
}
