/**
 * The hand-written DER behind leaf certificates: encodings checked against known vectors, and
 * whole certificates read back by an independent ASN.1 parser (@peculiar/asn1-x509), by
 * Node's X509Certificate and by `openssl verify -x509_strict` (strict RFC 5280 checks).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  SubjectKeyIdentifier,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_subjectKeyIdentifier,
} from "@peculiar/asn1-x509";
import { oid, smallInteger, time, tlv, unsignedInteger } from "../../src/net/tls/der.js";
import { LeafCertificates, createCa } from "../../src/net/tls/index.js";

const hex = (b: Buffer) => b.toString("hex");

test("DER: lengths, unsigned integers, OIDs and times encode to the known bytes", () => {
  assert.equal(hex(tlv(0x04, Buffer.alloc(3))), "0403000000");
  assert.equal(hex(tlv(0x04, Buffer.alloc(200)).subarray(0, 3)), "0481c8");
  assert.equal(hex(tlv(0x04, Buffer.alloc(300)).subarray(0, 4)), "0482012c");
  assert.equal(hex(smallInteger(0)), "020100");
  assert.equal(hex(smallInteger(2)), "020102");
  assert.equal(hex(unsignedInteger(Buffer.from([0x00, 0x00, 0x80]))), "02020080");
  assert.equal(hex(oid("1.2.840.10045.4.3.2")), "06082a8648ce3d040302");
  assert.equal(hex(oid("2.5.29.19")), "0603551d13");
  assert.equal(
    time(new Date("2049-12-31T23:59:59.999Z")).toString("latin1").slice(2),
    "491231235959Z",
  );
  assert.equal(
    time(new Date("2050-01-01T00:00:00Z")).toString("latin1").slice(2),
    "20500101000000Z",
  );
  assert.equal(time(new Date("2050-01-01T00:00:00Z"))[0], 0x18); // GeneralizedTime
});

function parse(pem: string): Certificate {
  const der = new X509Certificate(pem).raw;
  return AsnConvert.parse(der, Certificate);
}

function extensionValue<T>(cert: Certificate, id: string, type: new () => T): T {
  const ext = cert.tbsCertificate.extensions?.find((e) => e.extnID === id);
  assert.ok(ext, `extension ${id}`);
  return AsnConvert.parse(ext.extnValue.buffer, type);
}

test("the CA and its leaves read back field for field with an independent ASN.1 parser", () => {
  const ca = createCa(new Date("2026-01-01T00:00:00Z"));
  const caCert = parse(ca.certPem);
  const caBasic = extensionValue(caCert, id_ce_basicConstraints, BasicConstraints);
  assert.equal(caBasic.cA, true);
  assert.equal(caBasic.pathLenConstraint, 0);
  const caKeyId = Buffer.from(
    extensionValue(caCert, id_ce_subjectKeyIdentifier, SubjectKeyIdentifier).buffer,
  );
  assert.equal(caCert.tbsCertificate.validity.notAfter.getTime().getUTCFullYear(), 2035);

  const leaves = new LeafCertificates(ca);
  for (const name of ["api.example.com", "203.0.113.7"]) {
    const leaf = parse(leaves.certificateFor(name));
    const tbs = leaf.tbsCertificate;
    assert.equal(tbs.version, 2); // v3
    assert.equal(tbs.signature.algorithm, "1.2.840.10045.4.3.2");
    assert.equal(tbs.signature.parameters, undefined);
    assert.equal(tbs.subject[1]?.[0]?.value.utf8String, name);
    assert.equal(tbs.issuer[1]?.[0]?.value.utf8String, "wheellock sandbox CA");
    assert.equal(extensionValue(leaf, id_ce_basicConstraints, BasicConstraints).cA, false);
    const aki = extensionValue(leaf, id_ce_authorityKeyIdentifier, AuthorityKeyIdentifier);
    assert.deepEqual(Buffer.from(aki.keyIdentifier?.buffer ?? new ArrayBuffer(0)), caKeyId);
    const serial = Buffer.from(tbs.serialNumber);
    assert.equal(serial.length, 16);
    assert.ok(((serial[0] ?? 0) & 0x80) === 0, "serial positive");
  }
});

test("openssl verifies a leaf against the CA under strict RFC 5280 checks", () => {
  const ca = createCa();
  const leaves = new LeafCertificates(ca);
  const dir = mkdtempSync(join(tmpdir(), "wl-der-"));
  try {
    writeFileSync(join(dir, "ca.pem"), ca.certPem);
    for (const [name, check] of [
      ["api.example.com", "-verify_hostname"],
      ["203.0.113.7", "-verify_ip"],
    ] as const) {
      writeFileSync(join(dir, "leaf.pem"), leaves.certificateFor(name));
      const out = execFileSync("openssl", [
        ...["verify", "-x509_strict", "-purpose", "sslserver", check, name],
        ...["-CAfile", join(dir, "ca.pem"), join(dir, "leaf.pem")],
      ]).toString();
      assert.match(out, /leaf\.pem: OK/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("every leaf of one cache is certified for the cache's one key, signed by the CA key", () => {
  const ca = createCa();
  const caPublic = createPublicKey(createPrivateKey(ca.keyPem));
  const leaves = new LeafCertificates(ca);
  const a = new X509Certificate(leaves.certificateFor("a.test"));
  const b = new X509Certificate(leaves.certificateFor("b.test"));
  assert.ok(a.publicKey.equals(b.publicKey));
  assert.ok(a.verify(caPublic) && b.verify(caPublic));
  assert.notEqual(a.serialNumber, b.serialNumber);
  const other = new X509Certificate(new LeafCertificates(ca).certificateFor("a.test"));
  assert.ok(!other.publicKey.equals(a.publicKey), "a new cache makes its own key");
});
