import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_serverAuth,
} from "@peculiar/asn1-x509";
import { createHash, randomBytes, sign, type KeyObject } from "node:crypto";
import { isIPv4 } from "node:net";

/** ecdsa-with-SHA256 (RFC 5758): the parameters field must be absent. */
const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";
const COMMON_NAME = "2.5.4.3";
const ORGANIZATION = "2.5.4.10";

export interface CertificateRequest {
  subjectCommonName: string;
  issuerCommonName: string;
  /** The certified key. */
  publicKey: KeyObject;
  /** The issuer's private key (the subject's own for a self-signed CA). */
  signingKey: KeyObject;
  /** The issuer's public key, for the Authority Key Identifier. */
  issuerPublicKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  /** A CA certificate (keyCertSign, pathlen 0) instead of a TLS server leaf. */
  isCa: boolean;
  /** Leaf only: one DNS name or IPv4 address for the Subject Alternative Name. */
  altName?: string;
}

function name(commonName: string): Name {
  const attr = (type: string, text: string) =>
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String: text }) }),
    ]);
  return new Name([attr(ORGANIZATION, "wheellock"), attr(COMMON_NAME, commonName)]);
}

function spkiDer(key: KeyObject): Buffer {
  return key.export({ type: "spki", format: "der" });
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bit string. */
function keyIdentifier(key: KeyObject): ArrayBuffer {
  const spki = AsnConvert.parse(spkiDer(key), SubjectPublicKeyInfo);
  const digest = createHash("sha1").update(Buffer.from(spki.subjectPublicKey)).digest();
  return new Uint8Array(digest).buffer;
}

function extension(extnID: string, critical: boolean, value: unknown): Extension {
  return new Extension({
    extnID,
    critical,
    extnValue: new OctetString(AsnConvert.serialize(value)),
  });
}

/** A positive 128-bit serial: the top bit cleared keeps the DER INTEGER unsigned. */
function serialNumber(): ArrayBuffer {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return new Uint8Array(bytes).buffer;
}

/**
 * Builds and signs one ECDSA P-256 certificate, returned as PEM. Kept to the fields browsers
 * and OpenSSL require (RFC 5280 profile, CA/B baseline for leaves), nothing optional.
 */
export function issueCertificate(req: CertificateRequest): string {
  const extensions = [
    extension(
      id_ce_basicConstraints,
      true,
      new BasicConstraints(req.isCa ? { cA: true, pathLenConstraint: 0 } : { cA: false }),
    ),
    extension(
      id_ce_keyUsage,
      true,
      new KeyUsage(
        req.isCa
          ? KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign
          : KeyUsageFlags.digitalSignature,
      ),
    ),
    extension(
      id_ce_subjectKeyIdentifier,
      false,
      new SubjectKeyIdentifier(keyIdentifier(req.publicKey)),
    ),
    extension(
      id_ce_authorityKeyIdentifier,
      false,
      new AuthorityKeyIdentifier({
        keyIdentifier: new KeyIdentifier(keyIdentifier(req.issuerPublicKey)),
      }),
    ),
  ];
  if (!req.isCa) {
    extensions.push(extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_serverAuth])));
    if (req.altName !== undefined) {
      const general = isIPv4(req.altName)
        ? new GeneralName({ iPAddress: req.altName })
        : new GeneralName({ dNSName: req.altName });
      extensions.push(
        extension(id_ce_subjectAltName, false, new SubjectAlternativeName([general])),
      );
    }
  }
  const algorithm = new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 });
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serialNumber(),
    signature: algorithm,
    issuer: name(req.issuerCommonName),
    validity: new Validity({ notBefore: req.notBefore, notAfter: req.notAfter }),
    subject: name(req.subjectCommonName),
    subjectPublicKeyInfo: AsnConvert.parse(spkiDer(req.publicKey), SubjectPublicKeyInfo),
    extensions: new Extensions(extensions),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  // Node signs ECDSA as a DER ECDSA-Sig-Value, exactly what X.509 carries.
  const signature = sign("sha256", tbsDer, req.signingKey);
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: algorithm,
    signatureValue: new Uint8Array(signature).buffer,
  });
  const der = Buffer.from(AsnConvert.serialize(cert));
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}
