export { loadOrCreateCa, createCa, CA_CERT_FILE, CA_KEY_FILE, type CaMaterial } from "./ca.js";
export { LeafCertificates, type LeafCertificateOptions } from "./leaf-certificates.js";
export { upstreamTrustAnchors } from "./host-trust.js";
export { SYSTEM_CA_BUNDLE_PATHS } from "./ca-bundle-paths.js";
export { aes128First, guestCipherOptions, PREFERRED_TLS13_SUITE } from "./cipher-preference.js";
