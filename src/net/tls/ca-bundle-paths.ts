/**
 * Where distributions keep the system CA bundle that TLS stacks read by default
 * (Debian/Ubuntu/Alpine, Fedora/RHEL, BSD-style): read on the host for upstream trust, and
 * appended to in the guest so its tools trust the intercept CA. Its own module, free of
 * node:tls, because every sandbox start reads it and only intercept mode needs TLS.
 */
export const SYSTEM_CA_BUNDLE_PATHS: readonly string[] = [
  "/etc/ssl/certs/ca-certificates.crt",
  "/etc/pki/tls/certs/ca-bundle.crt",
  "/etc/ssl/cert.pem",
];
