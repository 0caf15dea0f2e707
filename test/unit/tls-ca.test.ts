import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  CA_CERT_FILE,
  CA_KEY_FILE,
  LeafCertificates,
  createCa,
  loadOrCreateCa,
} from "../../src/net/tls/index.js";

test("the CA is created once (even by concurrent first starts), key 0600, then reused", async () => {
  const dir = join(await mkdtemp(join(tmpdir(), "wl-ca-")), "ca");
  try {
    const first = await Promise.all([
      loadOrCreateCa(dir),
      loadOrCreateCa(dir),
      loadOrCreateCa(dir),
    ]);
    assert.equal(new Set(first.map((c) => c.certPem)).size, 1);
    const again = await loadOrCreateCa(dir);
    assert.equal(again.certPem, first[0]?.certPem);
    assert.equal(again.keyPem, first[0]?.keyPem);
    assert.equal((await stat(join(dir, CA_KEY_FILE))).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.deepEqual((await readdir(dir)).sort(), [CA_CERT_FILE, CA_KEY_FILE].sort());
    const cert = new X509Certificate(again.certPem);
    assert.equal(cert.ca, true);
    assert.equal(cert.publicKey.asymmetricKeyType, "ec");
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    assert.ok(cert.verify(cert.publicKey));
  } finally {
    await rm(dirname(dir), { recursive: true, force: true });
  }
});

test("a certificate that does not match the key is an error, not silently replaced", async () => {
  const dir = await mkdtemp(join(tmpdir(), "wl-ca-"));
  try {
    await writeFile(join(dir, CA_CERT_FILE), createCa().certPem);
    await writeFile(join(dir, CA_KEY_FILE), createCa().keyPem, { mode: 0o600 });
    await assert.rejects(loadOrCreateCa(dir), /does not match/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("leaf certificates: SAN is the name or IP, serverAuth, short validity, chain to the CA", () => {
  const ca = createCa();
  const caCert = new X509Certificate(ca.certPem);
  const leaves = new LeafCertificates(ca);
  const leaf = new X509Certificate(leaves.certificateFor("api.example.com"));
  assert.equal(leaf.subjectAltName, "DNS:api.example.com");
  assert.ok(leaf.checkIssued(caCert));
  assert.ok(leaf.verify(caCert.publicKey));
  assert.equal(leaf.ca, false);
  assert.deepEqual(leaf.keyUsage, ["1.3.6.1.5.5.7.3.1"]);
  assert.equal(leaf.publicKey.asymmetricKeyType, "ec");
  const lifetimeDays = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 86_400_000;
  assert.ok(lifetimeDays < 7, `leaf valid ${lifetimeDays} days`);
  assert.equal(leaf.checkHost("other.example.com"), undefined);
  const ipLeaf = new X509Certificate(leaves.certificateFor("203.0.113.7"));
  assert.equal(ipLeaf.subjectAltName, "IP Address:203.0.113.7");
  assert.equal(ipLeaf.checkIP("203.0.113.7"), "203.0.113.7");
});

test("leaf contexts are cached per name and the cache is bounded (LRU)", () => {
  let now = 1_700_000_000_000;
  const leaves = new LeafCertificates(createCa(), { maxEntries: 2, now: () => now });
  const a = leaves.contextFor("a.test");
  assert.equal(leaves.contextFor("a.test"), a);
  leaves.contextFor("b.test");
  leaves.contextFor("a.test"); // a is now the most recent
  leaves.contextFor("c.test"); // evicts b
  assert.equal(leaves.size, 2);
  assert.equal(leaves.contextFor("a.test"), a);
  now += 5 * 86_400_000; // past half the validity: re-issued
  assert.notEqual(leaves.contextFor("a.test"), a);
});
