import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { rootCertificates } from "node:tls";
import { upstreamTrustAnchors } from "../../src/net/tls/host-trust.js";

test("upstream TLS trusts Node's roots, the host's system bundle and the user's extra CAs", () => {
  const extra = "-----BEGIN CERTIFICATE-----\nextra\n-----END CERTIFICATE-----\n";
  const anchors = upstreamTrustAnchors([extra]);
  for (const root of rootCertificates) assert.ok(anchors.includes(root));
  assert.equal(anchors.at(-1), extra);
  const debianBundle = "/etc/ssl/certs/ca-certificates.crt";
  if (existsSync(debianBundle)) assert.ok(anchors.includes(readFileSync(debianBundle, "utf8")));
  assert.equal(anchors.length, rootCertificates.length + (existsSync(debianBundle) ? 2 : 1));
});
