import { createHash, randomBytes, sign, type KeyObject } from "node:crypto";
import { isIPv4 } from "node:net";
import {
  TAG,
  bitString,
  booleanTrue,
  explicit,
  implicitPrimitive,
  octetString,
  oid,
  readTlv,
  sequence,
  set,
  smallInteger,
  time,
  unsignedInteger,
  utf8String,
} from "./der.js";

/** ecdsa-with-SHA256 (RFC 5758): the parameters field must be absent. */
const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";
const COMMON_NAME = "2.5.4.3";
const ORGANIZATION = "2.5.4.10";
const BASIC_CONSTRAINTS = "2.5.29.19";
const KEY_USAGE = "2.5.29.15";
const SUBJECT_KEY_IDENTIFIER = "2.5.29.14";
const AUTHORITY_KEY_IDENTIFIER = "2.5.29.35";
const EXT_KEY_USAGE = "2.5.29.37";
const SUBJECT_ALT_NAME = "2.5.29.17";
const KP_SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
/** KeyUsage bits as DER BIT STRING contents: digitalSignature (bit 0); keyCertSign + cRLSign (bits 5, 6). */
const KEY_USAGE_LEAF = bitString(Buffer.from([0x80]), 7);
const KEY_USAGE_CA = bitString(Buffer.from([0x06]), 1);

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

function name(commonName: string): Buffer {
  const attr = (type: string, text: string) => set(sequence(oid(type), utf8String(text)));
  return sequence(attr(ORGANIZATION, "wheellock"), attr(COMMON_NAME, commonName));
}

/** A key's SubjectPublicKeyInfo, DER. */
export function spkiDer(key: KeyObject): Buffer {
  return key.export({ type: "spki", format: "der" });
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bit string (without its unused-bits byte). */
export function keyIdentifier(spki: Buffer): Buffer {
  const outer = readTlv(spki, 0);
  const algorithm = readTlv(spki, outer.start);
  const key = readTlv(spki, algorithm.end);
  if (key.tag !== TAG.bitString) throw new Error("SubjectPublicKeyInfo: no BIT STRING");
  return createHash("sha1")
    .update(spki.subarray(key.start + 1, key.end))
    .digest();
}

function extension(extnID: string, critical: boolean, value: Buffer): Buffer {
  // DER leaves out a BOOLEAN equal to its DEFAULT (critical DEFAULT FALSE).
  return critical
    ? sequence(oid(extnID), booleanTrue(), octetString(value))
    : sequence(oid(extnID), octetString(value));
}

/** A positive 128-bit serial: the top bit cleared keeps the DER INTEGER unsigned. */
function serialNumber(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes;
}

/** Everything about a certificate's keys that can be worked out once and reused per leaf. */
export interface KeyMaterial {
  /** The certified key's SubjectPublicKeyInfo. */
  spki: Buffer;
  /** The issuer's key identifier (for the Authority Key Identifier). */
  issuerKeyId: Buffer;
}

export function keyMaterial(
  req: Pick<CertificateRequest, "publicKey" | "issuerPublicKey">,
): KeyMaterial {
  return { spki: spkiDer(req.publicKey), issuerKeyId: keyIdentifier(spkiDer(req.issuerPublicKey)) };
}

function altNameEntry(altName: string): Buffer {
  if (isIPv4(altName)) return implicitPrimitive(7, Buffer.from(altName.split(".").map(Number)));
  return implicitPrimitive(2, Buffer.from(altName, "ascii"));
}

/**
 * Builds and signs one ECDSA P-256 certificate, returned as PEM. Kept to the fields browsers
 * and OpenSSL require (RFC 5280 profile, CA/B baseline for leaves), nothing optional.
 * `keys` lets a caller that issues many leaves for one key pair skip re-deriving them.
 */
export function issueCertificate(
  req: CertificateRequest,
  keys: KeyMaterial = keyMaterial(req),
): string {
  const extensions = [
    extension(
      BASIC_CONSTRAINTS,
      true,
      req.isCa ? sequence(booleanTrue(), smallInteger(0)) : sequence(),
    ),
    extension(KEY_USAGE, true, req.isCa ? KEY_USAGE_CA : KEY_USAGE_LEAF),
    extension(SUBJECT_KEY_IDENTIFIER, false, octetString(keyIdentifier(keys.spki))),
    extension(AUTHORITY_KEY_IDENTIFIER, false, sequence(implicitPrimitive(0, keys.issuerKeyId))),
  ];
  if (!req.isCa) {
    extensions.push(extension(EXT_KEY_USAGE, false, sequence(oid(KP_SERVER_AUTH))));
    if (req.altName !== undefined)
      extensions.push(extension(SUBJECT_ALT_NAME, false, sequence(altNameEntry(req.altName))));
  }
  const algorithm = sequence(oid(ECDSA_WITH_SHA256));
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(serialNumber()),
    algorithm,
    name(req.issuerCommonName),
    sequence(time(req.notBefore), time(req.notAfter)),
    name(req.subjectCommonName),
    keys.spki,
    explicit(3, sequence(...extensions)),
  );
  // Node signs ECDSA as a DER ECDSA-Sig-Value, exactly what X.509 carries.
  const signature = sign("sha256", tbs, req.signingKey);
  const der = sequence(tbs, algorithm, bitString(signature));
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}
