import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { SYSTEM_CA_BUNDLE_PATHS } from "./ca-bundle-paths.js";

let cachedSystemPem: string | null | undefined;

/** The operating system's CA bundle (PEM text), or null when the host has none we know of. */
function systemBundlePem(): string | null {
  if (cachedSystemPem !== undefined) return cachedSystemPem;
  cachedSystemPem = null;
  for (const path of SYSTEM_CA_BUNDLE_PATHS) {
    try {
      cachedSystemPem = readFileSync(path, "utf8");
      break;
    } catch {
      // not this distribution's layout
    }
  }
  return cachedSystemPem;
}

/**
 * The roots upstream TLS is verified against: Node's bundled Mozilla roots, plus the host's own
 * store (so CAs an administrator installed, e.g. a corporate proxy's, are trusted as they are by
 * curl on the host), plus any the user passed (`--upstream-ca`). Node's `ca` option replaces its
 * defaults, hence the explicit union.
 */
export function upstreamTrustAnchors(extraPems: readonly string[] = []): string[] {
  const system = systemBundlePem();
  return [...rootCertificates, ...(system ? [system] : []), ...extraPems];
}
