import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";
import { X509Certificate } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import type { CaMaterial } from "./ca.js";
import { guestCipherOptions } from "./cipher-preference.js";
import { issueCertificate, keyMaterial, type KeyMaterial } from "./x509.js";

export interface LeafCertificateOptions {
  /** Most contexts kept (least recently used evicted). */
  maxEntries?: number;
  /** Leaf lifetime; contexts are re-issued after half of it. */
  validityMs?: number;
  now?: () => number;
}

interface Entry {
  context: SecureContext;
  certPem: string;
  renewAt: number;
}

/**
 * Per-host leaf certificates signed by the interception CA, cached as ready TLS contexts. SAN
 * is exactly the name or IPv4 address; short validity, backdated an hour for guest clock skew.
 * All leaves of one instance share one P-256 key, made when the instance is: a per-leaf key
 * protects nothing here (every leaf key lives in this same process next to the CA key, which
 * can sign anything) and would cost a key generation and a PEM round trip on the first
 * connection to each name, while the guest waits.
 */
export class LeafCertificates {
  private readonly entries = new Map<string, Entry>();
  private readonly caKey: KeyObject;
  private readonly caPublicKey: KeyObject;
  private readonly caName: string;
  private readonly maxEntries: number;
  private readonly validityMs: number;
  private readonly now: () => number;
  private readonly leafPublicKey: KeyObject;
  private readonly leafKeyPem: string;
  private readonly leafKeys: KeyMaterial;

  constructor(
    private readonly ca: CaMaterial,
    opts: LeafCertificateOptions = {},
  ) {
    this.caKey = createPrivateKey(ca.keyPem);
    this.caPublicKey = createPublicKey(this.caKey);
    const cn = /CN=([^\n,]+)/.exec(new X509Certificate(ca.certPem).subject)?.[1];
    this.caName = cn ?? "wheellock sandbox CA";
    this.maxEntries = opts.maxEntries ?? 512;
    this.validityMs = opts.validityMs ?? 3 * 24 * 3600_000;
    this.now = opts.now ?? Date.now;
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    this.leafPublicKey = publicKey;
    this.leafKeyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    this.leafKeys = keyMaterial({ publicKey, issuerPublicKey: this.caPublicKey });
  }

  get size(): number {
    return this.entries.size;
  }

  /** `name` must be canonical (canonicalHost): lower-case DNS name or dotted IPv4. */
  contextFor(name: string): SecureContext {
    return this.entry(name).context;
  }

  /** The leaf certificate PEM for `name` (tests, diagnostics). */
  certificateFor(name: string): string {
    return this.entry(name).certPem;
  }

  private entry(name: string): Entry {
    const now = this.now();
    const hit = this.entries.get(name);
    if (hit && hit.renewAt > now) {
      // Re-insert: Map order is the LRU order.
      this.entries.delete(name);
      this.entries.set(name, hit);
      return hit;
    }
    const entry = this.issue(name, now);
    this.entries.delete(name);
    this.entries.set(name, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return entry;
  }

  private issue(name: string, now: number): Entry {
    const certPem = issueCertificate(
      {
        subjectCommonName: name,
        issuerCommonName: this.caName,
        publicKey: this.leafPublicKey,
        signingKey: this.caKey,
        issuerPublicKey: this.caPublicKey,
        notBefore: new Date(now - 3600_000),
        notAfter: new Date(now + this.validityMs),
        isCa: false,
        altName: name,
      },
      this.leafKeys,
    );
    const context = createSecureContext({
      key: this.leafKeyPem,
      // The chain includes the CA, as servers normally send it.
      cert: certPem + this.ca.certPem,
      minVersion: "TLSv1.2",
      ...guestCipherOptions(),
    });
    return { context, certPem, renewAt: now + this.validityMs / 2 };
  }
}
